/* Shared library for the dlopen test: dl_burn burns CPU for SECS of wall
 * time and returns the thread CPU time it spent. */
#include <time.h>

static volatile unsigned long sink;

static double now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void dl_spin(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = x * 22695477UL + 1UL;
    sink = x;
}

long long dl_burn(double secs) {
    double t0 = now(CLOCK_THREAD_CPUTIME_ID);
    double end = now(CLOCK_MONOTONIC) + secs;
    while (now(CLOCK_MONOTONIC) < end) dl_spin(200000);
    return (long long)((now(CLOCK_THREAD_CPUTIME_ID) - t0) * 1e9);
}
