/* mallocclock models jemalloc: malloc initializes under a non-recursive lock
 * and reads the clock while it holds it, as jemalloc's mutex slow path does.
 * A clock function that mallocs (libfaketime's lazy initialization) deadlocks
 * it at start-up. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;
static char heap[1 << 24];
static size_t used;
void *malloc(size_t n) {
	if (!ready) {
		pthread_mutex_lock(&init_lock);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ready = 1;
		pthread_mutex_unlock(&init_lock);
	}
	n = (n + 15) & ~(size_t)15;
	if (used + n > sizeof heap) return NULL;
	void *p = heap + used;
	used += n;
	return p;
}
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) { void *p = malloc(a * b); if (p) memset(p, 0, a * b); return p; }
void *realloc(void *p, size_t n) { void *q = malloc(n); if (q && p) memcpy(q, p, n); return q; }
int main(void) {
	struct stat st;
	stat("/", &st);
	printf("started: time=%ld\n", (long)time(NULL));
	return 0;
}
