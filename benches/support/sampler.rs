//! Real stacks for the unwinding benches, sampled in the bench process
//! itself the way the kernel samples them for `perf record --call-graph
//! dwarf`: a timer signal interrupts a workload thread at an arbitrary
//! instruction (prologues, epilogues, libc, std internals included), and
//! the handler copies the interrupted rip/rsp/rbp and the stack from rsp
//! up, as `PERF_SAMPLE_REGS_USER` + `PERF_SAMPLE_STACK_USER` hold them.
//!
//! Why not a `perf record` recording: it needs perf and
//! `perf_event_paranoid` (or root) on the machine running the bench, and
//! a recording would go stale as the bench binary is rebuilt. Why not
//! registers captured at call sites (inline asm): every stack would start
//! at the same few pcs, right after a call, where the rules are simplest
//! and the rule cache always hits. Here the code is this release binary
//! (Rust, no frame pointers, CFI in `.eh_frame`) and glibc, and the
//! modules are its own mappings from /proc/self/maps, loaded with rprof's
//! `load_unwind_info` as a report loads them.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use rprof::symbolize::unwind_info::load_unwind_info;
use rprof::symbolize::{ModuleKind, ModuleRef};
use rprof::unwind::dwarf::MappedModule;

/// One sample: the interrupted registers and the copied stack.
pub struct Sampled {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    pub stack: Vec<u8>,
}

/// samply's copy size; more than the workload's deepest stack, so the
/// walks reach the thread's root.
pub const STACK_COPY: usize = 32 * 1024;

// What the signal handler needs, set before the timer starts. The
// handler may not allocate or lock: it writes into a preallocated buffer.
static TARGET_TID: AtomicU64 = AtomicU64::new(0);
static STACK_LO: AtomicU64 = AtomicU64::new(0);
static STACK_HI: AtomicU64 = AtomicU64::new(0);
static BUFFER: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
static REGS: AtomicPtr<[u64; 4]> = AtomicPtr::new(ptr::null_mut());
static CAPACITY: AtomicUsize = AtomicUsize::new(0);
static NEXT: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicBool = AtomicBool::new(false);
/// Set while the workload runs: samples of the thread's start and exit
/// (half-built or half-torn-down stacks) are not wanted.
static IN_WORKLOAD: AtomicBool = AtomicBool::new(false);

fn gettid() -> u64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

extern "C" fn on_signal(
    _signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    if gettid() != TARGET_TID.load(Ordering::Relaxed) || !IN_WORKLOAD.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: the kernel passes a valid ucontext_t to an SA_SIGINFO handler.
    let gregs = unsafe { &(*(context as *const libc::ucontext_t)).uc_mcontext.gregs };
    let ip = gregs[libc::REG_RIP as usize] as u64;
    let sp = gregs[libc::REG_RSP as usize] as u64;
    let bp = gregs[libc::REG_RBP as usize] as u64;
    let (lo, hi) = (
        STACK_LO.load(Ordering::Relaxed),
        STACK_HI.load(Ordering::Relaxed),
    );
    if sp < lo || sp >= hi {
        return;
    }
    let index = NEXT.fetch_add(1, Ordering::Relaxed);
    if index >= CAPACITY.load(Ordering::Relaxed) {
        DONE.store(true, Ordering::Relaxed);
        return;
    }
    let len = ((hi - sp) as usize).min(STACK_COPY);
    // SAFETY: [sp, sp + len) lies inside this thread's stack mapping
    // (checked against its bounds above), which is readable; the buffer
    // has CAPACITY slots of STACK_COPY bytes and `index` < CAPACITY; only
    // this handler writes it while the timer runs (the reader waits for
    // the workload thread to stop first).
    unsafe {
        let slot = BUFFER.load(Ordering::Relaxed).add(index * STACK_COPY);
        ptr::copy_nonoverlapping(sp as *const u8, slot, len);
        *REGS.load(Ordering::Relaxed).add(index) = [ip, sp, bp, len as u64];
    }
}

/// Samples the workload thread `count` times (at about 4 kHz of wall
/// time) and returns the samples, in order.
pub fn sample_workload(count: usize) -> Vec<Sampled> {
    let mut buffer = vec![0u8; count * STACK_COPY];
    let mut regs = vec![[0u64; 4]; count];
    BUFFER.store(buffer.as_mut_ptr(), Ordering::SeqCst);
    REGS.store(regs.as_mut_ptr(), Ordering::SeqCst);
    CAPACITY.store(count, Ordering::SeqCst);
    NEXT.store(0, Ordering::SeqCst);
    DONE.store(false, Ordering::SeqCst);

    // SAFETY: a zeroed sigaction is valid; the handler is an SA_SIGINFO
    // handler of the right signature that only touches atomics and the
    // preallocated buffer.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGPROF, &action, ptr::null_mut()), 0);
    }

    std::thread::Builder::new()
        .name("workload".into())
        .spawn(|| {
            let (lo, hi) = own_stack_bounds();
            STACK_LO.store(lo, Ordering::SeqCst);
            STACK_HI.store(hi, Ordering::SeqCst);
            TARGET_TID.store(gettid(), Ordering::SeqCst);
            let timer = start_timer(gettid());
            let mut round = 0u64;
            IN_WORKLOAD.store(true, Ordering::SeqCst);
            while !DONE.load(Ordering::Relaxed) {
                black_box(workload(round));
                round += 1;
            }
            IN_WORKLOAD.store(false, Ordering::SeqCst);
            // SAFETY: `timer` came from timer_create and is deleted once.
            unsafe { libc::timer_delete(timer) };
        })
        .expect("spawn workload thread")
        .join()
        .expect("workload thread");
    TARGET_TID.store(0, Ordering::SeqCst);
    BUFFER.store(ptr::null_mut(), Ordering::SeqCst);
    REGS.store(ptr::null_mut(), Ordering::SeqCst);

    regs.iter()
        .enumerate()
        .filter(|(_, r)| r[3] > 0)
        .map(|(i, &[ip, sp, bp, len])| Sampled {
            ip,
            sp,
            bp,
            stack: buffer[i * STACK_COPY..i * STACK_COPY + len as usize].to_vec(),
        })
        .collect()
}

/// The calling thread's stack: [lowest, highest) address.
fn own_stack_bounds() -> (u64, u64) {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread, and
    // it is destroyed once after pthread_attr_getstack read it.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
        let mut addr: *mut libc::c_void = ptr::null_mut();
        let mut size: libc::size_t = 0;
        assert_eq!(libc::pthread_attr_getstack(&attr, &mut addr, &mut size), 0);
        libc::pthread_attr_destroy(&mut attr);
        (addr as u64, addr as u64 + size as u64)
    }
}

/// A 250 us CLOCK_MONOTONIC timer sending SIGPROF to thread `tid`.
fn start_timer(tid: u64) -> libc::timer_t {
    // SAFETY: zeroed sigevent/itimerspec are valid; timer_create writes
    // the new timer's id into `timer`.
    unsafe {
        let mut event: libc::sigevent = std::mem::zeroed();
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = libc::SIGPROF;
        event.sigev_notify_thread_id = tid as libc::c_int;
        let mut timer: libc::timer_t = std::mem::zeroed();
        assert_eq!(
            libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer),
            0
        );
        let mut spec: libc::itimerspec = std::mem::zeroed();
        spec.it_interval.tv_nsec = 250_000;
        spec.it_value.tv_nsec = 250_000;
        assert_eq!(libc::timer_settime(timer, 0, &spec, ptr::null_mut()), 0);
        timer
    }
}

/// Executable file mappings of this process, as a report's process model
/// has them, with their unwind sections loaded by rprof; and a check that
/// an address is in any executable mapping (the unwinders' `is_code`).
pub fn own_modules() -> (Vec<MappedModule>, Vec<std::ops::Range<u64>>) {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let mut infos = BTreeMap::new();
    let mut modules = Vec::new();
    let mut code = Vec::new();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [range, perms, offset, _, _, rest @ ..] = fields.as_slice() else {
            continue;
        };
        if perms.as_bytes().get(2) != Some(&b'x') {
            continue;
        }
        let (start, end) = range.split_once('-').expect("maps range");
        let avma = u64::from_str_radix(start, 16).unwrap()..u64::from_str_radix(end, 16).unwrap();
        code.push(avma.clone());
        let Some(path) = rest.first().filter(|p| p.starts_with('/')) else {
            continue;
        };
        let info = infos.entry(path.to_string()).or_insert_with(|| {
            let module = ModuleRef {
                kind: ModuleKind::Elf,
                path: path.to_string(),
                build_id: None,
                pid: None,
            };
            load_unwind_info(&module).ok().map(Arc::new)
        });
        if let Some(info) = info {
            modules.push(MappedModule {
                name: path.to_string(),
                avma,
                pgoff: u64::from_str_radix(offset, 16).unwrap(),
                info: Arc::clone(info),
            });
        }
    }
    (modules, code)
}

// The workload: recursion of varying depth through differently shaped
// frames, ending in std code (sorting, B-trees, hashing, formatting,
// string handling) that calls into glibc (malloc, memcpy).

/// Where the workload's outermost function lies (it is far shorter than
/// 256 bytes): a correct unwind of a sample passes through it.
pub fn workload_code() -> std::ops::Range<u64> {
    let start = workload as fn(u64) -> u64 as usize as u64;
    start..start + 256
}

#[inline(never)]
fn workload(round: u64) -> u64 {
    let seed = round.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ (round >> 7);
    // Not a tail call: this frame stays on the stack.
    descend((seed % 24) as u32, seed).wrapping_add(round)
}

#[inline(never)]
fn descend(depth: u32, seed: u64) -> u64 {
    if depth == 0 {
        return leaf(seed);
    }
    match (seed >> depth) % 3 {
        0 => descend(depth - 1, seed).wrapping_add(1),
        1 => descend_wide(depth - 1, seed),
        _ => descend_saving(depth - 1, seed.rotate_left(3)),
    }
}

/// A frame with an array on the stack.
#[inline(never)]
fn descend_wide(depth: u32, seed: u64) -> u64 {
    let mut scratch = [0u64; 24];
    for (i, slot) in scratch.iter_mut().enumerate() {
        *slot = seed.wrapping_mul(i as u64 + 1);
    }
    let below = descend(depth, black_box(seed));
    black_box(&scratch).iter().fold(below, |a, &b| a ^ b)
}

/// A frame keeping values alive across the call (callee-saved registers).
#[inline(never)]
fn descend_saving(depth: u32, seed: u64) -> u64 {
    let (a, b, c) = (seed ^ 1, seed.rotate_left(7), seed.wrapping_mul(3));
    let below = descend(depth, seed);
    below ^ a ^ b.wrapping_add(c)
}

#[inline(never)]
fn leaf(seed: u64) -> u64 {
    match seed % 5 {
        0 => {
            let mut v: Vec<u64> = (0..512u64)
                .map(|i| i.wrapping_mul(seed | 1).rotate_left(17))
                .collect();
            v.sort_unstable();
            v[seed as usize % v.len()]
        }
        1 => {
            let map: BTreeMap<u64, u64> =
                (0..256u64).map(|i| (i.wrapping_mul(seed | 1), i)).collect();
            map.range(seed..).next().map_or(0, |(_, v)| *v)
        }
        2 => {
            let floats: Vec<f64> = (0..48)
                .map(|i| (seed as f64).sqrt() * i as f64 / 7.0)
                .collect();
            format!("{floats:?}").len() as u64
        }
        3 => {
            let mut map = std::collections::HashMap::new();
            for i in 0..256u64 {
                *map.entry(format!("k{}", i.wrapping_mul(seed) % 97))
                    .or_insert(0u64) += i;
            }
            map.len() as u64
        }
        _ => {
            let text =
                format!("{seed:x} the quick brown fox {seed} jumps over {seed:o} the lazy dog ");
            let words: Vec<String> = text
                .repeat(8)
                .split_whitespace()
                .map(str::to_uppercase)
                .collect();
            words.join("-").len() as u64
        }
    }
}
