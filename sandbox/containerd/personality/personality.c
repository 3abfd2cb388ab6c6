/*
 * The entry of a containerd job that needs personality(2) flags runc cannot
 * set (ADDR_NO_RANDOMIZE, UNAME26): sets the personality given as its first
 * argument, then executes the job's command (found on the container's PATH
 * as runc would) in its place, same process, same environment.
 *
 *   personality PERSONA CMD [ARG...]
 *
 * Built static by reprobox (sandbox/containerd) with the host's C compiler,
 * so that it runs in any image.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 3) {
		fputs("reprobox personality: usage: personality PERSONA CMD [ARG...]\n", stderr);
		return 127;
	}
	char *end;
	errno = 0;
	unsigned long p = strtoul(argv[1], &end, 0);
	if (errno != 0 || *end != '\0' || end == argv[1]) {
		fprintf(stderr, "reprobox personality: bad persona %s\n", argv[1]);
		return 127;
	}
	if (personality(p) == -1) {
		fprintf(stderr, "reprobox personality: personality(%#lx): %s\n", p, strerror(errno));
		return 127;
	}
	execvp(argv[2], argv + 2);
	int e = errno;
	fprintf(stderr, "reprobox: exec %s: %s\n", argv[2], strerror(e));
	return e == ENOENT ? 127 : 126;
}
