/*
 * The entry program of a BuildKit job: the first process of the container
 * (PID 1, root, every capability: BuildKit runs it with security.insecure),
 * it applies what BuildKit's LLB cannot express, exactly as a job's OCI spec
 * asks, then runs the build as its child and confines it as runc's init would:
 *
 *   entry CMD [ARG...]       (configuration in /.reprobox-job/ctl/config)
 *
 * Before the build: the spec's mounts (tmpfs with their options, a
 * remount of the ones BuildKit made), the job's files and source bound at
 * their paths, masked and read-only paths, the read-only root, the cgroup
 * limits (memory, pids, CPU set and quota) written to the container's own
 * cgroup, which is then unmounted, the host and domain names.
 * In the build's process: personality(2), rlimits, CPU affinity, umask, the
 * bounding set, groups, gid and uid, working directory, capabilities,
 * no_new_privs, the seccomp program reprobox compiled, then execvp(3).
 * While it runs: reaps every process, measures what the build wrote under
 * its tree (a file counts as its length: the export writes sparse files
 * out) and kills the job past the disk bound. After: kills what is left,
 * empties a tree past the bound (it is not exported), and writes how
 * the build ended to /.reprobox-job/status, which the build never sees
 * (its directory is detached before the build starts).
 * The entry program itself exits 0 whenever it ran the build; any other
 * status means the sandbox failed (its reason is on stderr).
 *
 * Built static by reprobox (sandbox/buildkit) with the host's C compiler,
 * so that it runs in any image.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define JOB "/.reprobox-job"
#define MAXLINE 8192

/* errfd, in the build's process until it executes the build, is where
 * die reports a failure of the sandbox (not of the build) to the parent. */
static int errfd = -1;

static void die(const char *fmt, ...) {
	char msg[1024];
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof msg)
		n = (int)strlen(msg);
	if (e)
		n += snprintf(msg + n, sizeof msg - n, ": %s", strerror(e));
	fprintf(stderr, "reprobox entry: %s\n", msg);
	if (errfd >= 0) {
		if (write(errfd, msg, n) < 0) {
			/* the parent sees the status 125 */
		}
		_exit(125);
	}
	exit(125);
}

/* The configuration, one directive a line: "key field..." separated by
 * single spaces; reprobox writes it, with a space, tab, newline, carriage
 * return or percent sign of a field written as %XX. */
static char *lines[4096];
static int nlines;

static void readConfig(void) {
	FILE *f = fopen(JOB "/ctl/config", "re");
	if (!f)
		die("open " JOB "/ctl/config");
	char buf[MAXLINE];
	while (fgets(buf, sizeof buf, f)) {
		size_t n = strlen(buf);
		if (n == 0 || buf[n - 1] != '\n')
			die("config line too long or unterminated");
		buf[n - 1] = 0;
		if (nlines == (int)(sizeof lines / sizeof lines[0]))
			die("config has too many lines");
		lines[nlines++] = strdup(buf);
	}
	fclose(f);
}

/* unescape decodes, in place, the %XX escapes reprobox writes for a byte
 * that is '%', a space, a control character or DEL. */
static void unescape(char *s) {
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
			char hex[3] = {r[1], r[2], 0};
			*w++ = (char)strtoul(hex, NULL, 16);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

/* fields splits a copy of line into at most max fields, each unescaped. */
static int fields(const char *line, char **out, int max) {
	char *s = strdup(line), *save;
	int n = 0;
	for (char *t = strtok_r(s, " ", &save); t && n < max; t = strtok_r(NULL, " ", &save)) {
		unescape(t);
		out[n++] = t;
	}
	return n;
}

static unsigned long long num(const char *s) {
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		errno = 0;
		die("bad number %s in config", s);
	}
	return v;
}

static int isdir(const char *p) {
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdirs makes path and its parents (the root is still writable). */
static void mkdirs(const char *path) {
	char p[4096];
	snprintf(p, sizeof p, "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = 0;
			if (mkdir(p, 0755) && errno != EEXIST)
				die("mkdir %s", p);
			*s = '/';
		}
	}
	if (mkdir(p, 0755) && errno != EEXIST)
		die("mkdir %s", p);
	errno = 0;
}

/* mountpoint makes dst a file or directory like src, if missing. */
static void mountpoint(const char *src, const char *dst) {
	struct stat st;
	if (lstat(dst, &st) == 0)
		return;
	if (isdir(src)) {
		mkdirs(dst);
		return;
	}
	char parent[4096];
	snprintf(parent, sizeof parent, "%s", dst);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		mkdirs(parent);
	}
	int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		die("create mountpoint %s", dst);
	close(fd);
}

static void writeFile(const char *path, const char *val) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", path);
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		die("write %s to %s", val, path);
	close(fd);
}

static int exists(const char *p) {
	struct stat st;
	return stat(p, &st) == 0;
}

/* cgroupLimit writes one limit to the container's own cgroup, v2 or v1. */
static void cgroupLimit(const char *what, char **f, int n) {
	int v2 = exists("/sys/fs/cgroup/cgroup.controllers");
	char val[256];
	if (!strcmp(what, "memory") && n == 3) {
		if (v2) {
			writeFile("/sys/fs/cgroup/memory.max", f[1]);
			/* v2 counts swap apart: spec swap is memory+swap. */
			unsigned long long m = num(f[1]), s = num(f[2]);
			snprintf(val, sizeof val, "%llu", s > m ? s - m : 0);
			if (exists("/sys/fs/cgroup/memory.swap.max"))
				writeFile("/sys/fs/cgroup/memory.swap.max", val);
		} else {
			writeFile("/sys/fs/cgroup/memory/memory.limit_in_bytes", f[1]);
			if (exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"))
				writeFile("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", f[2]);
		}
	} else if (!strcmp(what, "pids") && n == 2) {
		writeFile(v2 ? "/sys/fs/cgroup/pids.max" : "/sys/fs/cgroup/pids/pids.max", f[1]);
	} else if (!strcmp(what, "cpuquota") && n == 3) {
		if (v2) {
			snprintf(val, sizeof val, "%s %s", f[1], f[2]);
			writeFile("/sys/fs/cgroup/cpu.max", val);
		} else {
			writeFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us", f[2]);
			writeFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", f[1]);
		}
	} else if (!strcmp(what, "cpuset") && n == 2) {
		writeFile(v2 ? "/sys/fs/cgroup/cpuset.cpus" : "/sys/fs/cgroup/cpuset/cpuset.cpus", f[1]);
	} else {
		errno = 0;
		die("bad cgroup directive %s", what);
	}
}

static unsigned long long treeBlocks;
static int treeErr;

static int countEntry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
	(void)p; (void)ftw;
	if (flag == FTW_NS || flag == FTW_DNR) {
		treeErr = 1;
		return 0;
	}
	unsigned long long n = (unsigned long long)st->st_blocks * 512;
	/* A sparse file holds few blocks here, but BuildKit's export writes
	 * every byte of it on the host: it counts as its length. */
	if (S_ISREG(st->st_mode) && st->st_size > 0 && (unsigned long long)st->st_size > n)
		n = (unsigned long long)st->st_size;
	treeBlocks += n;
	return 0;
}

static int removeEntry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
	(void)st;
	if (ftw->level == 0)
		return 0;
	if ((flag == FTW_DP ? rmdir(p) : unlink(p)) && errno != ENOENT)
		die("remove %s from the tree past its disk bound", p);
	return 0;
}

/* emptyTree removes what the build left under path, once every process of
 * the build is dead: a tree past the disk bound is not exported. */
static void emptyTree(const char *path) {
	if (nftw(path, removeEntry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT))
		die("empty the tree %s past its disk bound", path);
	errno = 0;
}

/* usage is the bytes the tree at path holds, or ~0 when it cannot be
 * measured (too deep, unreadable): over any bound. */
static unsigned long long usage(const char *path) {
	treeBlocks = 0;
	treeErr = 0;
	if (nftw(path, countEntry, 32, FTW_PHYS | FTW_MOUNT) != 0 || treeErr)
		return ~0ULL;
	return treeBlocks;
}

static long long nowNS(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* keepDevices removes the device nodes directly in /dev that list (a
 * comma-separated list of names) does not name. */
static void keepDevices(const char *list) {
	DIR *d = opendir("/dev");
	if (!d)
		die("open /dev");
	struct dirent *e;
	char names[4096];
	while ((e = readdir(d))) {
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
			continue;
		snprintf(names, sizeof names, ",%s,", list);
		char want[300];
		snprintf(want, sizeof want, ",%s,", e->d_name);
		if (strstr(names, want))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0))
			die("remove /dev/%s", e->d_name);
	}
	closedir(d);
	errno = 0;
}

/* uname26 binds the release uname(2) reports under persona p over
 * /proc/sys/kernel/osrelease, so that the two agree. */
static void uname26(unsigned long p) {
	int old = personality(0xffffffff);
	struct utsname u;
	if (old == -1 || personality(p) == -1 || uname(&u) || personality(old) == -1)
		die("personality for UNAME26");
	if (strncmp(u.release, "2.6.", 4)) {
		errno = 0;
		die("uname under UNAME26 reports %s, not a 2.6 release", u.release);
	}
	int fd = open(JOB "/osrelease", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0 || dprintf(fd, "%s\n", u.release) < 0 || close(fd))
		die("write " JOB "/osrelease");
	if (mount(JOB "/osrelease", "/proc/sys/kernel/osrelease", NULL, MS_BIND, NULL) ||
	    mount("", "/proc/sys/kernel/osrelease", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
		die("bind the 2.6 release over /proc/sys/kernel/osrelease");
}

/* jobEnv is the build's environment, exactly (BuildKit adds its own
 * variables to the first process's): NUL-terminated entries in a file. */
static char **jobEnv;

static void readEnv(const char *rel) {
	char p[4096];
	snprintf(p, sizeof p, JOB "/%s", rel);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		die("open %s", p);
	if (st.st_size > (1 << 24)) {
		errno = 0;
		die("environment file %s too large", p);
	}
	char *buf = malloc(st.st_size + 1);
	if (!buf || read(fd, buf, st.st_size) != st.st_size)
		die("read %s", p);
	close(fd);
	buf[st.st_size] = 0;
	size_t count = 0;
	for (off_t i = 0; i < st.st_size; i++)
		if (!buf[i])
			count++;
	jobEnv = calloc(count + 1, sizeof *jobEnv);
	if (!jobEnv)
		die("allocate the environment");
	size_t k = 0;
	for (off_t i = 0; i < st.st_size && k < count; i += (off_t)strlen(buf + i) + 1)
		jobEnv[k++] = buf + i;
	jobEnv[k] = NULL;
}

struct caps {
	uint64_t bounding, effective, permitted, inheritable, ambient;
	int set;
};

static int lastCap(void) {
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int n = CAP_LAST_CAP;
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = CAP_LAST_CAP;
		fclose(f);
	}
	return n;
}

/* build is the build's process: PID 1 of its own pid namespace, so that
 * the build is the first process it sees (as with runc). It applies the
 * configuration and executes the build; a failure before that goes to the
 * supervisor through errfd. */
static void build(char **argv) {

	char *f[8];
	int n;
	const char *cwd = "/", *seccompFile = NULL;
	unsigned int seccompFlags = 0;
	long persona = -1;
	int umaskv = -1, nnp = 0, rootro = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	gid_t groups[256];
	int ngroups = 0;
	char *cpus = NULL;
	struct caps caps = {0};
	struct rlimit rl[64];
	int rlres[64], nrl = 0;

	/* Mounts and names, in the configuration's order. */
	for (int i = 0; i < nlines; i++) {
		n = fields(lines[i], f, 8);
		if (n == 0)
			continue;
		const char *k = f[0];
		if (!strcmp(k, "hostname") && n == 2) {
			if (sethostname(f[1], strlen(f[1])))
				die("sethostname");
		} else if (!strcmp(k, "domainname") && n == 2) {
			if (setdomainname(f[1], strlen(f[1])))
				die("setdomainname");
		} else if (!strcmp(k, "proc") && n == 3) {
			/* This process's own pid namespace, as the build sees it. */
			if (mount("proc", f[1], "proc", num(f[2]), NULL))
				die("mount proc at %s", f[1]);
		} else if (!strcmp(k, "tmpfs") && n == 4) {
			mkdirs(f[1]);
			if (mount("tmpfs", f[1], "tmpfs", num(f[2]), strcmp(f[3], "-") ? f[3] : NULL))
				die("mount tmpfs at %s", f[1]);
		} else if (!strcmp(k, "remount") && n == 3) {
			if (!exists(f[1])) {
				errno = 0;
				die("%s is not mounted in the container", f[1]);
			}
			if (mount("", f[1], NULL, MS_REMOUNT | MS_BIND | num(f[2]), NULL))
				die("remount %s", f[1]);
		} else if (!strcmp(k, "bind") && n == 4) {
			char src[4096];
			snprintf(src, sizeof src, JOB "/%s", f[1]);
			mountpoint(src, f[2]);
			if (mount(src, f[2], NULL, MS_BIND | MS_REC, NULL))
				die("bind %s at %s", src, f[2]);
			if (mount("", f[2], NULL, MS_REMOUNT | MS_BIND | num(f[3]), NULL))
				die("remount %s", f[2]);
		} else if (!strcmp(k, "mask") && n == 2) {
			if (!exists(f[1]))
				continue;
			if (isdir(f[1])) {
				if (mount("tmpfs", f[1], "tmpfs", MS_RDONLY, NULL))
					die("mask %s", f[1]);
			} else if (mount("/dev/null", f[1], NULL, MS_BIND, NULL)) {
				die("mask %s", f[1]);
			}
		} else if (!strcmp(k, "ro") && n == 2) {
			if (!exists(f[1]))
				continue;
			if (mount(f[1], f[1], NULL, MS_BIND | MS_REC, NULL) ||
			    mount("", f[1], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
				die("read-only %s", f[1]);
		} else if (!strcmp(k, "cgroup") && n >= 2) {
			cgroupLimit(f[1], f + 1, n - 1);
		} else if (!strcmp(k, "unmount") && n == 2) {
			if (umount2(f[1], MNT_DETACH) && errno != EINVAL && errno != ENOENT)
				die("unmount %s", f[1]);
			errno = 0;
			if (exists(f[1]) && unlink(f[1]) && errno != EBUSY && errno != EISDIR)
				die("remove %s", f[1]);
			errno = 0;
		} else if (!strcmp(k, "devices") && n == 2) {
			keepDevices(f[1]);
		} else if (!strcmp(k, "rootro")) {
			rootro = 1;
		} else if (!strcmp(k, "tree") || !strcmp(k, "disk")) {
			/* the supervisor's */
		} else if (!strcmp(k, "cwd") && n == 2) {
			cwd = f[1];
		} else if (!strcmp(k, "personality") && n == 2) {
			persona = (long)num(f[1]);
		} else if (!strcmp(k, "umask") && n == 2) {
			umaskv = (int)num(f[1]);
		} else if (!strcmp(k, "user") && n >= 3) {
			uid = (uid_t)num(f[1]);
			gid = (gid_t)num(f[2]);
			if (n == 4 && strcmp(f[3], "-")) {
				char *save;
				for (char *g = strtok_r(f[3], ",", &save); g && ngroups < 256; g = strtok_r(NULL, ",", &save))
					groups[ngroups++] = (gid_t)num(g);
			}
		} else if (!strcmp(k, "caps") && n == 6) {
			caps.bounding = num(f[1]);
			caps.effective = num(f[2]);
			caps.permitted = num(f[3]);
			caps.inheritable = num(f[4]);
			caps.ambient = num(f[5]);
			caps.set = 1;
		} else if (!strcmp(k, "rlimit") && n == 4 && nrl < 64) {
			rlres[nrl] = (int)num(f[1]);
			rl[nrl].rlim_cur = num(f[2]);
			rl[nrl].rlim_max = num(f[3]);
			nrl++;
		} else if (!strcmp(k, "cpus") && n == 2) {
			cpus = f[1];
		} else if (!strcmp(k, "env") && n == 2) {
			readEnv(f[1]);
		} else if (!strcmp(k, "nonewprivs")) {
			nnp = 1;
		} else if (!strcmp(k, "seccomp") && n == 3) {
			seccompFile = f[1];
			seccompFlags = (unsigned int)num(f[2]);
		} else {
			errno = 0;
			die("unknown config line: %s", lines[i]);
		}
	}
	if (!caps.set) {
		errno = 0;
		die("config has no caps line");
	}
	if (persona >= 0 && (persona & 0x0020000))
		uname26((unsigned long)persona);
	/* The container's cgroup file system: limits are written; the spec
	 * mounts none. */
	if (exists("/sys/fs/cgroup") && umount2("/sys/fs/cgroup", MNT_DETACH) && errno != EINVAL)
		die("unmount /sys/fs/cgroup");
	errno = 0;
	/* nodev: BuildKit's insecure mode allows every device in the device
	 * cgroup, where the spec allows only /dev's; a device node the image
	 * carries must open nothing. */
	if (mount("", "/", NULL, MS_REMOUNT | MS_BIND | MS_NODEV | (rootro ? MS_RDONLY : 0), NULL))
		die("remount / nodev%s", rootro ? " and read-only" : "");

	/* The seccomp program, read before the job directory goes away. */
	struct sock_fprog prog = {0};
	if (seccompFile) {
		char p[4096];
		snprintf(p, sizeof p, JOB "/%s", seccompFile);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st))
			die("open %s", p);
		if (st.st_size == 0 || st.st_size % sizeof(struct sock_filter) || st.st_size > 65536 * (off_t)sizeof(struct sock_filter)) {
			errno = 0;
			die("seccomp program %s has a bad size", p);
		}
		prog.len = st.st_size / sizeof(struct sock_filter);
		prog.filter = malloc(st.st_size);
		if (read(fd, prog.filter, st.st_size) != st.st_size)
			die("read %s", p);
		close(fd);
	}
	/* Out of the build's view. */
	if (umount2(JOB, MNT_DETACH))
		die("detach " JOB);
	if (persona >= 0 && personality((unsigned long)persona) == -1)
		die("personality(%#lx)", persona);
	for (int i = 0; i < nrl; i++)
		if (setrlimit(rlres[i], &rl[i]))
			die("setrlimit %d", rlres[i]);
	if (cpus) {
		cpu_set_t set;
		CPU_ZERO(&set);
		char *save;
		for (char *c = strtok_r(cpus, ",", &save); c; c = strtok_r(NULL, ",", &save))
			CPU_SET((int)num(c), &set);
		if (sched_setaffinity(0, sizeof set, &set))
			die("sched_setaffinity");
	}
	if (umaskv >= 0)
		umask((mode_t)umaskv);
	int last = lastCap();
	for (int c = 0; c <= last; c++)
		if (!(caps.bounding & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0))
			die("drop capability %d from the bounding set", c);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		die("keepcaps");
	if (setgroups(ngroups, groups))
		die("setgroups");
	if (setresgid(gid, gid, gid))
		die("setgid %d", (int)gid);
	if (setresuid(uid, uid, uid))
		die("setuid %d", (int)uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0))
		die("keepcaps");
	if (chdir(cwd))
		die("chdir %s", cwd);
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {
		{(uint32_t)caps.effective, (uint32_t)caps.permitted, (uint32_t)caps.inheritable},
		{(uint32_t)(caps.effective >> 32), (uint32_t)(caps.permitted >> 32), (uint32_t)(caps.inheritable >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data))
		die("capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		die("clear ambient capabilities");
	for (int c = 0; c <= last; c++)
		if ((caps.ambient & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0))
			die("raise ambient capability %d", c);
	errno = 0;
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		die("no_new_privs");
	if (prog.len && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, seccompFlags, &prog))
		die("load the seccomp program");
	if (jobEnv) {
		extern char **environ;
		environ = jobEnv; /* execvp searches this PATH */
	}
	execvp(argv[1], argv + 1);
	int e = errno;
	fprintf(stderr, "reprobox: exec %s: %s\n", argv[1], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fputs("reprobox entry: usage: entry CMD [ARG...]\n", stderr);
		return 125;
	}
	if (getpid() != 1) {
		errno = 0;
		die("not the container's first process (pid %d)", (int)getpid());
	}
	readConfig();
	/* The supervisor's part of the configuration. */
	const char *tree = NULL;
	unsigned long long disk = 0;
	for (int i = 0; i < nlines; i++) {
		char *f[3];
		int n = fields(lines[i], f, 3);
		if (n == 2 && !strcmp(f[0], "tree"))
			tree = f[1];
		else if (n == 2 && !strcmp(f[0], "disk"))
			disk = num(f[1]);
	}
	/* The job directory stays reachable here, for the status. */
	int jobfd = open(JOB, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (jobfd < 0)
		die("open " JOB);
	unsigned long long base = disk && tree ? usage(JOB "/tree") : 0;
	int errp[2];
	if (pipe2(errp, O_CLOEXEC))
		die("pipe");
	if (unshare(CLONE_NEWPID))
		die("new pid namespace");
	long long t0 = nowNS();
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(errp[0]);
		errfd = errp[1];
		build(argv);
	}

	close(errp[1]);
	char cmsg[1024];
	ssize_t cn;
	while ((cn = read(errp[0], cmsg, sizeof cmsg - 1)) < 0 && errno == EINTR)
		;
	if (cn > 0) {
		/* The build's process failed before executing the build. */
		cmsg[cn] = 0;
		kill(child, SIGKILL);
		errno = 0;
		die("set up the build's process: %s", cmsg);
	}
	close(errp[0]);
	int status = 0, over = 0;
	long long lastLook = nowNS();
	for (;;) {
		int st;
		pid_t r = waitpid(child, &st, WNOHANG);
		if (r == child) {
			status = st;
			break;
		}
		if (r > 0)
			continue;
		if (r < 0 && errno != EINTR)
			die("wait");
		struct timespec d = {0, 20 * 1000 * 1000};
		nanosleep(&d, NULL);
		if (disk && tree && nowNS() - lastLook >= 1000000000LL) {
			lastLook = nowNS();
			unsigned long long u = usage(tree);
			if (u == ~0ULL || (u > base && u - base > disk)) {
				over = 1;
				/* The first process of the build's pid namespace:
				 * every process of the build dies with it. */
				kill(child, SIGKILL);
			}
		}
	}
	long long dur = nowNS() - t0;
	/* The kernel killed every other process of the build's pid
	 * namespace with its first. */
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	if (disk && tree && !over) {
		unsigned long long u = usage(tree);
		over = u == ~0ULL || (u > base && u - base > disk);
	}
	if (over)
		emptyTree(tree);
	char out[256];
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	int len = snprintf(out, sizeof out, "exit %d\nsignal %d\nduration_ns %lld\ndisk %d\n", code, sig, dur, over);
	int fd = openat(jobfd, "status", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, out, len) != len || close(fd))
		die("write the status");
	return 0;
}
