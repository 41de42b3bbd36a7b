/* C++ exception workload: throws caught a few frames up, in a hot loop, so
 * samples land in the exception runtime (libstdc++'s __cxa_throw,
 * libgcc_s's _Unwind_RaiseException and the personality routine) as well
 * as in the thrower; a plain loop alternates with it.
 *
 *   excwork SECS   throw_path (level1 -> level2 -> level3 -> thrower, which
 *                  throws; throw_path catches) and plain_work, in turns;
 *                  prints "truth throw_path=NS plain_work=NS" (thread CPU
 *                  time).
 */
#include <cstdio>
#include <cstdlib>
#include <ctime>

static volatile unsigned long sink;

static long long thread_ns() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double wall_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct Failure {
    unsigned long code;
};

__attribute__((noinline)) void thrower(unsigned long x) {
    for (int i = 0; i < 200; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    throw Failure{x};
}

/* Each level keeps something live across the call, so it has a frame of
 * its own (and the calls are not tail calls). */
__attribute__((noinline)) unsigned long level3(unsigned long x) {
    thrower(x + 3);
    sink = x;
    return x;
}

__attribute__((noinline)) unsigned long level2(unsigned long x) {
    unsigned long y = level3(x + 2);
    sink = y;
    return y ^ x;
}

__attribute__((noinline)) unsigned long level1(unsigned long x) {
    unsigned long y = level2(x + 1);
    sink = y;
    return y ^ x;
}

__attribute__((noinline)) void throw_path(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) {
        try {
            x = level1(x);
        } catch (const Failure &f) {
            x = f.code;
        }
    }
    sink = x;
}

__attribute__((noinline)) void plain_work(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = x * 2862933555777941757UL + 3037000493UL;
    sink = x;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s SECS\n", argv[0]);
        return 2;
    }
    long long throws = 0, plain = 0;
    double end = wall_s() + std::atof(argv[1]);
    while (wall_s() < end) {
        long long t0 = thread_ns();
        throw_path(500);
        long long t1 = thread_ns();
        plain_work(1000000);
        long long t2 = thread_ns();
        throws += t1 - t0;
        plain += t2 - t1;
    }
    std::printf("truth throw_path=%lld plain_work=%lld\n", throws, plain);
    return 0;
}
