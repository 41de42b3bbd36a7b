//! rprof beside other profilers on one host. Kernel 6.x sets the MMAP2
//! build-id flag on the records of events that did not ask for build ids
//! once another event did (every event on the host, when that one is
//! system-wide), over bodies that still hold device/inode bytes: rprof must
//! not cause that, and must read such records whoever caused them.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rprof::abi::{context, misc};
use rprof::event::{CallGraph, EventSpec, Sampling};
use rprof::perfdata::records::CpuMode;
use rprof::perfdata::writer::{encode, AttrEntry};
use rprof::perfdata::{Comm, FeatureData, Mmap, PerfDataWriter, Sample, SampleId};

use crate::symbolize::file_offset;
use crate::util::*;

const PID: u32 = 4242;
const MAP_START: u64 = 0x5555_5555_0000;

/// `record` with the build-id flag set over device/inode bytes, as kernel
/// 6.18 writes it for an event beside a system-wide one with build ids:
/// `maj` 254 (size byte 0xfe), the file's inode, generation 0.
fn flagged_over_device_inode(mut record: Vec<u8>, ino: u64) -> Vec<u8> {
    let misc_bits = u16::from_le_bytes([record[4], record[5]]) | misc::MMAP_BUILD_ID;
    record[4..6].copy_from_slice(&misc_bits.to_le_bytes());
    // Header (8), pid, tid (8), start, len, pgoff (24): then maj, min, ino, gen.
    let area = &mut record[40..64];
    area[..4].copy_from_slice(&254u32.to_le_bytes());
    area[4..8].copy_from_slice(&0u32.to_le_bytes());
    area[8..16].copy_from_slice(&ino.to_le_bytes());
    area[16..].copy_from_slice(&0u64.to_le_bytes());
    record
}

/// A recording of `work` sampled 200 times in burn_a, its one MMAP2 record
/// flagged over device/inode bytes.
fn write_flagged_recording(path: &Path, work: &Path) {
    let attr = EventSpec::cpu_clock(Sampling::Period(1_000_000), CallGraph::FramePointer).to_attr();
    let st = attr.sample_type;
    let mut writer =
        PerfDataWriter::create(path, &[AttrEntry { attr, ids: vec![] }]).expect("create");
    let id = SampleId {
        pid: Some(PID),
        tid: Some(PID),
        time: Some(1),
        id: None,
        cpu: Some(0),
    };
    let comm = Comm {
        pid: PID,
        tid: PID,
        comm: "work".into(),
        exec: true,
        sample_id: id,
    };
    let meta = std::fs::metadata(work).unwrap();
    let map = Mmap {
        cpumode: CpuMode::User,
        pid: PID,
        tid: PID,
        start: MAP_START,
        len: meta.len().next_multiple_of(4096),
        pgoff: 0,
        filename: work.to_str().unwrap().into(),
        build_id: None,
        inode: None,
        prot: (libc::PROT_READ | libc::PROT_EXEC) as u32,
        flags: libc::MAP_PRIVATE as u32,
        sample_id: id,
    };
    let mut data = encode::comm(st, &comm);
    data.extend(flagged_over_device_inode(
        encode::mmap2(st, &map),
        meta.ino(),
    ));
    let (burn_a, size) = file_offset(work, "burn_a");
    for i in 0..200 {
        let ip = MAP_START + burn_a + i % size;
        let sample = Sample {
            cpumode: CpuMode::User,
            ip,
            pid: PID,
            tid: PID,
            time: 10 + i,
            period: 1_000_000,
            callchain: vec![context::USER, ip].into(),
            ..Sample::default()
        };
        data.extend(encode::sample(st, &sample));
    }
    writer.write_raw(&data).expect("write");
    writer.finish(&FeatureData::default()).expect("finish");
}

/// burn_a's self share in `rprof report` of `data`, which must name its
/// functions without a build-id mismatch.
fn rprof_share_of_burn_a(data: &Path) -> f64 {
    let run = rprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--sort",
        "symbol",
        "--no-children",
    ]);
    let (out, err) = (text(&run.stdout), text(&run.stderr));
    assert!(run.status.success(), "rprof report: {err}");
    assert!(!err.contains("build id mismatch"), "{err}");
    let share = share_of(&self_shares(&out), "burn_a");
    eprintln!("burn_a: {share:.2}% in {}\n{out}{err}", data.display());
    share
}

#[test]
fn report_names_functions_of_mmap2_records_flagged_over_device_inode_bytes() {
    let dir = temp_dir("flagged-mmap2");
    let data = dir.join("flagged.data");
    write_flagged_recording(&data, &workloads().work);
    assert!(rprof_share_of_burn_a(&data) > 99.0);
}

/// Waits until `rprof record -a` has created its file, which it does once
/// its events are open (it enables them right after).
fn wait_until_recording(recorder: &mut std::process::Child, file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        if let Some(status) = recorder.try_wait().unwrap() {
            panic!("rprof record -a ended before recording: {status:?}");
        }
        assert!(
            Instant::now() < deadline,
            "rprof record -a did not start within a minute"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn linux_perf_beside_a_system_wide_recording_finishes_and_reads_its_file() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let kernel = KernelWide::system_wide();
    let dir = temp_dir("coexist");
    let all = dir.join("all.data");
    let mut recorder = Command::new(rprof_bin())
        .args([
            "record",
            "-a",
            "--duration",
            "3",
            "--no-embed-symbols",
            "-o",
        ])
        .arg(&all)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rprof record -a");
    wait_until_recording(&mut recorder, &all);

    // perf launches the workload, so its exec's MMAP2 records come while
    // rprof's system-wide events are enabled.
    let perf_data = dir.join("perf.data");
    let perf_data = perf_data.to_str().unwrap();
    let work = workloads().work.to_str().unwrap();
    perf_succeeded(
        run_linux_perf_holding(
            &kernel,
            [
                "record", "-q", "-g", "-o", perf_data, "--", work, "split", "1",
            ],
        ),
        "perf record",
    );
    let recorded = recorder.wait_with_output().unwrap();
    assert!(
        recorded.status.success(),
        "rprof record -a: {}",
        text(&recorded.stderr)
    );

    let report = perf_succeeded(
        run_linux_perf_holding(&kernel, ["report", "-i", perf_data, "--stdio"]),
        "perf report",
    );
    assert!(report.contains("burn_a"), "perf report names no burn_a");
    let script = perf_succeeded(
        run_linux_perf_holding(&kernel, ["script", "-i", perf_data]),
        "perf script",
    );
    assert!(script.contains("burn_a"), "perf script shows no burn_a");
    assert!(rprof_share_of_burn_a(Path::new(perf_data)) > 40.0);
}
