/* rprof's demo workload: a toy request handler with a recognisable call
 * tree (parse -> checksum, render -> format_row, compress) and a self-check
 * of where its time goes (CLOCK_THREAD_CPUTIME_ID), printed at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

/* The hot functions end by calling this, so they are not leaf functions:
 * GCC before 14 sets up no frame pointer in leaves even with
 * -mno-omit-leaf-frame-pointer, and a frame-pointer unwinder then skips
 * their caller. run.sh builds with -fno-optimize-sibling-calls so the call
 * stays a call (a tail jump would make them leaves again). */
__attribute__((noinline)) static void publish(unsigned long x) { sink = x; }

static long long cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((noinline)) static unsigned long checksum(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = (x << 5) + x + (unsigned long)i;
    publish(x);
    return x;
}

__attribute__((noinline)) static void parse_request(void) {
    unsigned long sum = checksum(150000);
    publish(sum + 1);
}

__attribute__((noinline)) static void format_row(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = x * 31 + 7;
    publish(x);
}

__attribute__((noinline)) static void render_page(void) {
    for (int row = 0; row < 10; row++) format_row(30000);
    publish(sink);
}

__attribute__((noinline)) static void compress_body(void) {
    unsigned long x = sink;
    for (long i = 0; i < 100000; i++) x ^= x >> 3, x *= 0x100000001b3UL;
    publish(x);
}

__attribute__((noinline)) static void handle_request(long long *spent) {
    long long t0 = cpu_ns();
    parse_request();
    long long t1 = cpu_ns();
    render_page();
    long long t2 = cpu_ns();
    compress_body();
    long long t3 = cpu_ns();
    spent[0] += t1 - t0, spent[1] += t2 - t1, spent[2] += t3 - t2;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    long long spent[3] = {0, 0, 0};
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        handle_request(spent);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < secs);
    long long total = spent[0] + spent[1] + spent[2];
    printf("demo self-check (CPU time): parse_request %.1f%%, render_page %.1f%%, compress_body %.1f%%\n",
           100.0 * spent[0] / total, 100.0 * spent[1] / total, 100.0 * spent[2] / total);
    return 0;
}
