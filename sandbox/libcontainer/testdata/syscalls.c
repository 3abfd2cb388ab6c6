/* What a hostile build script tries against the kernel: each attempt prints
 * NAME=ok or NAME=ERRNO-NAME. Compiled and run inside the build by
 * hardening_test.go, with gcc from the image. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void report(const char *name, long r) {
	if (r < 0)
		printf("%s=%s\n", name, strerrorname_np(errno));
	else
		printf("%s=ok\n", name);
	fflush(stdout);
}

static void *thread(void *arg) { return arg; }

int main(void) {
	/* Namespaces: a nested user namespace is the door to mount and more. */
	report("unshare_user", unshare(CLONE_NEWUSER));
	report("unshare_mount", unshare(CLONE_NEWNS));
	long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	report("clone_newuser", pid);
	report("clone3", syscall(SYS_clone3, NULL, 0));
	report("setns", setns(-1, 0));
	report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
	report("umount2", umount2("/tmp", MNT_DETACH));
	report("pivot_root", syscall(SYS_pivot_root, ".", "."));
	report("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
	report("open_tree", syscall(SYS_open_tree, -1, "/", 0));

	/* The kernel keyring is shared by every container of a host user. */
	report("add_key", syscall(SYS_add_key, "user", "reprobox-attack", "x", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */));
	report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -2, 1));
	report("request_key", syscall(SYS_request_key, "user", "reprobox-nope", NULL, -2));

	/* Kernel attack surface: an invalid command still reaches the kernel
	 * without a filter (EINVAL, EFAULT), and stops at the filter with one. */
	report("bpf", syscall(SYS_bpf, 9999, NULL, 0));
	report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
	report("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
	report("userfaultfd", syscall(SYS_userfaultfd, 0));
	report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
	report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	report("init_module", syscall(SYS_init_module, NULL, 0, ""));
	report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
	report("swapon", syscall(SYS_swapon, "/nonexistent", 0));
	report("acct", syscall(SYS_acct, NULL));
	struct timespec ts = {0, 0};
	report("clock_settime", clock_settime(CLOCK_REALTIME, &ts));
	struct timeval tv = {0, 0};
	report("settimeofday", settimeofday(&tv, NULL));
	report("personality_aslr", personality(ADDR_NO_RANDOMIZE));

	/* ptrace of another process of the build (a child, which YAMA allows). */
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	report("ptrace_attach", ptrace(PTRACE_ATTACH, child, NULL, NULL));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	char buf[8];
	struct iovec local = {buf, sizeof buf}, remote = {buf, sizeof buf};
	report("process_vm_readv", syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0));

	/* What builds need keeps working: threads (clone3 falls back to
	 * clone), fork, and querying the personality. */
	pthread_t t;
	errno = pthread_create(&t, NULL, thread, NULL);
	report("thread", errno ? -1 : pthread_join(t, NULL));
	pid = fork();
	if (pid == 0)
		_exit(0);
	report("fork", pid < 0 ? -1 : waitpid(pid, NULL, 0));
	report("personality_query", personality(0xffffffff));
	return 0;
}
