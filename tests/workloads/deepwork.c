// Deep stacks: a recursion whose frames outgrow the 8 KB of stack a DWARF
// sample copies. Built with frame pointers, so the kernel's frame-pointer
// walk of the same stack reaches main: where the copy ends, the unwinder
// goes on along it. Usage: deepwork SECS
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void burn(void) {
    for (int i = 0; i < 100000; i++)
        sink += i;
}

// About 300 bytes of stack per level: 100 levels are 30 KB.
__attribute__((noinline)) static void dive(int depth) {
    volatile char pad[256];
    pad[0] = (char)depth;
    if (depth == 0)
        burn();
    else
        dive(depth - 1);
    sink += pad[0];
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        dive(100);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
    return 0;
}
