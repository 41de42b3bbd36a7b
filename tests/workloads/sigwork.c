/* Signal-handler workload: most CPU time is spent inside a SIGPROF handler,
 * so a profiler must unwind through the kernel's signal frame (glibc's
 * __restore_rt trampoline) to reach the interrupted code and main.
 *
 *   sigwork SECS   spin_loop runs in main's loop; every 5 ms of process CPU
 *                  time (ITIMER_PROF) on_sigprof calls handler_burn for about
 *                  4 ms of thread CPU time. Prints
 *                  "truth handler=NS total=NS" (thread CPU time in the
 *                  handler, and in all).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static volatile unsigned long sink;
static volatile sig_atomic_t stop;
static long long handler_ns;
static double end_wall;

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

__attribute__((noinline)) void handler_burn(long long ns) {
    long long end = thread_ns() + ns;
    unsigned long x = sink;
    do {
        for (int i = 0; i < 20000; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    } while (thread_ns() < end);
    sink = x;
}

__attribute__((noinline)) void on_sigprof(int sig) {
    (void)sig;
    long long t0 = thread_ns();
    handler_burn(4000000);
    if (wall_s() >= end_wall) stop = 1;
    handler_ns += thread_ns() - t0;
}

/* The interrupted function: a loop that touches no stack. */
__attribute__((noinline)) void spin_loop(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = x * 2862933555777941757UL + 3037000493UL;
    sink = x;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SECS\n", argv[0]);
        return 2;
    }
    end_wall = wall_s() + atof(argv[1]);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigprof;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGPROF, &sa, NULL);
    struct itimerval timer = {{0, 5000}, {0, 5000}};
    long long t0 = thread_ns();
    setitimer(ITIMER_PROF, &timer, NULL);
    while (!stop) spin_loop(100000);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    printf("truth handler=%lld total=%lld\n", handler_ns, thread_ns() - t0);
    return 0;
}
