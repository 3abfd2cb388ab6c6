/*
 * The entry of a reprobox job: moves the job's PID namespace to a given last
 * PID, then executes the job's command (found on the container's PATH, as
 * runc would) in its place, same process, same environment.
 *
 *   pidstart LAST CMD [ARG...]
 *
 * It must run as PID 1 of a new PID namespace, alone in it: the processes the
 * command starts then get LAST+1, LAST+2, ... in the order they are created,
 * whatever the runtime did before (its own threads also took PIDs, a number
 * that varies from run to run). It reads the namespace's last PID from
 * /proc/sys/kernel/ns_last_pid and creates and reaps short-lived children
 * until that is LAST: writing the file would need CAP_SYS_ADMIN and a
 * writable /proc/sys, which a build has neither of. It fails when the
 * namespace is already past LAST.
 *
 * Built static by reprobox (sandbox/internal/pidstart) with the host's C
 * compiler, so that it runs in any image.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static long last_pid(void) {
	char buf[32];
	int fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	int e = errno;
	close(fd);
	if (n <= 0) {
		errno = n < 0 ? e : EIO;
		return -1;
	}
	buf[n] = '\0';
	char *end;
	errno = 0;
	long v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0')) {
		errno = EINVAL;
		return -1;
	}
	return v;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fputs("reprobox pidstart: usage: pidstart LAST CMD [ARG...]\n", stderr);
		return 127;
	}
	char *end;
	errno = 0;
	long want = strtol(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || end == argv[1] || want < 1) {
		fprintf(stderr, "reprobox pidstart: bad last PID %s\n", argv[1]);
		return 127;
	}
	if (getpid() != 1) {
		fprintf(stderr, "reprobox pidstart: running as PID %ld, not as PID 1 of a new PID namespace\n", (long)getpid());
		return 127;
	}
	long last = last_pid();
	if (last < 0) {
		fprintf(stderr, "reprobox pidstart: read /proc/sys/kernel/ns_last_pid: %s\n", strerror(errno));
		return 127;
	}
	if (last > want) {
		fprintf(stderr, "reprobox pidstart: the PID namespace is at %ld already, past %ld\n", last, want);
		return 127;
	}
	while (last < want) {
		pid_t pid = vfork();
		if (pid == 0)
			_exit(0);
		if (pid < 0) {
			fprintf(stderr, "reprobox pidstart: vfork: %s\n", strerror(errno));
			return 127;
		}
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (pid > want) {
			fprintf(stderr, "reprobox pidstart: got PID %ld, past %ld (PIDs are taken by another process)\n", (long)pid, want);
			return 127;
		}
		last = pid;
	}
	if ((last = last_pid()) != want) {
		fprintf(stderr, "reprobox pidstart: the PID namespace is at %ld, not %ld\n", last, want);
		return 127;
	}
	execvp(argv[2], argv + 2);
	int e = errno;
	fprintf(stderr, "reprobox: exec %s: %s\n", argv[2], strerror(e));
	return e == ENOENT ? 127 : 126;
}
