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
 *   work shift PCT SECS BURST
 *                           hot_leaf (called by hot_caller) takes PCT% of
 *                           the steady work, 200 filler functions (each
 *                           under half a percent) the rest, finely
 *                           interleaved; burst_fn runs in 30 ms bursts at
 *                           random times for about BURST% of the time
 *                           (autocorrelated samples); prints "truth
 *                           hot_leaf=NS fillers=NS burst_fn=NS"
 *   work callers SECS       alpha_work called from from_left and from_right
 *                           in a 2:1 split; prints "truth from_left=NS
 *                           from_right=NS" (alpha_work's time by caller)
 */
#include <dlfcn.h>
#include <math.h>
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


/* --- shift: a split set by an argument, plus random bursts --- */
/* Each burner ends in a call (store_sink) so it is no leaf and keeps its
 * frame pointer (see alpha_work): its caller stays in the stack. */

/* ln(U) for U uniform in (0, 1]: minus an exponential variate. */
static double ln_uniform(unsigned *seed) {
    double u = (rand_r(seed) + 1.0) / ((double)RAND_MAX + 1.0);
    return log(u);
}

#define LCG_BODY(m, c)                                         \
    unsigned long x = sink;                                    \
    for (long i = 0; i < n; i++) x = x * (m) + (c);            \
    store_sink(x);                                             \
    __asm__ volatile("" ::: "memory");

__attribute__((noinline)) void hot_leaf(long n) { LCG_BODY(6364136223846793005UL, 1UL) }
__attribute__((noinline)) void hot_caller(long n) {
    hot_leaf(n);
    __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void burst_fn(long n) { LCG_BODY(2862933555777941757UL, 7UL) }

#define FILLER(k) \
    __attribute__((noinline)) void filler_##k(long n) { LCG_BODY(6364136223846793005UL, 2UL * (k) + 3UL) }
#define FILLERS10(t) FILLER(t##0) FILLER(t##1) FILLER(t##2) FILLER(t##3) FILLER(t##4) \
    FILLER(t##5) FILLER(t##6) FILLER(t##7) FILLER(t##8) FILLER(t##9)
FILLERS10(10) FILLERS10(11) FILLERS10(12) FILLERS10(13) FILLERS10(14)
FILLERS10(15) FILLERS10(16) FILLERS10(17) FILLERS10(18) FILLERS10(19)
FILLERS10(20) FILLERS10(21) FILLERS10(22) FILLERS10(23) FILLERS10(24)
FILLERS10(25) FILLERS10(26) FILLERS10(27) FILLERS10(28) FILLERS10(29)
#define REF10(t) filler_##t##0, filler_##t##1, filler_##t##2, filler_##t##3, filler_##t##4, \
    filler_##t##5, filler_##t##6, filler_##t##7, filler_##t##8, filler_##t##9
static void (*const fillers[200])(long) = {REF10(10), REF10(11), REF10(12), REF10(13), REF10(14),
                                           REF10(15), REF10(16), REF10(17), REF10(18), REF10(19),
                                           REF10(20), REF10(21), REF10(22), REF10(23), REF10(24),
                                           REF10(25), REF10(26), REF10(27), REF10(28), REF10(29)};

static void shift(double pct, double secs, double burst_pct) {
    /* Long rounds keep the clock reads (system calls whose libc wrapper has no
     * frame pointer, so their stacks skip main) near 1% of the time: their
     * kernel cost moves with the host's load and would move main's share. */
    const long round = 400000;
    long hot_n = (long)(pct * round / 100.0);
    long fill_n = (long)((100.0 - pct) * round / 100.0 / 200.0);
    long long hot = 0, fill = 0, burst = 0;
    unsigned seed = (unsigned)getpid() ^ (unsigned)(wall_s() * 1e6);
    double burst_len = 0.030;
    /* Mean gap between bursts so that bursts hold burst_pct of the time. */
    double gap = burst_pct > 0 ? burst_len * (100.0 - burst_pct) / burst_pct : 0;
    double now = wall_s(), end = now + secs;
    double next_burst = burst_pct > 0 ? now - gap * ln_uniform(&seed) : end + 1;
    while ((now = wall_s()) < end) {
        if (now >= next_burst) {
            long long t0 = thread_ns();
            double stop = now + burst_len;
            while (wall_s() < stop) burst_fn(20000);
            burst += thread_ns() - t0;
            next_burst = wall_s() - gap * ln_uniform(&seed);
            continue;
        }
        /* Rounds of random length (0.5x to 1.5x), so a periodic sampler
         * cannot lock onto their phase and favour one function. */
        double scale = 0.5 + rand_r(&seed) / ((double)RAND_MAX + 1.0);
        long long t0 = thread_ns();
        hot_caller((long)(hot_n * scale));
        long long t1 = thread_ns();
        for (int k = 0; k < 200; k++) fillers[k]((long)(fill_n * scale));
        long long t2 = thread_ns();
        hot += t1 - t0;
        fill += t2 - t1;
    }
    printf("truth hot_leaf=%lld fillers=%lld burst_fn=%lld\n", hot, fill, burst);
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
    } else if (!strcmp(mode, "shift") && argc >= 5) {
        shift(atof(argv[2]), atof(argv[3]), atof(argv[4]));
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
