/*
 * reprobox time shim, preloaded (LD_PRELOAD) into every process of a build
 * with a normalized clock. REPROBOX_CLOCK (Unix seconds) is the build clock.
 *
 * The wall clock: time, gettimeofday, timespec_get and clock_gettime of the
 * wall clocks (CLOCK_REALTIME, _COARSE, _ALARM and CLOCK_TAI) all return the
 * build clock, frozen. Every other clock (monotonic, boot time, CPU time)
 * keeps running: a frozen monotonic clock hangs anything that waits for time
 * to pass.
 *
 * File times: files written during a build carry the kernel's real time, so
 * every stat-family call (stat, lstat, fstat, fstatat, statx and their *64
 * and pre-2.33 versioned names) reports each file time as min(real time,
 * build clock): files the build writes appear written at the build clock,
 * files older than it keep their times. tar, cargo, make and Rust's std::fs
 * see the same times in two builds.
 *
 * Why not libfaketime: its clock functions initialize lazily and call dlsym,
 * whose failure path mallocs. A program whose malloc reads the clock while it
 * initializes (jemalloc, linked into every upstream rustc) then re-enters its
 * own initialization and deadlocks at start-up. Here the wall-clock functions
 * call nothing at all, the real clock_gettime is looked up once in a
 * constructor, and until it is known the other clocks are read with the raw
 * system call: no path from a clock function reaches malloc or dlsym.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Link against the oldest dlsym so the shim loads in images with any glibc. */
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");

static long long build_clock = -2; /* -2: not read yet; -1: none */

static long long clock_limit(void) {
	if (build_clock == -2) {
		const char *s = getenv("REPROBOX_CLOCK");
		char *end = 0;
		long long v = s ? strtoll(s, &end, 10) : -1;
		build_clock = (s && *s && end && *end == 0 && v >= 0) ? v : -1;
	}
	return build_clock;
}

/* ---- the wall clock ---- */

static int (*real_clock_gettime)(clockid_t, struct timespec *);

__attribute__((constructor)) static void init(void) {
	clock_limit();
	real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
}

static int is_wall(clockid_t id) {
	return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_REALTIME_ALARM || id == CLOCK_TAI;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
	long long c = clock_limit();
	if (c >= 0 && is_wall(id)) {
		ts->tv_sec = c;
		ts->tv_nsec = 0;
		return 0;
	}
	if (real_clock_gettime)
		return real_clock_gettime(id, ts);
	return syscall(SYS_clock_gettime, id, ts);
}

time_t time(time_t *t) {
	long long c = clock_limit();
	time_t v;
	if (c >= 0) {
		v = c;
	} else {
		struct timespec ts;
		if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
			return (time_t)-1;
		v = ts.tv_sec;
	}
	if (t)
		*t = v;
	return v;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	/* glibc declares tv nonnull; the kernel accepts NULL: keep the check. */
	__asm__("" : "+r"(tv));
	if (tv) {
		tv->tv_sec = ts.tv_sec;
		tv->tv_usec = ts.tv_nsec / 1000;
	}
	if (tz) {
		struct timezone *z = tz;
		z->tz_minuteswest = 0;
		z->tz_dsttime = 0;
	}
	return 0;
}

int timespec_get(struct timespec *ts, int base) {
	if (base != TIME_UTC)
		return 0;
	return clock_gettime(CLOCK_REALTIME, ts) == 0 ? base : 0;
}

/* ---- file times ---- */

static void clamp_ts(struct timespec *ts) {
	long long c = clock_limit();
	if (c >= 0 && (ts->tv_sec > c || (ts->tv_sec == c && ts->tv_nsec > 0))) {
		ts->tv_sec = c;
		ts->tv_nsec = 0;
	}
}

static void clamp_stat(struct stat *st) {
	clamp_ts(&st->st_atim);
	clamp_ts(&st->st_mtim);
	clamp_ts(&st->st_ctim);
}

static void clamp_sx(struct statx_timestamp *t) {
	long long c = clock_limit();
	if (c >= 0 && (t->tv_sec > c || (t->tv_sec == c && t->tv_nsec > 0))) {
		t->tv_sec = c;
		t->tv_nsec = 0;
	}
}

/*
 * The real functions, looked up in the constructor, or at the first call when
 * another library's constructor stats a file before this one's has run. A
 * lookup that fails leaves NULL, and the wrapper fails with ENOSYS.
 */
static int (*next_statx)(int, const char *, int, unsigned int, struct statx *);
static int (*next_stat)(const char *, struct stat *);
static int (*next_lstat)(const char *, struct stat *);
static int (*next_fstat)(int, struct stat *);
static int (*next_fstatat)(int, const char *, struct stat *, int);
static int (*next_stat64)(const char *, struct stat64 *);
static int (*next_lstat64)(const char *, struct stat64 *);
static int (*next_fstat64)(int, struct stat64 *);
static int (*next_fstatat64)(int, const char *, struct stat64 *, int);
static int (*next___xstat)(int, const char *, struct stat *);
static int (*next___lxstat)(int, const char *, struct stat *);
static int (*next___fxstat)(int, int, struct stat *);
static int (*next___fxstatat)(int, int, const char *, struct stat *, int);

#define RESOLVE(var, name) var = (__typeof__(var))dlsym(RTLD_NEXT, name)

__attribute__((constructor)) static void init_files(void) {
	RESOLVE(next_statx, "statx");
	RESOLVE(next_stat, "stat");
	RESOLVE(next_lstat, "lstat");
	RESOLVE(next_fstat, "fstat");
	RESOLVE(next_fstatat, "fstatat");
	RESOLVE(next_stat64, "stat64");
	RESOLVE(next_lstat64, "lstat64");
	RESOLVE(next_fstat64, "fstat64");
	RESOLVE(next_fstatat64, "fstatat64");
	RESOLVE(next___xstat, "__xstat");
	RESOLVE(next___lxstat, "__lxstat");
	RESOLVE(next___fxstat, "__fxstat");
	RESOLVE(next___fxstatat, "__fxstatat");
}

/* CALL(next_NAME, args…) calls the real NAME, looking it up first if the
 * constructor has not: #var + 5 is "NAME", the variable's name without "next_". */
#define CALL(var, ...)                                                      \
	((var || (RESOLVE(var, #var + 5), var)) ? var(__VA_ARGS__) : (errno = ENOSYS, -1))

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
	int r = CALL(next_statx, dirfd, path, flags, mask, buf);
	if (r == 0) {
		clamp_sx(&buf->stx_atime);
		clamp_sx(&buf->stx_btime);
		clamp_sx(&buf->stx_ctime);
		clamp_sx(&buf->stx_mtime);
	}
	return r;
}

/* On x86_64 struct stat64 is struct stat; the *64 names are distinct symbols. */
int stat(const char *path, struct stat *st) { int r = CALL(next_stat, path, st); if (r == 0) clamp_stat(st); return r; }
int lstat(const char *path, struct stat *st) { int r = CALL(next_lstat, path, st); if (r == 0) clamp_stat(st); return r; }
int fstat(int fd, struct stat *st) { int r = CALL(next_fstat, fd, st); if (r == 0) clamp_stat(st); return r; }
int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
	int r = CALL(next_fstatat, dirfd, path, st, flags);
	if (r == 0) clamp_stat(st);
	return r;
}
int stat64(const char *path, struct stat64 *st) { int r = CALL(next_stat64, path, st); if (r == 0) clamp_stat((struct stat *)st); return r; }
int lstat64(const char *path, struct stat64 *st) { int r = CALL(next_lstat64, path, st); if (r == 0) clamp_stat((struct stat *)st); return r; }
int fstat64(int fd, struct stat64 *st) { int r = CALL(next_fstat64, fd, st); if (r == 0) clamp_stat((struct stat *)st); return r; }
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
	int r = CALL(next_fstatat64, dirfd, path, st, flags);
	if (r == 0) clamp_stat((struct stat *)st);
	return r;
}

/* Binaries built against glibc before 2.33 call the versioned wrappers. */
int __xstat(int, const char *, struct stat *);
int __lxstat(int, const char *, struct stat *);
int __fxstat(int, int, struct stat *);
int __fxstatat(int, int, const char *, struct stat *, int);
int __xstat(int ver, const char *path, struct stat *st) { int r = CALL(next___xstat, ver, path, st); if (r == 0) clamp_stat(st); return r; }
int __lxstat(int ver, const char *path, struct stat *st) { int r = CALL(next___lxstat, ver, path, st); if (r == 0) clamp_stat(st); return r; }
int __fxstat(int ver, int fd, struct stat *st) { int r = CALL(next___fxstat, ver, fd, st); if (r == 0) clamp_stat(st); return r; }
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags) {
	int r = CALL(next___fxstatat, ver, dirfd, path, st, flags);
	if (r == 0) clamp_stat(st);
	return r;
}
