/* rprof's test workload: burns CPU in known functions and prints its own
 * ground truth, measured with CLOCK_THREAD_CPUTIME_ID, so tests can check a
 * profile against what really happened.
 *
 *   work split SECS         burn_a and burn_b in a 3:1 split; prints
 *                           "truth burn_a=NS burn_b=NS"
 *   work inline SECS        time spent in an always-inlined helper (mix_inline)
 *   work dlopen LIB SECS    dlopen LIB and run its dl_burn
 *   work fork SECS          fork + exec this binary as "child SECS"
 *   work child SECS         child_burn for SECS
 *   work spin SECS          prints "ready PID" then runs split (for -p attach)
 *   work threads SECS       prints "ready PID", waits 300 ms (time to attach),
 *                           then starts a second thread running burn_b while
 *                           the main thread runs burn_a, both for SECS
 *   work jit SECS           copies a spin loop into anonymous executable
 *                           memory, names it jit_spin in /tmp/perf-PID.map
 *                           (as JITs do) and runs it for SECS
 *   work loops N            fixed work: N rounds of burn_a + burn_b; prints
 *                           "ready PID", then "truth elapsed_ns=NS" (wall)
 *   work callers SECS       alpha_work called from from_left and from_right
 *                           in a 2:1 split; prints "truth from_left=NS
 *                           from_right=NS" (alpha_work's time by caller)
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

__attribute__((noinline)) void burn_a(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink = x;
}

__attribute__((noinline)) void burn_b(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = x * 2862933555777941757UL + 3037000493UL;
    sink = x;
}

static inline __attribute__((always_inline)) unsigned long mix_inline(unsigned long x, long n) {
    for (long i = 0; i < n; i++) x = (x ^ (x >> 7)) * 0x9E3779B97F4A7C15UL;
    return x;
}

__attribute__((noinline)) void inline_host(long n) { sink = mix_inline(sink, n); }

__attribute__((noinline)) void child_burn(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = x * 1103515245UL + 12345UL;
    sink = x;
}

/* Runs `fn(chunk)` repeatedly for about `secs` of wall time. */
static long long run_for(void (*fn)(long), double secs) {
    long long spent = 0;
    double end = wall_s() + secs;
    while (wall_s() < end) {
        long long t0 = thread_ns();
        fn(200000);
        spent += thread_ns() - t0;
    }
    return spent;
}

static void burn_b_chunk(long n) { burn_b(n); }
static void burn_a_chunk(long n) { burn_a(n); }

static void *second_thread(void *arg) {
    printf("truth burn_b=%lld\n", run_for(burn_b_chunk, *(double *)arg));
    return NULL;
}

/* x86-64: push rbp; mov rbp,rsp; mov rcx,imm64; 1: dec rcx; jnz 1b; pop rbp; ret */
static const unsigned char jit_code[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0xb9, 0x40, 0x0d, 0x03, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x48, 0xff, 0xc9, 0x75, 0xfb, 0x5d, 0xc3};

__attribute__((noinline)) void jit_host(void (*fn)(void)) { fn(); }

static int jit(double secs) {
    void *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return 1;
    memcpy(mem, jit_code, sizeof jit_code);
    if (mprotect(mem, 4096, PROT_READ | PROT_EXEC)) return 1;
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
    FILE *map = fopen(path, "w");
    if (!map) return 1;
    fprintf(map, "%lx %zx jit_spin\n", (unsigned long)mem, sizeof jit_code);
    fclose(map);
    double end = wall_s() + secs;
    while (wall_s() < end) jit_host((void (*)(void))mem);
    printf("jit map %s\n", path);
    return 0;
}

__attribute__((noinline)) void store_sink(unsigned long x) { sink = x; }

/* Not a leaf (it calls store_sink, and not as a tail call): GCC before 14
 * gives leaf functions no frame pointer, and a frame-pointer walk would
 * then skip their caller, which the tree of alpha_work's callers shows. */
__attribute__((noinline)) void alpha_work(long n) {
    unsigned long x = sink;
    for (long i = 0; i < n; i++) x = x * 3935559000370003845UL + 2691343689449507681UL;
    store_sink(x);
    __asm__ volatile("" ::: "memory");
}

/* Each caller times its own call of alpha_work: the truth of the tree. */
__attribute__((noinline)) long long from_left(long n) {
    long long t0 = thread_ns();
    alpha_work(n);
    return thread_ns() - t0;
}

__attribute__((noinline)) long long from_right(long n) {
    long long t0 = thread_ns();
    alpha_work(n);
    return thread_ns() - t0;
}

static void callers(double secs) {
    long long left = 0, right = 0;
    double end = wall_s() + secs;
    while (wall_s() < end) {
        left += from_left(200000);
        right += from_right(100000);
    }
    printf("truth from_left=%lld from_right=%lld\n", left, right);
}

static void split(double secs) {
    long long a = 0, b = 0;
    double end = wall_s() + secs;
    while (wall_s() < end) {
        long long t0 = thread_ns();
        burn_a(300000);
        long long t1 = thread_ns();
        burn_b(100000);
        long long t2 = thread_ns();
        a += t1 - t0;
        b += t2 - t1;
    }
    printf("truth burn_a=%lld burn_b=%lld\n", a, b);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s split|inline|fork|child|spin SECS | dlopen LIB SECS\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "split")) {
        split(atof(argv[2]));
    } else if (!strcmp(mode, "inline")) {
        printf("truth inline_host=%lld\n", run_for(inline_host, atof(argv[2])));
    } else if (!strcmp(mode, "child")) {
        printf("truth child_burn=%lld\n", run_for(child_burn, atof(argv[2])));
    } else if (!strcmp(mode, "spin")) {
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        split(atof(argv[2]));
    } else if (!strcmp(mode, "threads")) {
        double secs = atof(argv[2]);
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        usleep(300000);
        pthread_t thread;
        pthread_create(&thread, NULL, second_thread, &secs);
        printf("truth burn_a=%lld\n", run_for(burn_a_chunk, secs));
        pthread_join(thread, NULL);
    } else if (!strcmp(mode, "jit")) {
        return jit(atof(argv[2]));
    } else if (!strcmp(mode, "callers")) {
        callers(atof(argv[2]));
    } else if (!strcmp(mode, "loops")) {
        long rounds = atol(argv[2]);
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        usleep(200000); /* time for a profiler to attach */
        double t0 = wall_s();
        for (long i = 0; i < rounds; i++) {
            burn_a(300000);
            burn_b(100000);
        }
        printf("truth elapsed_ns=%.0f\n", (wall_s() - t0) * 1e9);
    } else if (!strcmp(mode, "fork")) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "child", argv[2], (char *)NULL);
            perror("exec");
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    } else if (!strcmp(mode, "dlopen") && argc >= 4) {
        void *lib = dlopen(argv[2], RTLD_NOW);
        if (!lib) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        long long (*dl_burn)(double) = (long long (*)(double))dlsym(lib, "dl_burn");
        if (!dl_burn) {
            fprintf(stderr, "dlsym: %s\n", dlerror());
            return 1;
        }
        printf("truth dl_burn=%lld\n", dl_burn(atof(argv[3])));
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
