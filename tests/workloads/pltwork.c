/* PLT workload: a hot loop calls a tiny function of a shared library
 * (libpltlib.so, plt_step) through the PLT, so samples land in the PLT stub,
 * in the library, and in the loop; the same work done locally alternates
 * with it.
 *
 *   pltwork SECS   via_plt (calls plt_step through the PLT) and local_loop
 *                  (the same arithmetic inline), in turns; prints
 *                  "truth via_plt=NS local_loop=NS" (thread CPU time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

unsigned long plt_step(unsigned long x);

static volatile unsigned long sink;

static long long thread_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void via_plt(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = plt_step(x);
    sink = x;
}

__attribute__((noinline)) void local_loop(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) {
        x = x * 2862933555777941757UL + 3037000493UL;
        __asm__ volatile("" : "+r"(x)); /* one step at a time, as via_plt */
    }
    sink = x;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SECS\n", argv[0]);
        return 2;
    }
    long long plt = 0, local = 0;
    double end = wall_s() + atof(argv[1]);
    while (wall_s() < end) {
        long long t0 = thread_ns();
        via_plt(200000);
        long long t1 = thread_ns();
        local_loop(400000);
        long long t2 = thread_ns();
        plt += t1 - t0;
        local += t2 - t1;
    }
    printf("truth via_plt=%lld local_loop=%lld\n", plt, local);
    return 0;
}
