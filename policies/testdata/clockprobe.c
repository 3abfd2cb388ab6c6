/* clockprobe prints what each clock and stat-family function reports, one
 * key=value per line, for the time shim's tests. argv[1] is a file to stat. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long ts(clockid_t id) {
	struct timespec t;
	if (clock_gettime(id, &t) != 0)
		return -1;
	return (long long)t.tv_sec;
}

int main(int argc, char **argv) {
	if (argc != 2)
		return 2;
	struct timeval tv;
	struct timespec t;
	gettimeofday(&tv, NULL);
	printf("time=%lld\n", (long long)time(NULL));
	printf("gettimeofday=%lld\n", (long long)tv.tv_sec);
	printf("timespec_get=%lld\n", timespec_get(&t, TIME_UTC) ? (long long)t.tv_sec : -1LL);
	printf("realtime=%lld\n", ts(CLOCK_REALTIME));
	printf("realtime_coarse=%lld\n", ts(CLOCK_REALTIME_COARSE));
	printf("tai=%lld\n", ts(CLOCK_TAI));
	struct timespec a, b, pause = {0, 20 * 1000 * 1000};
	clock_gettime(CLOCK_MONOTONIC, &a);
	nanosleep(&pause, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("monotonic_runs=%d\n", (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec) >= 20000000LL);

	struct stat st;
	struct statx sx;
	printf("stat=%lld\n", stat(argv[1], &st) == 0 ? (long long)st.st_mtime : -1LL);
	printf("lstat=%lld\n", lstat(argv[1], &st) == 0 ? (long long)st.st_mtime : -1LL);
	int fd = open(argv[1], O_RDONLY);
	printf("fstat=%lld\n", fstat(fd, &st) == 0 ? (long long)st.st_mtime : -1LL);
	printf("fstatat=%lld\n", fstatat(AT_FDCWD, argv[1], &st, 0) == 0 ? (long long)st.st_mtime : -1LL);
	printf("statx=%lld\n", statx(AT_FDCWD, argv[1], 0, STATX_MTIME, &sx) == 0 ? (long long)sx.stx_mtime.tv_sec : -1LL);
	printf("statx_ctime=%lld\n", statx(AT_FDCWD, argv[1], 0, STATX_CTIME, &sx) == 0 ? (long long)sx.stx_ctime.tv_sec : -1LL);
	close(fd);
	return 0;
}
