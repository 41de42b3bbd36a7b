//! Throughput of the report pipeline on a generated recording: decoding
//! (samples/s), replay + aggregation + folding or pprof (samples/s), and in-process
//! symbolization of this bench binary's own code (addresses/s).
//!
//! Measured (2-core VM, medians, one run each, the same machine):
//! decode in time order 10.7 M samples/s (before streaming: decode + sort
//! 4.29 M/s); replay + aggregate + fold 2.0 M samples/s (before: 1.32 M/s).
//! Symbolization with inline frames of 20,000 addresses spread over this
//! binary's `.text` (one lookup per address, mostly distinct functions):
//! 53 K addresses/s, `--quick`, on a machine loaded by other builds.
//! Replay + aggregate + pprof (gzipped): 600 K samples/s against 670 K/s
//! for folded, the same run (median, 2 cores loaded by other builds); by
//! hand, `report --format pprof` of this file takes 0.20-0.37 s and 46.7 MB
//! peak RSS, `--format folded` 0.19-0.27 s and 46.8 MB.
//! Peak memory against the recording's size is `benches/memory.sh`.
//! Flame graphs (`flame/`): a generated million-sample recording (192 MB,
//! ~41,000 unique stacks, named by an embedded symbol table), replayed,
//! aggregated, named and drawn: svg 5.8 s, html 3.2 s per iteration on the
//! shared 2-core VM (other builds running). By hand, `rprof report` on that
//! file: folded 3.05 s wall / 255 MB max RSS (8.1 MB out), svg 2.74 s /
//! 255 MB (52 KB: frames under 0.1 px left out), html 3.32 s / 256 MB
//! (1.08 MB, every stack); most of it is reading the file, and the RSS is
//! mostly the mapped recording.
//! diff of the recording against itself (two models with 10 ms buckets,
//! slice tests, table) of the 100,000-sample recording: 233 ms, 429 K samples/s
//! (`--quick`, on the loaded 2-core VM).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rprof::aggregate::{self, ProfileOptions};
use rprof::diff;
use rprof::event::{CallGraph, EventSpec, Sampling};
use rprof::output::pprof::Pprof;
use rprof::output::{FlameGraphHtml, FlameGraphSvg, Folded, Output};
use rprof::perfdata::records::CpuMode;
use rprof::perfdata::writer::{encode, AttrEntry};
use rprof::perfdata::{Comm, FeatureData, Mmap, PerfDataWriter, PerfFile, Sample};
use rprof::symbolize::{
    Frame, ModuleKind, ModuleRef, ModuleRequest, SymbolTable, SymbolizeOptions, Symbolizer,
};

const SAMPLES: u64 = 100_000;

/// Samples in the generated recording: `RPROF_BENCH_SAMPLES`, else [`SAMPLES`]
/// (e.g. a million for measuring `rprof diff` by hand on the kept file).
fn samples() -> u64 {
    std::env::var("RPROF_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SAMPLES)
}
const APP_START: u64 = 0x40_0000;

/// Samples of the flame graph benches' recording.
const FLAME_SAMPLES: u64 = 1_000_000;

/// The comm and executable mapping of the two generated processes (100, 200).
fn write_processes(writer: &mut PerfDataWriter, sample_type: u64) {
    for pid in [100, 200] {
        let comm = Comm {
            pid,
            tid: pid,
            comm: format!("app{pid}"),
            ..Comm::default()
        };
        writer
            .write_raw(&encode::comm(sample_type, &comm))
            .expect("write");
        let map = Mmap {
            cpumode: CpuMode::User,
            pid,
            tid: pid,
            start: APP_START,
            len: 0x10_0000,
            filename: "/usr/bin/app".into(),
            prot: rprof::perfdata::records::PROT_READ | rprof::perfdata::records::PROT_EXEC,
            ..Mmap::default()
        };
        writer
            .write_raw(&encode::mmap2(sample_type, &map))
            .expect("write");
    }
}

/// A recording of two processes with 16-deep user stacks over 64 distinct leaves.
fn generated_recording() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rprof-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bench.data");
    let _ = std::fs::remove_file(&path);
    let attr = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer).to_attr();
    let mut writer =
        PerfDataWriter::create(&path, &[AttrEntry { attr, ids: vec![1] }]).expect("create");
    write_processes(&mut writer, attr.sample_type);
    for i in 0..samples() {
        let leaf = APP_START + (i % 64) * 0x40;
        let mut callchain = vec![rprof::abi::context::USER, leaf];
        callchain.extend((1..16).map(|depth| APP_START + 0x8000 + depth * 0x100 + (i % 3)));
        let sample = Sample {
            cpumode: CpuMode::User,
            ip: leaf,
            pid: if i % 2 == 0 { 100 } else { 200 },
            tid: if i % 2 == 0 { 100 } else { 200 },
            time: 1_000 + i * 1_000_000,
            period: 1_001_001,
            callchain: callchain.into(),
            ..Sample::default()
        };
        writer
            .write_raw(&encode::sample(attr.sample_type, &sample))
            .expect("write");
    }
    writer.finish(&FeatureData::default()).expect("finish");
    path
}

/// Leaves and callers of the flame recording's stacks: 4096 leaves, each
/// under one of 5 call paths per process, 16 frames deep.
fn flame_callchain(i: u64) -> Vec<u64> {
    let leaf = APP_START + (i % 4096) * 0x40;
    let path = (i / 4096) % 5;
    let mut callchain = vec![rprof::abi::context::USER, leaf];
    callchain.extend((1..16).map(|depth| APP_START + 0x8_0000 + depth * 0x100 + path * 0x10 + 1));
    callchain
}

/// A million-sample recording for the flame graphs: two processes, about
/// 41,000 unique stacks, every address named by an embedded symbol table
/// (`leaf_N`, `caller_D_P`), as `rprof record` embeds them. Its path is
/// printed, to measure `rprof report` on it by hand.
fn generated_flame_recording() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rprof-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("flame.data");
    let _ = std::fs::remove_file(&path);
    let attr = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer).to_attr();
    let mut writer =
        PerfDataWriter::create(&path, &[AttrEntry { attr, ids: vec![1] }]).expect("create");
    let module = ModuleRef {
        kind: ModuleKind::Elf,
        path: "/usr/bin/app".into(),
        build_id: None,
        pid: None,
    };
    write_processes(&mut writer, attr.sample_type);
    for i in 0..FLAME_SAMPLES {
        let pid = if (i / 7) % 2 == 0 { 100 } else { 200 };
        let callchain = flame_callchain(i);
        let sample = Sample {
            cpumode: CpuMode::User,
            ip: callchain[1],
            pid,
            tid: pid,
            time: 1_000 + i * 1_000_000,
            period: 1_001_001,
            callchain: callchain.into(),
            ..Sample::default()
        };
        writer
            .write_raw(&encode::sample(attr.sample_type, &sample))
            .expect("write");
    }
    // Names for every address (and the address before it: callers are
    // looked up at the return address minus one).
    let mut table = SymbolTable::new();
    let id = table.module_id(&module);
    let mut name = |addr: u64, function: String| {
        for offset in [addr - APP_START, addr - APP_START - 1] {
            table.insert_frames(id, offset, Frame::function_only(function.clone()));
        }
    };
    for leaf in 0..4096 {
        name(APP_START + leaf * 0x40, format!("leaf_{leaf}"));
    }
    for depth in 1..16 {
        for path in 0..5 {
            name(
                APP_START + 0x8_0000 + depth * 0x100 + path * 0x10 + 1,
                format!("caller_{depth}_{path}"),
            );
        }
    }
    let features = FeatureData {
        cmdline: vec![
            "rprof".into(),
            "record".into(),
            "-g".into(),
            "--".into(),
            "app".into(),
        ],
        rprof_symbols: Some(table.encode()),
        ..FeatureData::default()
    };
    writer.finish(&features).expect("finish");
    eprintln!("flame bench recording: {}", path.display());
    path
}

/// report -> svg and -> html on a million samples: replay, aggregation,
/// naming from the embedded table, folding and drawing.
fn bench_flame(c: &mut Criterion) {
    let path = generated_flame_recording();
    let file = PerfFile::open(&path).expect("open");
    let table = file
        .feature(rprof::perfdata::format::feature::RPROF_SYMBOLS)
        .map(SymbolTable::decode)
        .expect("embedded symbols")
        .expect("decode symbols");
    let mut group = c.benchmark_group("flame");
    group.throughput(Throughput::Elements(FLAME_SAMPLES));
    group.sample_size(10);
    let outputs: [(&str, Box<dyn Output>); 2] = [
        ("report_svg", Box::new(FlameGraphSvg::default())),
        ("report_html", Box::new(FlameGraphHtml::default())),
    ];
    for (name, output) in outputs {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut profile = aggregate::profile_file(&file, &ProfileOptions::default());
                profile.name_locations(&table);
                let mut out = Vec::new();
                output.write(&profile, &mut out).expect("draw");
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn bench_report(c: &mut Criterion) {
    let path = generated_recording();
    let mut group = c.benchmark_group("report");
    group.throughput(Throughput::Elements(samples()));
    group.sample_size(10);
    group.bench_function("decode_ordered_records", |b| {
        b.iter(|| {
            let file = PerfFile::open(&path).expect("open");
            black_box(file.ordered().count())
        })
    });
    group.bench_function("replay_aggregate_folded", |b| {
        let file = PerfFile::open(&path).expect("open");
        b.iter(|| {
            let mut profile = aggregate::profile_file(&file, &ProfileOptions::default());
            profile.name_locations(&SymbolTable::new());
            let mut out = Vec::new();
            Folded::default().write(&profile, &mut out).expect("fold");
            black_box(out.len())
        })
    });
    group.bench_function("diff_self_recording", |b| {
        // `rprof diff X X` without the file reads: both sides' models with
        // 10 ms buckets, the slice-level tests, the top table.
        let file = PerfFile::open(&path).expect("open");
        let options = ProfileOptions {
            time_bucket_ns: 10_000_000,
            ..ProfileOptions::default()
        };
        b.iter(|| {
            let mut functions = diff::Functions::default();
            let mut side = || {
                let mut profile = aggregate::profile_file(&file, &options);
                profile.name_locations(&SymbolTable::new());
                diff::input::from_profile("bench", &profile, 0, &mut functions)
            };
            let (before, after) = (side(), side());
            let result = diff::compare(&[before], &[after], functions, Default::default());
            let mut out = Vec::new();
            diff::output::write_top(&result, &mut out).expect("top");
            black_box(out.len())
        })
    });
    group.bench_function("replay_aggregate_pprof", |b| {
        let file = PerfFile::open(&path).expect("open");
        b.iter(|| {
            let mut profile = aggregate::profile_file(&file, &ProfileOptions::default());
            profile.name_locations(&SymbolTable::new());
            let mut out = Vec::new();
            Pprof::default().write(&profile, &mut out).expect("pprof");
            black_box(out.len())
        })
    });
    group.finish();
}

fn bench_symbolize(c: &mut Criterion) {
    let exe = std::env::current_exe().expect("current exe");
    let addrs = text_file_offsets(&exe, 20_000);
    let module = ModuleRef {
        kind: ModuleKind::Elf,
        path: exe.display().to_string(),
        build_id: None,
        pid: None,
    };
    let mut group = c.benchmark_group("symbolize");
    group.throughput(Throughput::Elements(addrs.len() as u64));
    group.sample_size(10);
    group.bench_function("own_binary_dwarf_inline", |b| {
        b.iter(|| {
            let request = ModuleRequest {
                module: module.clone(),
                addrs: addrs.clone(),
            };
            let (table, _) = Symbolizer::new(SymbolizeOptions::default()).symbolize(vec![request]);
            black_box(table.len())
        })
    });
    group.finish();
}

/// `count` file offsets spread evenly over the binary's `.text`.
fn text_file_offsets(path: &std::path::Path, count: u64) -> Vec<u64> {
    use object::{Object, ObjectSection, ObjectSegment};
    let data = std::fs::read(path).expect("read own binary");
    let file = object::File::parse(&*data).expect("parse own binary");
    let text = file.section_by_name(".text").expect(".text");
    let segment = file
        .segments()
        .find(|s| s.address() <= text.address() && text.address() < s.address() + s.size())
        .expect("segment of .text");
    let step = (text.size() / count).max(1);
    (0..count)
        .map(|i| text.address() + i * step - segment.address() + segment.file_range().0)
        .collect()
}

criterion_group!(benches, bench_report, bench_flame, bench_symbolize);
criterion_main!(benches);
