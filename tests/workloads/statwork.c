/* Deterministic work for `rprof stat` against `perf stat`:
 *   statwork pages N    touch N fresh pages once each (N page faults, plus
 *                       the fixed cost of starting a process)
 *   statwork sleeps N   N nanosleeps of 1 ms (N context switches)
 *   statwork exit N     exit with status N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: statwork pages|sleeps|exit N\n");
        return 2;
    }
    long n = atol(argv[2]);
    if (strcmp(argv[1], "pages") == 0) {
        long page = sysconf(_SC_PAGESIZE);
        /* Private anonymous memory: each first write is one minor fault. */
        volatile char *mem = mmap(NULL, (size_t)(n * page), PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        madvise((void *)mem, (size_t)(n * page), MADV_NOHUGEPAGE);
        for (long i = 0; i < n; i++)
            mem[i * page] = 1;
        printf("truth pages=%ld\n", n);
    } else if (strcmp(argv[1], "sleeps") == 0) {
        struct timespec ms = {0, 1000000};
        for (long i = 0; i < n; i++)
            nanosleep(&ms, NULL);
        printf("truth sleeps=%ld\n", n);
    } else if (strcmp(argv[1], "exit") == 0) {
        return (int)n;
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    return 0;
}
