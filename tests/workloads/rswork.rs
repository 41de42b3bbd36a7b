//! Rust workload, built as a release binary without frame pointers:
//! burn_a and burn_b in a 3:1 split, each call timed with the thread's CPU
//! clock.
//!
//!   rswork SECS   prints "truth burn_a=NS burn_b=NS"

use std::hint::black_box;
use std::time::{Duration, Instant};

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

fn thread_ns() -> i64 {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

#[inline(never)]
fn burn_a(seed: u64, n: u64) -> u64 {
    let mut x = seed;
    for _ in 0..black_box(n) {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
    }
    x
}

#[inline(never)]
fn burn_b(seed: u64, n: u64) -> u64 {
    let mut x = seed;
    for _ in 0..black_box(n) {
        x = black_box(x.wrapping_mul(2862933555777941757).wrapping_add(3037000493));
    }
    x
}

/// Not inlined either: one more frame of the program's own between the
/// burners and main.
#[inline(never)]
fn split(secs: f64) -> (i64, i64) {
    let (mut a, mut b) = (0, 0);
    let mut x = 1u64;
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let t0 = thread_ns();
        x = burn_a(x, 300_000);
        let t1 = thread_ns();
        x = burn_b(x, 100_000);
        let t2 = thread_ns();
        a += t1 - t0;
        b += t2 - t1;
    }
    black_box(x);
    (a, b)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("usage: rswork SECS");
    let (a, b) = split(secs);
    println!("truth burn_a={a} burn_b={b}");
}
