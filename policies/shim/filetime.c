/*
 * reprobox file-time shim, preloaded into every process of a build with a
 * normalized clock (LD_PRELOAD, before libfaketime, which then runs with
 * NO_FAKE_STAT=1 and only fakes the clock).
 *
 * Files written during a build carry the kernel's real time. This shim makes
 * every stat-family call report each file time as min(real time, build clock),
 * where the build clock is FAKETIME (epoch seconds): files the build writes
 * appear written at the build clock, files older than it keep their times.
 * So tar, cargo, make and Rust's std::fs see the same times in two builds.
 * libfaketime 0.9.10 intercepts stat, lstat and fstat only; glibc 2.33+
 * programs also call fstatat and statx, which are covered here.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

/* Link against the oldest dlsym so the shim loads in images with any glibc. */
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");

static long long build_clock = -2; /* -2: not read yet; -1: none */

static long long clock_limit(void) {
	if (build_clock == -2) {
		const char *s = getenv("FAKETIME");
		char *end = 0;
		long long v = s ? strtoll(s, &end, 10) : -1;
		build_clock = (s && *s && end && *end == 0 && v >= 0) ? v : -1;
	}
	return build_clock;
}

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

#define NEXT(name) static __typeof__(name) *next; if (!next) next = dlsym(RTLD_NEXT, #name)

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
	NEXT(statx);
	int r = next(dirfd, path, flags, mask, buf);
	if (r == 0) {
		clamp_sx(&buf->stx_atime);
		clamp_sx(&buf->stx_btime);
		clamp_sx(&buf->stx_ctime);
		clamp_sx(&buf->stx_mtime);
	}
	return r;
}

#define WRAP1(name, T)                                   \
	int name(T a, struct stat *st) {                 \
		NEXT(name);                              \
		int r = next(a, st);                     \
		if (r == 0) clamp_stat(st);              \
		return r;                                \
	}

WRAP1(stat, const char *)
WRAP1(lstat, const char *)
WRAP1(fstat, int)

int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
	NEXT(fstatat);
	int r = next(dirfd, path, st, flags);
	if (r == 0) clamp_stat(st);
	return r;
}

/* On x86_64 struct stat64 is struct stat; the *64 names are distinct symbols. */
int stat64(const char *path, struct stat64 *st) {
	NEXT(stat64);
	int r = next(path, st);
	if (r == 0) clamp_stat((struct stat *)st);
	return r;
}
int lstat64(const char *path, struct stat64 *st) {
	NEXT(lstat64);
	int r = next(path, st);
	if (r == 0) clamp_stat((struct stat *)st);
	return r;
}
int fstat64(int fd, struct stat64 *st) {
	NEXT(fstat64);
	int r = next(fd, st);
	if (r == 0) clamp_stat((struct stat *)st);
	return r;
}
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
	NEXT(fstatat64);
	int r = next(dirfd, path, st, flags);
	if (r == 0) clamp_stat((struct stat *)st);
	return r;
}

/* Binaries built against glibc before 2.33 call the versioned wrappers. */
#define WRAPX(name, T)                                          \
	int name(int ver, T a, struct stat *st) {               \
		NEXT(name);                                     \
		int r = next(ver, a, st);                       \
		if (r == 0) clamp_stat(st);                     \
		return r;                                       \
	}
int __xstat(int, const char *, struct stat *);
int __lxstat(int, const char *, struct stat *);
int __fxstat(int, int, struct stat *);
WRAPX(__xstat, const char *)
WRAPX(__lxstat, const char *)
WRAPX(__fxstat, int)
int __fxstatat(int, int, const char *, struct stat *, int);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags) {
	NEXT(__fxstatat);
	int r = next(ver, dirfd, path, st, flags);
	if (r == 0) clamp_stat(st);
	return r;
}
