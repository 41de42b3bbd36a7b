//! Writes a synthetic recording of a chosen size, for the memory benchmark
//! (`benches/memory.sh`): many records over a chosen number of unique
//! stacks, in the layout `rprof record` writes (two CPUs' rings interleaved
//! per drain, FINISHED_ROUND after each drain).
//!
//!     cargo run --release --example gen_recording -- OUT SIZE_MB UNIQUE_STACKS [DEPTH]

use std::path::PathBuf;
use std::process::ExitCode;

use rprof::abi::context;
use rprof::event::{CallGraph, EventSpec, Sampling};
use rprof::perfdata::records::CpuMode;
use rprof::perfdata::writer::{encode, AttrEntry};
use rprof::perfdata::{Comm, FeatureData, Mmap, PerfDataWriter, Sample};

const APP_START: u64 = 0x40_0000;
const PROCESSES: u32 = 16;
/// Samples per drain, per CPU.
const PER_DRAIN: u64 = 500;

struct Args {
    out: PathBuf,
    size_mb: u64,
    unique_stacks: u64,
    depth: u64,
}

fn parse() -> Option<Args> {
    let mut args = std::env::args().skip(1);
    Some(Args {
        out: PathBuf::from(args.next()?),
        size_mb: args.next()?.parse().ok()?,
        unique_stacks: args.next()?.parse().ok()?,
        depth: args.next().map_or(Some(16), |d| d.parse().ok())?,
    })
}

/// Stack `n` of the workload: a leaf and `depth - 1` callers, all distinct
/// per stack so `unique_stacks` stacks have that many distinct leaves.
fn callchain(n: u64, depth: u64) -> Vec<u64> {
    let mut chain = vec![context::USER, APP_START + (n % 0x8000) * 0x10];
    chain.extend((1..depth).map(|d| APP_START + 0x8_0000 + d * 0x100 + (n / 0x8000) % 0x10));
    chain
}

fn main() -> ExitCode {
    let Some(args) = parse() else {
        eprintln!("usage: gen_recording OUT SIZE_MB UNIQUE_STACKS [DEPTH]");
        return ExitCode::FAILURE;
    };
    let attr = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer).to_attr();
    let st = attr.sample_type;
    let _ = std::fs::remove_file(&args.out);
    let mut writer = match PerfDataWriter::create(&args.out, &[AttrEntry { attr, ids: vec![] }]) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("gen_recording: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut buf = Vec::new();
    for pid in 1..=PROCESSES {
        buf.extend(encode::comm(
            st,
            &Comm {
                pid,
                tid: pid,
                comm: format!("app{pid}"),
                ..Comm::default()
            },
        ));
        buf.extend(encode::mmap2(
            st,
            &Mmap {
                cpumode: CpuMode::User,
                pid,
                tid: pid,
                start: APP_START,
                len: 0x10_0000,
                filename: "/usr/bin/app".into(),
                prot: rprof::perfdata::records::PROT_READ | rprof::perfdata::records::PROT_EXEC,
                ..Mmap::default()
            },
        ));
    }
    let target = args.size_mb << 20;
    let mut written = 0u64;
    let mut n = 0u64;
    let mut time = 1_000_000u64;
    while written < target {
        // One drain: CPU 0's ring, then CPU 1's, each in time order; the
        // two overlap in time as real rings do.
        for cpu in 0..2u64 {
            for i in 0..PER_DRAIN {
                let pid = 1 + ((n + i) % u64::from(PROCESSES)) as u32;
                let callchain = callchain((n + i) % args.unique_stacks.max(1), args.depth);
                let sample = Sample {
                    cpumode: CpuMode::User,
                    ip: callchain[1],
                    pid,
                    tid: pid,
                    time: time + i * 2_000 + cpu * 1_000,
                    cpu: cpu as u32,
                    period: 1_001_001,
                    callchain: callchain.into(),
                    ..Sample::default()
                };
                buf.extend(encode::sample(st, &sample));
            }
            n += PER_DRAIN;
        }
        time += PER_DRAIN * 2_000;
        buf.extend(encode::finished_round());
        written += buf.len() as u64;
        if let Err(e) = writer.write_raw(&buf) {
            eprintln!("gen_recording: {e}");
            return ExitCode::FAILURE;
        }
        buf.clear();
    }
    if let Err(e) = writer.finish(&FeatureData::default()) {
        eprintln!("gen_recording: {e}");
        return ExitCode::FAILURE;
    }
    println!("{} samples, {} MiB", n, written >> 20);
    ExitCode::SUCCESS
}
