/* rprof's off-CPU test workload: blocks in one function and computes in
 * another, and prints its own ground truth so tests can check an off-CPU
 * or wall profile against what really happened.
 *
 *   offcpu split SECS   loops for SECS: compute_phase burns about 3 ms of
 *                       CPU, then sleep_phase blocks in nanosleep for 7 ms;
 *                       prints "truth compute_phase=NS sleep_phase=NS":
 *                       compute_phase's CPU time (CLOCK_THREAD_CPUTIME_ID:
 *                       time it waited for a CPU is neither on- nor
 *                       off-CPU) and sleep_phase's blocked time
 *                       (CLOCK_MONOTONIC around the sleeps)
 *   offcpu spin SECS    prints "ready PID" first (for -p and -a), then split
 *   offcpu pingpong N   switch-heavy fixed work: prints "ready PID", waits
 *                       200 ms (time for a profiler to attach), then two
 *                       threads pass a byte back and forth over pipes N
 *                       times (each trip blocks both once); prints
 *                       "truth elapsed_ns=NS" (wall)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static long long clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Blocks once; kept out of line so sleep_phase is its caller in frame
 * pointer chains too (libc's nanosleep keeps no frame of its own). */
__attribute__((noinline)) void block_once(long ns) {
    struct timespec ts = {0, ns};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Returns the time blocked. */
__attribute__((noinline)) long long sleep_phase(long ns) {
    long long t0 = clock_ns(CLOCK_MONOTONIC);
    block_once(ns);
    return clock_ns(CLOCK_MONOTONIC) - t0;
}

/* Burns about `ns` of CPU time; returns the CPU time it took. */
__attribute__((noinline)) long long compute_phase(long ns) {
    long long t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    unsigned long x = sink;
    while (clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0 < ns) {
        for (int i = 0; i < 20000; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    }
    sink = x;
    return clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
}

static void split(double secs) {
    long long compute = 0, blocked = 0;
    long long end = clock_ns(CLOCK_MONOTONIC) + (long long)(secs * 1e9);
    while (clock_ns(CLOCK_MONOTONIC) < end) {
        compute += compute_phase(3000000);
        blocked += sleep_phase(7000000);
    }
    printf("truth compute_phase=%lld sleep_phase=%lld\n", compute, blocked);
}

static int ping[2], pong[2];

static void *ponger(void *arg) {
    long trips = (long)arg;
    char byte;
    for (long i = 0; i < trips; i++) {
        if (read(ping[0], &byte, 1) != 1 || write(pong[1], &byte, 1) != 1) break;
    }
    return NULL;
}

static int pingpong(long trips) {
    pthread_t thread;
    if (pipe(ping) != 0 || pipe(pong) != 0) return 1;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    usleep(200000); /* time for a profiler to attach */
    long long t0 = clock_ns(CLOCK_MONOTONIC);
    if (pthread_create(&thread, NULL, ponger, (void *)trips) != 0) return 1;
    char byte = 'x';
    for (long i = 0; i < trips; i++) {
        if (write(ping[1], &byte, 1) != 1 || read(pong[0], &byte, 1) != 1) break;
    }
    pthread_join(thread, NULL);
    printf("truth elapsed_ns=%lld\n", clock_ns(CLOCK_MONOTONIC) - t0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: offcpu split|spin SECS | offcpu pingpong N\n");
        return 2;
    }
    if (strcmp(argv[1], "pingpong") == 0) return pingpong(atol(argv[2]));
    double secs = atof(argv[2]);
    if (strcmp(argv[1], "spin") == 0) {
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
    } else if (strcmp(argv[1], "split") != 0) {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    split(secs);
    return 0;
}
