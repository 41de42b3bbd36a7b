/* Many busy threads, for lost-sample and profiler-overhead comparisons.
 *
 *   busy_threads N SECS    N threads burn CPU (a few nested calls deep, so
 *                          DWARF stacks have frames to walk) for SECS of
 *                          wall time; then prints
 *                          "truth cpu_ns=NS threads=N" (this process's own
 *                          user + system CPU time, from getrusage), so a
 *                          caller can tell the profiler's CPU from the
 *                          target's and how many samples were due.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static volatile unsigned long sink;
static double deadline;

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) unsigned long burn_leaf(unsigned long x, long n) {
    for (long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}

__attribute__((noinline)) unsigned long burn_mid(unsigned long x, int depth) {
    if (depth == 0) return burn_leaf(x, 20000);
    unsigned long y = burn_mid(x ^ (unsigned long)depth, depth - 1);
    return y + burn_leaf(y, 5000);
}

static void *worker(void *arg) {
    unsigned long x = (unsigned long)arg;
    while (wall_s() < deadline) x = burn_mid(x, (int)(x % 8));
    sink = x;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s THREADS SECS\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    deadline = wall_s() + atof(argv[2]);
    pthread_t *threads = calloc(n, sizeof *threads);
    for (int i = 0; i < n; i++) pthread_create(&threads[i], NULL, worker, (void *)(long)(i + 1));
    for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long long ns = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
                   (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
    printf("truth cpu_ns=%lld threads=%d\n", ns, n);
    return 0;
}
