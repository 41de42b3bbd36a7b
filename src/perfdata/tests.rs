//! Writer -> reader round trips, malformed-input robustness, and checks
//! against Linux `perf` (skipped when perf cannot run, unless
//! `RPROF_REQUIRE_PERF` is set).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use super::compressed::tests::perf_like_stream;
use super::format::feature;
use super::reader::{MAX_UNPACKED_PER_RECORD, MAX_UNPACK_RATIO};
use super::records::CpuMode;
use super::writer::{encode, AttrEntry};
use super::*;
use super::{pipe, DataSink, PipeWriter};
use crate::abi::cursor::ByteWriter;
use crate::abi::{context, misc, read_format, record_type, BRANCH_HW_INDEX};
use crate::abi::{event_type, flag, sample, software, EventAttr};

const SAMPLE_TYPE: u64 =
    sample::IP | sample::TID | sample::TIME | sample::CPU | sample::PERIOD | sample::CALLCHAIN;

fn cpu_clock_attr(sample_type: u64) -> EventAttr {
    EventAttr {
        kind: event_type::SOFTWARE,
        config: software::CPU_CLOCK,
        sample_period_or_freq: 1_000_000,
        sample_type,
        flags: flag::DISABLED
            | flag::INHERIT
            | flag::MMAP
            | flag::COMM
            | flag::SAMPLE_ID_ALL
            | flag::MMAP2
            | flag::COMM_EXEC,
        ..EventAttr::default()
    }
}

fn encode_sample(sample_type: u64, s: &Sample, read: &[u64], extra: &[u8]) -> Vec<u8> {
    encode::sample_with(sample_type, s, read, extra)
}

fn sample_at(time: u64, pid: u32) -> Sample<'static> {
    Sample {
        attr_index: 0,
        cpumode: CpuMode::User,
        ip: 0x401000 + time,
        pid,
        tid: pid,
        time,
        cpu: 1,
        period: 1_000_000,
        callchain: vec![context::USER, 0x401000 + time, 0x400800].into(),
        id: None,
        ..Sample::default()
    }
}

fn comm(pid: u32, name: &str, time: u64) -> Comm {
    Comm {
        pid,
        tid: pid,
        comm: name.into(),
        exec: true,
        sample_id: SampleId {
            pid: Some(pid),
            tid: Some(pid),
            time: Some(time),
            id: None,
            cpu: Some(1),
        },
    }
}

fn mmap(pid: u32, build_id: Option<Vec<u8>>, time: u64) -> Mmap {
    Mmap {
        cpumode: CpuMode::User,
        pid,
        tid: pid,
        start: 0x400000,
        len: 0x2000,
        pgoff: 0,
        filename: "/usr/bin/rprof-test-binary".into(),
        build_id,
        inode: None,
        prot: 5,
        flags: 2,
        sample_id: SampleId {
            pid: Some(pid),
            tid: Some(pid),
            time: Some(time),
            id: None,
            cpu: Some(1),
        },
    }
}

fn fork(pid: u32, ppid: u32, time: u64) -> TaskEvent {
    TaskEvent {
        pid,
        ppid,
        tid: pid,
        ptid: ppid,
        time,
        sample_id: SampleId {
            pid: Some(pid),
            tid: Some(pid),
            time: Some(time),
            id: None,
            cpu: Some(1),
        },
    }
}

fn features() -> FeatureData {
    FeatureData {
        hostname: Some("rprof-test-host".into()),
        osrelease: Some("6.1.0-test".into()),
        version: Some("rprof 0.1.0".into()),
        arch: Some("x86_64".into()),
        nrcpus: Some((3, 4)),
        cmdline: vec!["rprof".into(), "record".into(), "--".into(), "busy".into()],
        event_names: vec!["cpu-clock".into()],
        build_ids: vec![
            (-1, vec![0xab; 20], "[kernel.kallsyms]".into()),
            (
                42,
                vec![1, 2, 3, 4, 5, 6, 7, 8],
                "/usr/bin/rprof-test-binary".into(),
            ),
        ],
        rprof_symbols: Some(b"rprof symbols payload".to_vec()),
        rprof_unwound: Some(crate::perfdata::UnwoundStacks {
            unwound: 90,
            truncated: 3,
            stack_bytes: 8192,
            dropped_bytes: 737_280,
            kept_bytes: 9_000,
        }),
        trace_formats: vec![
            "name: sched_switch\nID: 372\n".into(),
            "name: x\nID: 1\n".into(),
        ],
        perf_tracing_data: None,
    }
}

/// The records the round-trip file holds, in file order.
fn expected_records() -> Vec<Record<'static>> {
    vec![
        Record::Comm(comm(42, "busy", 100)),
        Record::Mmap(mmap(42, Some(vec![1, 2, 3, 4, 5, 6, 7, 8]), 110)),
        Record::Mmap(mmap(42, None, 120)),
        Record::Fork(fork(43, 42, 130)),
        Record::Sample(sample_at(200, 42)),
        Record::FinishedRound,
        Record::Sample(sample_at(150, 43)),
        Record::Sample(sample_at(300, 43)),
    ]
}

fn encode_records(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend(match r {
            Record::Comm(c) => encode::comm(SAMPLE_TYPE, c),
            Record::Mmap(m) => encode::mmap2(SAMPLE_TYPE, m),
            Record::Fork(t) => encode::fork(SAMPLE_TYPE, t),
            Record::Sample(s) => encode_sample(SAMPLE_TYPE, s, &[], &[]),
            Record::FinishedRound => encode::finished_round(),
            other => panic!("no encoder for {other:?}"),
        });
    }
    out
}

/// A writer for one cpu-clock attr without ids.
fn cpu_clock_writer(path: &Path) -> PerfDataWriter {
    let attrs = [AttrEntry {
        attr: cpu_clock_attr(SAMPLE_TYPE),
        ids: vec![],
    }];
    PerfDataWriter::create(path, &attrs).unwrap()
}

/// Writes the round-trip file at `path` and returns its size.
fn write_test_file(path: &Path) -> u64 {
    let attrs = [AttrEntry {
        attr: cpu_clock_attr(SAMPLE_TYPE),
        ids: vec![7, 8],
    }];
    let mut w = PerfDataWriter::create(path, &attrs).unwrap();
    let bytes = encode_records(&expected_records());
    w.write_raw(&bytes).unwrap();
    assert_eq!(w.data_size(), bytes.len() as u64);
    assert_eq!(w.path(), path);
    w.finish(&features()).unwrap()
}

fn test_file_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    write_test_file(&path);
    std::fs::read(path).unwrap()
}

#[test]
fn writer_output_reads_back_record_for_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let size = write_test_file(&path);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);

    let file = PerfFile::open(&path).unwrap();
    assert_eq!(file.attrs(), &[cpu_clock_attr(SAMPLE_TYPE)]);
    let (records, warnings) = file.read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records, expected_records());
}

/// Every feature section of `f` reads back from `file`.
fn assert_features_read_back(file: &PerfFile, f: &FeatureData) {
    let meta = file.metadata();
    assert_eq!(meta.hostname, f.hostname);
    assert_eq!(meta.osrelease, f.osrelease);
    assert_eq!(meta.arch, f.arch);
    assert_eq!(meta.nrcpus, f.nrcpus);
    assert_eq!(meta.cmdline, f.cmdline);
    assert_eq!(meta.event_names, f.event_names);
    assert_eq!(meta.build_ids, f.build_ids);
    assert_eq!(
        file.feature(feature::RPROF_SYMBOLS),
        f.rprof_symbols.as_deref()
    );
    let unwound = file
        .feature(feature::RPROF_UNWOUND)
        .and_then(crate::perfdata::UnwoundStacks::from_bytes);
    assert_eq!(unwound, f.rprof_unwound);
    let formats = file
        .feature(feature::RPROF_TRACE_FORMATS)
        .map(crate::perfdata::format::decode_trace_formats)
        .unwrap_or_default();
    assert_eq!(formats, f.trace_formats);
}

#[test]
fn damaged_trace_format_sections_give_what_was_read() {
    use crate::perfdata::format::{decode_trace_formats, encode_trace_formats};
    let formats = vec![
        "name: a\nID: 1\n".to_string(),
        "name: b\nID: 2\n".to_string(),
    ];
    let bytes = encode_trace_formats(&formats);
    assert_eq!(decode_trace_formats(&bytes), formats);
    assert_eq!(
        decode_trace_formats(&bytes[..bytes.len() - 1]),
        formats[..1]
    );
    // A huge count over few bytes allocates nothing large.
    assert!(decode_trace_formats(&u32::MAX.to_ne_bytes()).is_empty());
    assert!(decode_trace_formats(&[]).is_empty());
}

#[test]
fn feature_sections_read_back() {
    let file = PerfFile::from_bytes(test_file_bytes()).unwrap();
    assert_features_read_back(&file, &features());
    assert_eq!(file.feature(feature::CPUDESC), None);
    // Strings are stored as perf does: u32 padded length, then the text.
    let host = file.feature(feature::HOSTNAME).unwrap();
    assert_eq!(host.len(), 4 + 64);
    assert_eq!(&host[4..19], b"rprof-test-host");
}

#[test]
fn file_layout_matches_perf() {
    let bytes = test_file_bytes();
    let u64_at = |off: usize| u64::from_ne_bytes(bytes[off..off + 8].try_into().unwrap());
    assert_eq!(&bytes[..8], b"PERFILE2");
    assert_eq!(u64_at(8), 104);
    assert_eq!(
        u64_at(16),
        128 + 16,
        "attr_size: a VER7 attr plus its ids section"
    );
    // ids come first (two u64s), then the attrs, then the data.
    assert_eq!(u64_at(24), 104 + 16);
    assert_eq!(u64_at(32), 144);
    assert_eq!(u64_at(40), 104 + 16 + 144);
    assert_eq!(u64_at(104), 7);
    assert_eq!(u64_at(120 + 128), 104, "ids section offset");
    assert_eq!(u64_at(120 + 136), 16, "ids section size");
    // event_types is empty.
    assert_eq!((u64_at(56), u64_at(64)), (0, 0));
}

#[test]
fn ordered_records_come_by_time_without_round_markers() {
    let file = PerfFile::from_bytes(test_file_bytes()).unwrap();
    let mut ordered = file.ordered();
    let records: Vec<Record<'_>> = ordered.by_ref().collect();
    assert!(ordered.warnings().is_empty());
    let times: Vec<Option<u64>> = records.iter().map(Record::time).collect();
    assert_eq!(
        times,
        [
            Some(100),
            Some(110),
            Some(120),
            Some(130),
            Some(150),
            Some(200),
            Some(300)
        ]
    );
    assert!(!records.contains(&Record::FinishedRound));
}

#[test]
fn flushed_recording_is_readable_before_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let mut w = cpu_clock_writer(&path);
    let records = expected_records();
    w.write_raw(&encode_records(&records[..4])).unwrap();
    w.flush().unwrap();
    w.write_raw(&encode_records(&records[4..])).unwrap(); // still buffered
    let file = PerfFile::open(&path).unwrap();
    let (read, warnings) = file.read_records();
    // The header's state says the recording is still going (or was killed),
    // although its data size covers every byte on disk.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("not finished cleanly (killed?)"),
        "{warnings:?}"
    );
    assert_eq!(read, records[..4]);
    assert!(file.metadata().hostname.is_none());
    // Dropped without finish (an error path): buffered records still land.
    drop(w);
    let (read, warnings) = PerfFile::open(&path).unwrap().read_records();
    assert!(warnings[0].contains("not finished cleanly"), "{warnings:?}");
    assert_eq!(read, records);
}

#[test]
fn disk_full_recording_says_so_and_reads_up_to_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let mut w = cpu_clock_writer(&path);
    w.write_raw(&encode_records(&expected_records())).unwrap();
    drop(w);
    // What the writer leaves after ENOSPC inside the last record: the
    // header covers the bytes that landed and holds the disk-full state.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 5);
    let data_offset = u64::from_ne_bytes(bytes[40..48].try_into().unwrap());
    let landed = bytes.len() as u64 - data_offset;
    bytes[48..56].copy_from_slice(&landed.to_ne_bytes());
    bytes[56..64].copy_from_slice(&format::rprof_state::DISK_FULL.to_ne_bytes());
    let (read, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert_eq!(read, expected_records()[..7]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("stopped early because the disk was full"),
        "{warnings:?}"
    );
}

#[test]
fn a_recording_read_from_a_pipe_is_not_called_empty() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let bytes = test_file_bytes();
    let writer = {
        let (fifo, bytes) = (fifo.clone(), bytes.clone());
        std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
    };
    let file = PerfFile::open(&fifo).unwrap();
    writer.join().unwrap();
    let (records, warnings) = file.read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records, expected_records());
    // A pipe that delivers nothing is empty, as an empty file is.
    let closer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || drop(std::fs::File::create(fifo).unwrap()))
    };
    let err = PerfFile::open(&fifo).err().unwrap();
    closer.join().unwrap();
    assert!(matches!(err, ReadError::Empty { .. }), "{err}");
}

#[test]
fn data_marked_complete_reads_without_a_kill_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let mut w = cpu_clock_writer(&path);
    w.write_raw(&encode_records(&expected_records())).unwrap();
    // Stopped while embedding symbols: the feature table is half written.
    w.mark_data_complete().unwrap();
    drop(w);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, &[0xee; 40]).unwrap();
    let (read, warnings) = PerfFile::open(&path).unwrap().read_records();
    assert_eq!(read, expected_records());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("stopped while it embedded symbols"),
        "{warnings:?}"
    );
    // The final header clears the state: perf's zeros again.
    let bytes = test_file_bytes();
    assert_eq!(&bytes[56..64], &[0; 8]);
}

#[test]
fn header_never_refreshed_reads_to_end_of_file_with_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let mut w = cpu_clock_writer(&path);
    w.write_raw(&encode_records(&expected_records())).unwrap();
    // Push bytes to disk without refreshing the header, like a kill between
    // a buffer write and the header update.
    w.write_raw(&vec![0u8; (1 << 20) + 8]).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(u64::from_ne_bytes(bytes[48..56].try_into().unwrap()), 0);
    bytes.truncate(bytes.len() - (1 << 20) - 8);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert_eq!(records, expected_records());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("not finished cleanly"), "{warnings:?}");
}

#[test]
fn killed_perf_recording_with_feature_bits_but_no_data_size_is_read() {
    // perf sets its feature bits when it starts and the data size when it
    // ends: a perf killed with SIGKILL leaves size 0 with the bits set.
    let mut bytes = test_file_bytes();
    bytes[48..56].copy_from_slice(&0u64.to_ne_bytes());
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert_eq!(records, expected_records());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("not finished cleanly"), "{warnings:?}");
}

#[test]
fn crash_while_writing_feature_sections_reads_the_records_quietly() {
    // Feature sections written, header bits not yet: the bytes after the
    // data are the feature table, not records.
    let mut bytes = test_file_bytes();
    bytes[72..104].fill(0);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert_eq!(records, expected_records());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn records_written_after_the_last_header_refresh_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let mut w = cpu_clock_writer(&path);
    let records = expected_records();
    w.write_raw(&encode_records(&records[..3])).unwrap();
    w.flush().unwrap();
    // More records reach the disk, then the recorder is killed before the
    // next header refresh (and before any feature section).
    w.write_raw(&encode_records(&records[3..])).unwrap();
    w.write_raw(&vec![0u8; (1 << 20) + 8]).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - (1 << 20) - 8);
    drop(w);
    let (read, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert_eq!(read, records);
    assert!(warnings[0].contains("not finished cleanly"), "{warnings:?}");
}

#[test]
fn truncated_last_record_stops_with_warning() {
    let bytes = test_file_bytes();
    let data_end = 264 + encode_records(&expected_records()).len();
    let cut = bytes[..data_end - 5].to_vec();
    let (records, warnings) = PerfFile::from_bytes(cut).unwrap().read_records();
    assert_eq!(records, expected_records()[..7]);
    let last_len = encode_records(&expected_records()[7..]).len();
    assert!(
        warnings.iter().any(|w| w.contains(&format!(
            "file is truncated: {} bytes at the end could not be decoded",
            last_len - 5
        ))),
        "{warnings:?}"
    );
}

#[test]
fn record_smaller_than_its_header_stops_with_warning() {
    let mut bytes = test_file_bytes();
    let second = 264 + encode_records(&expected_records()[..1]).len();
    bytes[second + 6..second + 8].copy_from_slice(&4u16.to_ne_bytes());
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert_eq!(records, expected_records()[..1]);
    assert!(
        warnings.iter().any(|w| w.contains("size 4")),
        "{warnings:?}"
    );
}

#[test]
fn existing_file_is_renamed_to_old() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    std::fs::write(&path, b"previous recording").unwrap();
    write_test_file(&path);
    let old = dir.path().join("perf.data.old");
    assert_eq!(std::fs::read(old).unwrap(), b"previous recording");
    assert!(PerfFile::open(&path).is_ok());
}

#[test]
fn symlinks_are_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, b"keep me").unwrap();
    let link = dir.path().join("perf.data");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = PerfDataWriter::create(&link, &[]).err().unwrap();
    assert!(matches!(err, WriteError::Symlink { .. }), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");

    let dangling = dir.path().join("dangling.data");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let err = PerfDataWriter::create(&dangling, &[]).err().unwrap();
    assert!(matches!(err, WriteError::Symlink { .. }), "{err}");
    assert!(!dir.path().join("nowhere").exists());
}

#[test]
fn output_that_is_a_directory_or_device_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let err = PerfDataWriter::create(dir.path(), &[]).err().unwrap();
    assert!(matches!(err, WriteError::IsDirectory { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("-o {}", dir.path().join("rprof.data").display())),
        "{err}"
    );
    let err = PerfDataWriter::create(Path::new("/dev/null"), &[])
        .err()
        .unwrap();
    assert!(matches!(err, WriteError::NotRegularFile { .. }), "{err}");
    assert!(!err.to_string().contains("File exists"), "{err}");
    assert!(Path::new("/dev/null").exists() && !Path::new("/dev/null.old").exists());
}

#[test]
fn output_is_private_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    write_test_file(&path);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn unwritable_directory_is_a_create_error() {
    let err = PerfDataWriter::create(Path::new("/nonexistent-dir/perf.data"), &[])
        .err()
        .unwrap();
    assert!(matches!(err, WriteError::Create { .. }), "{err}");
}

#[test]
fn open_errors_say_what_the_file_is() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        PerfFile::open(&empty),
        Err(ReadError::Empty { .. })
    ));
    assert!(matches!(
        PerfFile::open(&dir.path().join("missing")),
        Err(ReadError::Open { .. })
    ));
    assert!(matches!(
        PerfFile::from_bytes(b"#!/bin/sh\necho not perf data\n".to_vec()),
        Err(ReadError::NotPerfData { .. })
    ));
    let mut pipe = b"PERFILE2".to_vec();
    pipe.extend_from_slice(&16u64.to_ne_bytes());
    let err = PerfFile::from_bytes(pipe).err().unwrap();
    assert!(matches!(err, ReadError::BadHeader { .. }), "{err}");
    assert!(err.to_string().contains("no HEADER_ATTR"), "{err}");
    assert!(matches!(
        PerfFile::from_bytes(b"2ELIFREP\0\0\0\0\0\0\0\x68".to_vec()),
        Err(ReadError::BadHeader { .. })
    ));
}

/// A tiny deterministic generator, so failures reproduce.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn read_everything(bytes: Vec<u8>) {
    if let Ok(file) = PerfFile::from_bytes(bytes) {
        let _ = file.ordered().count();
        let _ = file.metadata();
        let _ = file.feature(feature::RPROF_SYMBOLS);
    }
}

/// Reads every prefix of `bytes`, as a file cut off anywhere would be.
fn read_every_prefix(bytes: &[u8]) {
    for len in 0..=bytes.len() {
        read_everything(bytes[..len].to_vec());
    }
}

/// Overwrites 1 to 8 random bytes at or after `from`.
fn flip_bytes(bytes: &mut [u8], from: usize, state: &mut u64) {
    for _ in 0..1 + xorshift(state) % 8 {
        let at = from + (xorshift(state) as usize) % (bytes.len() - from);
        bytes[at] = xorshift(state) as u8;
    }
}

#[test]
fn no_prefix_of_a_valid_file_panics() {
    read_every_prefix(&test_file_bytes());
}

#[test]
fn garbage_and_corrupted_files_never_panic() {
    let valid = test_file_bytes();
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for round in 0..3000 {
        let mut bytes = valid.clone();
        if round % 3 == 0 {
            // Pure garbage behind a valid magic.
            let len = (xorshift(&mut state) % 2048) as usize;
            bytes = b"PERFILE2".to_vec();
            bytes.extend((0..len).map(|_| xorshift(&mut state) as u8));
        } else {
            // A valid file with a few bytes flipped (often in sizes and counts).
            flip_bytes(&mut bytes, 0, &mut state);
        }
        read_everything(bytes);
    }
}

#[test]
fn every_sample_field_is_walked_in_kernel_order() {
    let sample_type = sample::IDENTIFIER
        | sample::IP
        | sample::TID
        | sample::TIME
        | sample::ADDR
        | sample::ID
        | sample::STREAM_ID
        | sample::CPU
        | sample::PERIOD
        | sample::READ
        | sample::CALLCHAIN
        | sample::RAW
        | sample::BRANCH_STACK
        | sample::REGS_USER
        | sample::STACK_USER
        | sample::WEIGHT;
    let mut attr = cpu_clock_attr(sample_type);
    attr.read_format = read_format::GROUP
        | read_format::ID
        | read_format::LOST
        | read_format::TOTAL_TIME_ENABLED
        | read_format::TOTAL_TIME_RUNNING;
    attr.branch_sample_type = BRANCH_HW_INDEX;
    attr.sample_regs_user = 0b1011; // three registers

    let mut s = sample_at(500, 9);
    s.id = Some(77);
    // read_format GROUP: nr, enabled, running, then {value, id, lost} x nr.
    let read = [2, 1000, 900, 11, 77, 0, 12, 78, 0];
    // RAW, padded so 4 + 12 is a multiple of 8: written by the encoder.
    s.raw = vec![0xee; 12].into();
    let mut tail = ByteWriter::default();
    tail.u64(1).u64(0x99).u64(0x1).u64(0x2).u64(0x3); // branch stack: nr, hw_idx, entry
    tail.u64(2).u64(10).u64(11).u64(12); // regs: abi 64, three regs
                                         // stack: size, bytes, dyn_size (only 8 of the 16 bytes were copied)
    tail.u64(16).bytes(&[0x55; 8]).bytes(&[0x66; 8]).u64(8);
    tail.u64(1234); // weight

    let mut data = encode_sample(sample_type, &s, &read, &tail.buf);
    let values: Vec<u8> = [10u64, 11, 12]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    s.user_regs = Some(crate::perfdata::records::UserRegs {
        abi: 2,
        mask: 0b1011,
        values: values.into(),
    });
    s.user_stack = vec![0x55; 8].into();
    data.extend(encode::comm(sample_type, &comm(9, "after", 600)));
    let bytes = file_with(&[(attr, vec![77, 78])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0], Record::Sample(s));
    let Record::Sample(decoded) = &records[0] else {
        unreachable!()
    };
    let regs = decoded.user_regs.as_ref().unwrap();
    // Registers 0, 1 and 3 are in the mask, in that order; 2 is not.
    assert_eq!(
        [regs.get(0), regs.get(1), regs.get(2), regs.get(3)],
        [Some(10), Some(11), None, Some(12)]
    );
    assert_eq!(regs.get(64), None);
    let Record::Comm(c) = &records[1] else {
        panic!("{:?}", records[1]);
    };
    assert_eq!(c.comm, "after");
    assert_eq!(c.sample_id.time, Some(600));
    assert_eq!(c.sample_id.cpu, Some(1));
}

#[test]
fn cgroup_id_is_found_after_the_fields_before_it() {
    // Everything the kernel writes between STACK_USER and CGROUP.
    let sample_type = SAMPLE_TYPE
        | sample::WEIGHT
        | sample::DATA_SRC
        | sample::TRANSACTION
        | sample::REGS_INTR
        | sample::PHYS_ADDR
        | sample::CGROUP
        | sample::DATA_PAGE_SIZE;
    let mut attr = cpu_clock_attr(sample_type);
    attr.sample_regs_intr = 0b110; // two registers
    let mut s = sample_at(5, 3);
    s.cgroup = Some(0x1_0000_0123);
    let mut between = ByteWriter::default();
    between.u64(7).u64(8).u64(9); // weight, data_src, transaction
    between.u64(2).u64(0xa).u64(0xb); // regs_intr: abi, two registers
    between.u64(0xbeef); // phys_addr
                         // DATA_PAGE_SIZE follows the cgroup: each record grows by 8 bytes.
    let with_page_size = |mut record: Vec<u8>| {
        record.extend(4096u64.to_ne_bytes());
        let size = record.len() as u16;
        record[6..8].copy_from_slice(&size.to_ne_bytes());
        record
    };
    let mut data = with_page_size(encode_sample(sample_type, &s, &[], &between.buf));
    // Kernel threads have no interrupt registers: abi 0, none follow.
    let mut kthread = sample_at(6, 3);
    kthread.cgroup = Some(1);
    let mut no_regs = ByteWriter::default();
    no_regs.u64(7).u64(8).u64(9).u64(0).u64(0xbeef);
    data.extend(with_page_size(encode_sample(
        sample_type,
        &kthread,
        &[],
        &no_regs.buf,
    )));

    let bytes = file_with(&[(attr, vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    let cgroups: Vec<Option<u64>> = records
        .iter()
        .map(|r| match r {
            Record::Sample(s) => s.cgroup,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(cgroups[0], Some(0x1_0000_0123), "{warnings:?}");
    assert_eq!(records[0], Record::Sample(s));
    assert_eq!(cgroups.get(1), Some(&Some(1)), "{warnings:?}");
}

#[test]
fn cgroup_records_decode_and_round_trip() {
    let c = CgroupRecord {
        id: 4242,
        path: "/system.slice/nginx.service".into(),
        sample_id: SampleId {
            pid: Some(0),
            tid: Some(0),
            time: Some(77),
            id: None,
            cpu: Some(2),
        },
    };
    let mut data = encode::cgroup(SAMPLE_TYPE, &c);
    assert_eq!(data.len() % 8, 0);
    // As the kernel writes it: id, path padded to 8, then the trailer.
    let mut body = ByteWriter::default();
    body.u64(4242).padded_c_string("/", 8);
    data.extend(raw_record(record_type::CGROUP, 0, &body.buf, 78));
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records[0], Record::Cgroup(c));
    let Record::Cgroup(root) = &records[1] else {
        panic!("{:?}", records[1]);
    };
    assert_eq!(
        (root.id, root.path.as_str(), root.sample_id.time),
        (4242, "/", Some(78))
    );
    assert_eq!(records[1].time(), Some(78));
}

#[test]
fn sample_too_short_for_its_layout_is_skipped_with_warning() {
    let mut data = encode_sample(SAMPLE_TYPE, &sample_at(1, 1), &[], &[]);
    // Claim a call chain far longer than the record.
    let nr_at = 8 + 8 + 8 + 8 + 8 + 8;
    data[nr_at..nr_at + 8].copy_from_slice(&1000u64.to_ne_bytes());
    data.extend(encode_sample(SAMPLE_TYPE, &sample_at(2, 1), &[], &[]));
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert_eq!(records, [Record::Sample(sample_at(2, 1))]);
    assert!(
        warnings.iter().any(|w| w.starts_with("1 records")),
        "{warnings:?}"
    );
}

/// A minimal file: header, ids, attrs (VER7), data; no features.
fn file_with(attrs: &[(EventAttr, Vec<u64>)], data: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let entries: Vec<AttrEntry> = attrs
        .iter()
        .map(|(attr, ids)| AttrEntry {
            attr: *attr,
            ids: ids.clone(),
        })
        .collect();
    let mut w = PerfDataWriter::create(&path, &entries).unwrap();
    w.write_raw(data).unwrap();
    w.finish(&FeatureData::default()).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn samples_find_their_attr_by_identifier() {
    let a = cpu_clock_attr(sample::IDENTIFIER | sample::IP | sample::TID | sample::TIME);
    let mut b = cpu_clock_attr(sample::IDENTIFIER | sample::TIME | sample::CALLCHAIN);
    b.config = software::PAGE_FAULTS;
    let mut s0 = sample_at(10, 5);
    s0.id = Some(100);
    let mut s1 = sample_at(20, 5);
    s1.id = Some(200);
    let mut data = encode_sample(a.sample_type, &s0, &[], &[]);
    data.extend(encode_sample(b.sample_type, &s1, &[], &[]));
    let mut c = comm(5, "two", 30);
    c.sample_id.id = Some(200);
    data.extend(encode::comm(b.sample_type, &c));
    let bytes = file_with(&[(a, vec![100]), (b, vec![200])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    let Record::Sample(r0) = &records[0] else {
        panic!()
    };
    let Record::Sample(r1) = &records[1] else {
        panic!()
    };
    assert_eq!((r0.attr_index, r0.ip, r0.time), (0, s0.ip, 10));
    assert_eq!((r1.attr_index, r1.ip, r1.time), (1, 0, 20));
    assert_eq!(r1.callchain, s1.callchain);
    let Record::Comm(rc) = &records[2] else {
        panic!()
    };
    assert_eq!(rc.sample_id.id, Some(200));
    assert_eq!(rc.sample_id.time, Some(30));
    assert_eq!(rc.comm, "two");
}

#[test]
fn samples_find_their_attr_by_id_when_layouts_match() {
    let st = sample::IP | sample::TID | sample::ID | sample::PERIOD;
    let a = cpu_clock_attr(st);
    let mut b = cpu_clock_attr(st);
    b.config = software::TASK_CLOCK;
    let mut s = sample_at(0, 5);
    s.callchain.to_mut().clear();
    s.id = Some(31);
    let data = encode_sample(st, &s, &[], &[]);
    let bytes = file_with(&[(a, vec![30]), (b, vec![31, 32])], &data);
    let (records, _) = PerfFile::from_bytes(bytes).unwrap().read_records();
    let Record::Sample(r) = &records[0] else {
        panic!()
    };
    assert_eq!(r.attr_index, 1);
    assert_eq!(r.id, Some(31));
}

#[test]
fn period_defaults_to_the_attrs_fixed_period() {
    let st = sample::IP | sample::TID | sample::TIME;
    let mut s = sample_at(3, 3);
    s.callchain.to_mut().clear();
    s.cpu = 0;
    let data = encode_sample(st, &s, &[], &[]);
    let (records, _) = PerfFile::from_bytes(file_with(&[(cpu_clock_attr(st), vec![])], &data))
        .unwrap()
        .read_records();
    assert_eq!(records, [Record::Sample(s.clone())]);

    let mut freq = cpu_clock_attr(st);
    freq.flags |= flag::FREQ;
    freq.sample_period_or_freq = 99;
    let (records, _) = PerfFile::from_bytes(file_with(&[(freq, vec![])], &data))
        .unwrap()
        .read_records();
    let Record::Sample(r) = &records[0] else {
        panic!()
    };
    assert_eq!(r.period, 1);
}

/// A kernel record with a trailer (TID|TIME|CPU for SAMPLE_TYPE).
fn raw_record(kind: u32, misc: u16, body: &[u8], time: u64) -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.u32(kind)
        .u16(misc)
        .u16((8 + body.len() + 24) as u16)
        .bytes(body)
        .u32(4)
        .u32(4)
        .u64(time)
        .u32(0)
        .u32(0);
    w.buf
}

#[test]
fn kernel_records_decode() {
    let mut mmap1 = ByteWriter::default();
    mmap1.u32(4).u32(4).u64(0x1000).u64(0x2000).u64(0x10);
    mmap1.padded_c_string("/lib/libc.so.6", 8);
    let mut lost = ByteWriter::default();
    lost.u64(9).u64(123);
    let mut lost_samples = ByteWriter::default();
    lost_samples.u64(5);
    let mut throttle = ByteWriter::default();
    throttle.u64(777).u64(9).u64(9);
    let mut exit = ByteWriter::default();
    exit.u32(4).u32(1).u32(4).u32(1).u64(888);
    let mut switch = ByteWriter::default();
    switch.u32(0).u32(0);

    let mut data = raw_record(record_type::MMAP, misc::KERNEL, &mmap1.buf, 1);
    data.extend(raw_record(record_type::LOST, 0, &lost.buf, 2));
    data.extend(raw_record(
        record_type::LOST_SAMPLES,
        0,
        &lost_samples.buf,
        3,
    ));
    data.extend(raw_record(record_type::THROTTLE, 0, &throttle.buf, 777));
    data.extend(raw_record(record_type::UNTHROTTLE, 0, &throttle.buf, 777));
    data.extend(raw_record(record_type::EXIT, 0, &exit.buf, 888));
    data.extend(raw_record(record_type::SWITCH, 0, &[], 889));
    let out_preempted = misc::SWITCH_OUT | misc::SWITCH_OUT_PREEMPT;
    data.extend(raw_record(record_type::SWITCH, out_preempted, &[], 890));
    // SWITCH_CPU_WIDE: the other thread's pid/tid, then the trailer.
    let mut next_prev = ByteWriter::default();
    next_prev.u32(7).u32(8);
    data.extend(raw_record(
        record_type::SWITCH_CPU_WIDE,
        misc::SWITCH_OUT,
        &next_prev.buf,
        891,
    ));
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    let Record::Mmap(m) = &records[0] else {
        panic!()
    };
    assert_eq!(
        (
            m.cpumode,
            m.start,
            m.len,
            m.pgoff,
            m.filename.as_str(),
            m.prot
        ),
        (CpuMode::Kernel, 0x1000, 0x2000, 0x10, "/lib/libc.so.6", 5)
    );
    assert_eq!(m.sample_id.time, Some(1));
    let Record::Lost(l) = &records[1] else {
        panic!()
    };
    assert_eq!((l.id, l.lost), (9, 123));
    let Record::LostSamples(l) = &records[2] else {
        panic!()
    };
    assert_eq!(l.lost, 5);
    let Record::Throttle(t) = &records[3] else {
        panic!()
    };
    assert_eq!((t.time, t.id, t.unthrottle), (777, 9, false));
    let Record::Throttle(t) = &records[4] else {
        panic!()
    };
    assert!(t.unthrottle);
    let Record::Exit(e) = &records[5] else {
        panic!()
    };
    assert_eq!((e.pid, e.ppid, e.time), (4, 1, 888));
    let switches: Vec<(bool, bool, Option<u32>, Option<u64>)> = records[6..9]
        .iter()
        .map(|r| match r {
            Record::Switch(s) => (s.out, s.preempted, s.sample_id.tid, s.sample_id.time),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        switches,
        [
            (false, false, Some(4), Some(889)),
            (true, true, Some(4), Some(890)),
            (true, false, Some(4), Some(891)),
        ]
    );
}

/// `records` as perf -z writes them: one zstd stream that never ends, its
/// bytes spread over COMPRESSED records of `piece` bytes (blocks straddle).
fn compressed(records: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in perf_like_stream(records, piece) {
        let mut w = ByteWriter::default();
        w.u32(record_type::COMPRESSED)
            .u16(0)
            .u16((8 + chunk.len()) as u16)
            .bytes(&chunk);
        out.extend(w.buf);
    }
    out
}

/// As [`compressed`], in perf 6.15's COMPRESSED2 form (sized, 8-aligned).
fn compressed2(records: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in perf_like_stream(records, piece) {
        let padded = (chunk.len() + 7) & !7;
        let mut w = ByteWriter::default();
        w.u32(record_type::COMPRESSED2)
            .u16(0)
            .u16((16 + padded) as u16)
            .u64(chunk.len() as u64)
            .bytes(&chunk)
            .bytes(&vec![0; padded - chunk.len()]);
        out.extend(w.buf);
    }
    out
}

#[test]
fn compressed2_records_of_newer_perf_decode_in_place() {
    let samples: Vec<Record> = (0..500)
        .map(|i| Record::Sample(sample_at(i, 1 + (i % 3) as u32)))
        .collect();
    let data = compressed2(&encode_records(&samples), 3000);
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records, samples);
}

#[test]
fn compressed_records_decode_in_place() {
    let mut data = encode_records(&expected_records()[..4]);
    data.extend(compressed(&encode_records(&expected_records()[4..7]), 13));
    data.extend(encode_records(&expected_records()[7..]));
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records, expected_records());
}

#[test]
fn records_split_across_compressed_records_are_joined() {
    // Many records, so that zstd blocks and records both cross the
    // boundaries of the COMPRESSED records.
    let samples: Vec<Record> = (0..3000)
        .map(|i| Record::Sample(sample_at(i, 1 + (i % 5) as u32)))
        .collect();
    let data = compressed(&encode_records(&samples), 4000);
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let file = PerfFile::from_bytes(bytes).unwrap();
    let (records, warnings) = file.read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records, samples);
    assert_eq!(file.records().count(), samples.len());
}

#[test]
fn corrupt_compressed_payload_stops_with_warning() {
    // zstd payloads make odd record sizes; framing must not require alignment.
    let mut data = encode_records(&expected_records()[..1]);
    for _ in 0..3 {
        data.extend(81u32.to_ne_bytes());
        data.extend(0u16.to_ne_bytes());
        data.extend(21u16.to_ne_bytes());
        data.extend([0x28; 13]);
    }
    data.extend(encode_sample(SAMPLE_TYPE, &sample_at(5, 5), &[], &[]));
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert_eq!(records, expected_records()[..1]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("cannot be decompressed"),
        "{warnings:?}"
    );
}

#[test]
fn compressed_data_cut_inside_a_record_warns() {
    let mut payload = encode_records(&expected_records()[4..5]);
    payload.truncate(payload.len() - 3);
    let data = compressed(&payload, 1000);
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert!(records.is_empty(), "{records:?}");
    assert!(
        warnings.iter().any(|w| w.contains("ends inside a record")),
        "{warnings:?}"
    );
}

#[test]
fn corrupted_compressed_files_never_panic() {
    let mut data = encode_records(&expected_records()[..2]);
    let samples: Vec<Record> = (0..500).map(|i| Record::Sample(sample_at(i, 3))).collect();
    data.extend(compressed(&encode_records(&samples), 700));
    let valid = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(valid.clone()).unwrap().read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records.len(), 502);
    let data_at = u64::from_ne_bytes(valid[40..48].try_into().unwrap()) as usize;
    let mut state = 0x1234_5678_9abc_def1;
    for _ in 0..500 {
        let mut bytes = valid.clone();
        for _ in 0..1 + xorshift(&mut state) % 4 {
            // Mostly inside the compressed payloads.
            let at = data_at + (xorshift(&mut state) as usize) % data.len();
            bytes[at] = xorshift(&mut state) as u8;
        }
        read_everything(bytes);
    }
    for len in (0..valid.len()).step_by(37) {
        read_everything(valid[..len].to_vec());
    }
}

/// A zstd frame as perf starts one (no content size, never ended) holding
/// `raw` bytes in a raw block, then `blocks` RLE blocks of 128 KiB of zeros:
/// 4 bytes each, zstd's highest ratio.
fn rle_zstd_payload(raw: usize, blocks: usize) -> Vec<u8> {
    const BLOCK: u32 = 128 * 1024;
    // Magic, frame header descriptor, window descriptor (windowLog 17).
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    let block_header = |size: u32, kind: u32| ((size << 3) | (kind << 1)).to_le_bytes();
    out.extend(&block_header(raw as u32, 0)[..3]);
    out.resize(out.len() + raw, 0x5a);
    for _ in 0..blocks {
        out.extend(&block_header(BLOCK, 1)[..3]);
        out.push(0);
    }
    out
}

/// One COMPRESSED record holding `payload`.
fn compressed_record(payload: &[u8]) -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.u32(record_type::COMPRESSED)
        .u16(0)
        .u16(u16::try_from(8 + payload.len()).unwrap())
        .bytes(payload);
    w.buf
}

/// Reads all records one by one; returns them, the warnings, and the most
/// decompressed bytes the reader held at any point.
fn read_watching_the_buffer(
    file: &PerfFile,
    max_buffered: Option<usize>,
) -> (Vec<Record<'static>>, Vec<String>, usize) {
    let mut iter = file.records();
    if let Some(max) = max_buffered {
        iter = iter.with_max_buffered(max);
    }
    let mut records = Vec::new();
    let mut peak = 0;
    while let Some(record) = iter.next() {
        peak = peak.max(iter.buffered());
        records.push(record.into_owned());
    }
    peak = peak.max(iter.buffered());
    (records, iter.warnings().to_vec(), peak)
}

#[test]
fn decompression_bomb_is_refused_with_a_warning_naming_the_ratio() {
    // As reported: one COMPRESSED record of a few KB inflating to many MiB
    // of 8-byte records (here 16 MiB), between ordinary records.
    let rounds = encode::finished_round().repeat(2 << 20);
    let pieces = perf_like_stream(&rounds, rounds.len());
    let bomb = &pieces[0];
    assert!(
        bomb.len() * MAX_UNPACK_RATIO < rounds.len(),
        "the test bomb is not one: {} bytes",
        bomb.len()
    );
    let mut data = encode_records(&expected_records()[..2]);
    data.extend(compressed_record(bomb));
    data.extend(encode_records(&expected_records()[2..]));
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let file = PerfFile::from_bytes(bytes).unwrap();
    let (records, warnings, peak) = read_watching_the_buffer(&file, None);
    // The records before the bomb, none of what it decompresses to.
    assert_eq!(records, expected_records()[..2]);
    assert!(peak <= bomb.len() * MAX_UNPACK_RATIO, "held {peak} bytes");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&format!("more than {MAX_UNPACK_RATIO} times"))
            && warnings[0].contains("decompression bomb"),
        "{warnings:?}"
    );
}

#[test]
fn zstds_highest_ratio_is_refused_at_once() {
    // 2 KB of RLE blocks make 64 MiB: refused before 9 blocks are decoded.
    let bomb = rle_zstd_payload(0, 512);
    let data = compressed_record(&bomb);
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings, peak) =
        read_watching_the_buffer(&PerfFile::from_bytes(bytes).unwrap(), None);
    assert!(records.is_empty(), "{records:?}");
    assert!(peak <= bomb.len() * MAX_UNPACK_RATIO, "held {peak} bytes");
    assert!(
        warnings.iter().any(|w| w.contains("decompression bomb")),
        "{warnings:?}"
    );
}

#[test]
fn record_decompressing_past_the_per_record_bound_is_refused() {
    // Within the ratio bound, but more than any perf ring holds.
    let blocks = MAX_UNPACKED_PER_RECORD / (128 * 1024) + 1;
    let raw = (blocks * 128 * 1024) / MAX_UNPACK_RATIO + 1;
    let payload = rle_zstd_payload(raw, blocks);
    assert!(payload.len() * MAX_UNPACK_RATIO > MAX_UNPACKED_PER_RECORD);
    let data = compressed_record(&payload);
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings, peak) =
        read_watching_the_buffer(&PerfFile::from_bytes(bytes).unwrap(), None);
    assert!(records.is_empty(), "{records:?}");
    assert!(peak <= MAX_UNPACKED_PER_RECORD, "held {peak} bytes");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("more than 64 MiB") && w.contains("was not decoded")),
        "{warnings:?}"
    );
}

#[test]
fn decompressed_bytes_waiting_for_a_record_are_bounded() {
    // An AUXTRACE record inside the compressed data claims a 1 TiB payload:
    // the reader would buffer everything after it, waiting for the rest.
    let mut w = ByteWriter::default();
    w.u32(record_type::AUXTRACE).u16(0).u16(48).u64(1 << 40);
    w.bytes(&[0; 32]);
    let mut state = 0x2545_f491_4f6c_dd1d;
    w.bytes(
        &(0..3 << 20)
            .map(|_| xorshift(&mut state) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut data = encode_records(&expected_records()[..1]);
    data.extend(compressed(&w.buf, 32 * 1024));
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let file = PerfFile::from_bytes(bytes).unwrap();
    let cap = 1 << 20;
    let (records, warnings, peak) = read_watching_the_buffer(&file, Some(cap));
    assert_eq!(records, expected_records()[..1]);
    assert!(peak <= cap, "held {peak} bytes");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&format!("more than {cap} bytes"))
                && w.contains("claims more bytes")),
        "{warnings:?}"
    );
}

#[test]
fn real_recording_with_the_highest_measured_ratio_reads_cleanly() {
    // perf -z level 22 with 64 KiB DWARF stack copies: ~1600 times per
    // record, the most seen in real data; the ratio bound must let it pass.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/perfdata/perf-z-dwarf.data");
    let file = PerfFile::open(&path).unwrap();
    let (records, warnings) = file.read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    let samples = records
        .iter()
        .filter(|r| matches!(r, Record::Sample(_)))
        .count();
    assert!(samples > 200, "{samples} samples");
}

// ---- pipe mode ----

/// A perf record of `kind` holding `body`.
fn user_record(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.u32(kind).u16(0).u16((8 + body.len()) as u16).bytes(body);
    w.buf
}

fn header_attr(attr: &EventAttr, ids: &[u64]) -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.bytes(&attr.to_bytes());
    for &id in ids {
        w.u64(id);
    }
    user_record(record_type::HEADER_ATTR, &w.buf)
}

fn header_feature(bit: u32, section: &[u8]) -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.u64(u64::from(bit)).bytes(section);
    user_record(record_type::HEADER_FEATURE, &w.buf)
}

/// What `perf record -o -` writes, in perf's order: features, attr, tracing
/// data, a build id, FINISHED_INIT, then the records (some compressed).
fn pipe_file_bytes() -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.bytes(b"PERFILE2").u64(16);
    let mut out = w.buf;
    let mut host = ByteWriter::default();
    host.perf_string("pipe-host");
    out.extend(header_feature(feature::HOSTNAME, &host.buf));
    let mut cmdline = ByteWriter::default();
    cmdline.u32(2).perf_string("perf").perf_string("record");
    out.extend(header_feature(feature::CMDLINE, &cmdline.buf));
    out.extend(header_attr(&cpu_clock_attr(SAMPLE_TYPE), &[7, 8]));
    let mut tracing = ByteWriter::default();
    tracing.u32(12).u32(0);
    out.extend(user_record(record_type::HEADER_TRACING_DATA, &tracing.buf));
    out.extend([0xee; 16]); // 12 bytes of tracing data, padded to 8
    let mut build_id = ByteWriter::default();
    build_id.i32(42).bytes(&[0xcd; 20]).u8(20).bytes(&[0; 3]);
    build_id.padded_c_string("/usr/bin/rprof-test-binary", 8);
    let mut record = user_record(record_type::HEADER_BUILD_ID, &build_id.buf);
    record[4..6].copy_from_slice(&misc::BUILD_ID_SIZE.to_ne_bytes());
    out.extend(record);
    out.extend(user_record(record_type::FINISHED_INIT, &[]));
    out.extend(encode_records(&expected_records()[..3]));
    out.extend(compressed(&encode_records(&expected_records()[3..7]), 50));
    out.extend(encode_records(&expected_records()[7..]));
    out
}

fn without_user_records(records: Vec<Record>) -> Vec<Record> {
    records
        .into_iter()
        .filter(|r| !matches!(r, Record::Other { kind } if *kind >= record_type::HEADER_ATTR))
        .collect()
}

#[test]
fn pipe_mode_file_reads_records_attrs_and_metadata() {
    let file = PerfFile::from_bytes(pipe_file_bytes()).unwrap();
    assert!(file.is_pipe_mode());
    assert!(file.warnings().is_empty(), "{:?}", file.warnings());
    assert_eq!(file.attrs(), &[cpu_clock_attr(SAMPLE_TYPE)]);
    let meta = file.metadata();
    assert_eq!(meta.hostname.as_deref(), Some("pipe-host"));
    assert_eq!(meta.cmdline, ["perf", "record"]);
    assert_eq!(
        meta.build_ids,
        [(42, vec![0xcd; 20], "/usr/bin/rprof-test-binary".to_string())]
    );
    assert!(file.feature(feature::HOSTNAME).is_some());
    let (records, warnings) = file.read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    let kinds: Vec<u32> = records
        .iter()
        .take(6)
        .filter_map(|r| match r {
            Record::Other { kind } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            record_type::HEADER_FEATURE,
            record_type::HEADER_FEATURE,
            record_type::HEADER_ATTR,
            record_type::HEADER_TRACING_DATA,
            record_type::HEADER_BUILD_ID,
            record_type::FINISHED_INIT
        ]
    );
    assert_eq!(without_user_records(records), expected_records());
}

#[test]
fn pipe_mode_samples_before_any_attr_are_skipped() {
    let mut bytes = b"PERFILE2".to_vec();
    bytes.extend(16u64.to_ne_bytes());
    bytes.extend(encode_sample(SAMPLE_TYPE, &sample_at(1, 1), &[], &[]));
    bytes.extend(header_attr(&cpu_clock_attr(SAMPLE_TYPE), &[]));
    bytes.extend(encode_sample(SAMPLE_TYPE, &sample_at(2, 1), &[], &[]));
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert_eq!(
        without_user_records(records),
        [Record::Sample(sample_at(2, 1))]
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("1 samples came before")),
        "{warnings:?}"
    );
}

#[test]
fn pipe_mode_decoder_grows_with_the_attrs_declared() {
    // Until the second attr arrives, every sample belongs to the first;
    // after it, samples find their attr by IDENTIFIER.
    let st = sample::IDENTIFIER | sample::IP | sample::TID | sample::TIME;
    let a = cpu_clock_attr(st);
    let mut b = cpu_clock_attr(st);
    b.config = software::PAGE_FAULTS;
    let mut s = sample_at(10, 5);
    s.callchain.to_mut().clear();
    s.cpu = 0;
    s.id = Some(200);
    let mut bytes = b"PERFILE2".to_vec();
    bytes.extend(16u64.to_ne_bytes());
    bytes.extend(header_attr(&a, &[100]));
    bytes.extend(encode_sample(st, &s, &[], &[]));
    bytes.extend(header_attr(&b, &[200]));
    bytes.extend(encode_sample(st, &s, &[], &[]));
    let file = PerfFile::from_bytes(bytes).unwrap();
    assert_eq!(file.attrs(), &[a, b]);
    let (records, warnings) = file.read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    let indexes: Vec<usize> = records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s.attr_index),
            _ => None,
        })
        .collect();
    assert_eq!(indexes, [0, 1]);
}

#[test]
fn no_prefix_of_a_pipe_file_panics() {
    read_every_prefix(&pipe_file_bytes());
}

#[test]
fn corrupted_pipe_files_never_panic() {
    let valid = pipe_file_bytes();
    let mut state = 0x0bad_cafe_f00d_d00d;
    for _ in 0..2000 {
        let mut bytes = valid.clone();
        flip_bytes(&mut bytes, 16, &mut state);
        read_everything(bytes);
    }
}

#[test]
fn auxtrace_payload_is_skipped() {
    let mut w = ByteWriter::default();
    w.u32(record_type::AUXTRACE).u16(0).u16(48);
    w.u64(16).u64(0).u64(0).u32(0).u32(0).u32(0).u32(0); // size, offset, ref, idx, tid, cpu
    w.bytes(&[0xff; 16]); // the AUX payload, outside the record's size
    let mut data = w.buf;
    data.extend(encode_sample(SAMPLE_TYPE, &sample_at(5, 5), &[], &[]));
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        records,
        [
            Record::Other {
                kind: record_type::AUXTRACE
            },
            Record::Sample(sample_at(5, 5))
        ]
    );
}

// ---- pipe mode, written ----

/// Writes the round-trip records as a pipe-mode stream into `out`.
fn write_pipe_stream(out: &mut Vec<u8>, attrs: &[AttrEntry], f: &FeatureData) -> u64 {
    let mut w = PipeWriter::new(&mut *out, "test output", None, attrs, f).unwrap();
    DataSink::write_raw(&mut w, &encode_records(&expected_records())).unwrap();
    DataSink::finish(Box::new(w), f).unwrap()
}

fn pipe_stream_bytes(f: &FeatureData) -> Vec<u8> {
    let attrs = [AttrEntry {
        attr: cpu_clock_attr(SAMPLE_TYPE),
        ids: vec![7, 8],
    }];
    let mut out = Vec::new();
    let size = write_pipe_stream(&mut out, &attrs, f);
    assert_eq!(size, out.len() as u64);
    out
}

/// (type, body) of every record of a pipe-mode stream, checking the framing.
fn pipe_records(bytes: &[u8]) -> Vec<(u32, &[u8])> {
    assert_eq!(&bytes[..8], b"PERFILE2");
    assert_eq!(u64::from_ne_bytes(bytes[8..16].try_into().unwrap()), 16);
    let mut out = Vec::new();
    let mut pos = 16;
    while pos < bytes.len() {
        let kind = u32::from_ne_bytes(bytes[pos..pos + 4].try_into().unwrap());
        let size = usize::from(u16::from_ne_bytes(
            bytes[pos + 6..pos + 8].try_into().unwrap(),
        ));
        assert!(size >= 8 && pos + size <= bytes.len(), "record at {pos}");
        out.push((kind, &bytes[pos + 8..pos + size]));
        pos += size;
    }
    out
}

#[test]
fn pipe_writer_frames_attrs_then_features_then_records() {
    let bytes = pipe_stream_bytes(&features());
    let records = pipe_records(&bytes);
    // HEADER_ATTR: the attr (its own size), then the ids.
    let (kind, body) = records[0];
    assert_eq!(kind, record_type::HEADER_ATTR);
    let attr = cpu_clock_attr(SAMPLE_TYPE);
    let attr_bytes = attr.to_bytes_sized(attr.file_size());
    assert_eq!(&body[..attr_bytes.len()], &attr_bytes[..]);
    assert_eq!(
        &body[attr_bytes.len()..],
        [7u64, 8].map(u64::to_ne_bytes).concat()
    );
    // HEADER_FEATURE: the host features, in bit order, before any data.
    let bits: Vec<u64> = records[1..]
        .iter()
        .take_while(|(kind, _)| *kind == record_type::HEADER_FEATURE)
        .map(|(_, body)| u64::from_ne_bytes(body[..8].try_into().unwrap()))
        .collect();
    let expected = [
        feature::HOSTNAME,
        feature::OSRELEASE,
        feature::VERSION,
        feature::ARCH,
        feature::NRCPUS,
        feature::CMDLINE,
        feature::EVENT_DESC,
        feature::RPROF_TRACE_FORMATS,
    ];
    assert_eq!(bits, expected.map(u64::from));
    // Each holds the same bytes as the file's section.
    let file = PerfFile::from_bytes(test_file_bytes()).unwrap();
    for (bit, (_, body)) in expected.iter().zip(&records[1..]) {
        assert_eq!(Some(&body[8..]), file.feature(*bit), "feature {bit}");
    }
    // The data records, then what is only known at the end: build ids,
    // then the symbols and the unwinding facts in a record type Linux perf
    // skips.
    let data = encode_records(&expected_records());
    let data_at = 16 + records[..9].iter().map(|r| 8 + r.1.len()).sum::<usize>();
    assert_eq!(&bytes[data_at..data_at + data.len()], &data[..]);
    let tail: Vec<u32> = records.iter().rev().take(4).map(|r| r.0).collect();
    assert_eq!(
        tail,
        [
            record_type::HEADER_EVENT_TYPE,
            record_type::HEADER_EVENT_TYPE,
            record_type::HEADER_BUILD_ID,
            record_type::HEADER_BUILD_ID
        ]
    );
    // perf 6.1 `report` fails on a HEADER_FEATURE bit it does not know.
    assert!(!records
        .iter()
        .any(|(kind, body)| *kind == record_type::HEADER_FEATURE
            && body[..8] == u64::from(feature::RPROF_SYMBOLS).to_ne_bytes()));
}

#[test]
fn pipe_writer_stream_reads_back_record_for_record() {
    let f = features();
    let file = PerfFile::from_bytes(pipe_stream_bytes(&f)).unwrap();
    assert!(file.is_pipe_mode());
    assert!(file.warnings().is_empty(), "{:?}", file.warnings());
    assert_eq!(file.attrs(), &[cpu_clock_attr(SAMPLE_TYPE)]);
    assert_features_read_back(&file, &f);
    let (records, warnings) = file.read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(without_user_records(records), expected_records());
}

/// A symbol table larger than one record can hold, not a multiple of 8.
fn large_symbols() -> Vec<u8> {
    let mut state = 0x5eed_1234_abcd_0001;
    (0..200_003).map(|_| xorshift(&mut state) as u8).collect()
}

#[test]
fn large_symbol_table_is_chunked_and_reassembled() {
    let f = FeatureData {
        rprof_symbols: Some(large_symbols()),
        rprof_unwound: None,
        ..features()
    };
    let bytes = pipe_stream_bytes(&f);
    let chunks: Vec<&[u8]> = pipe_records(&bytes)
        .into_iter()
        .filter(|(kind, _)| *kind == record_type::HEADER_EVENT_TYPE)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(chunks.len(), 4, "200 KB in records of at most 64 KiB");
    for (i, body) in chunks.iter().enumerate() {
        assert_eq!(&body[..8], b"RPROFSEC");
        assert_eq!(body.len() % 8, 0);
        let offset = u64::from_ne_bytes(body[24..32].try_into().unwrap());
        assert_eq!(offset, i as u64 * 65488);
    }
    let file = PerfFile::from_bytes(bytes).unwrap();
    assert!(file.warnings().is_empty(), "{:?}", file.warnings());
    assert_eq!(
        file.feature(feature::RPROF_SYMBOLS),
        Some(&large_symbols()[..])
    );
}

#[test]
fn symbols_cut_short_are_ignored_with_a_warning() {
    let f = FeatureData {
        rprof_symbols: Some(large_symbols()),
        rprof_unwound: None,
        ..features()
    };
    let bytes = pipe_stream_bytes(&f);
    let last = pipe_records(&bytes).last().unwrap().1.len() + 8;
    // Stopped after writing all but the last chunk.
    let file = PerfFile::from_bytes(bytes[..bytes.len() - last].to_vec()).unwrap();
    assert_eq!(file.feature(feature::RPROF_SYMBOLS), None);
    assert!(
        file.warnings()
            .iter()
            .any(|w| w.contains("the embedded symbols end after 196464 of their 200003 bytes")),
        "{:?}",
        file.warnings()
    );
    let (records, _) = file.read_records();
    assert_eq!(without_user_records(records), expected_records());
}

#[test]
fn header_feature_after_the_records_is_taken() {
    let f = FeatureData {
        rprof_symbols: None,
        ..features()
    };
    let mut bytes = pipe_stream_bytes(&f);
    bytes.extend(header_feature(feature::RPROF_SYMBOLS, b"late symbols"));
    let file = PerfFile::from_bytes(bytes).unwrap();
    assert_eq!(
        file.feature(feature::RPROF_SYMBOLS),
        Some(&b"late symbols"[..])
    );
}

#[test]
fn event_type_records_of_old_perf_are_not_taken_for_sections() {
    let f = FeatureData {
        rprof_symbols: None,
        ..features()
    };
    let mut bytes = pipe_stream_bytes(&f);
    // perf before 2013: u64 event id, char name[64].
    let mut body = ByteWriter::default();
    body.u64(5).bytes(&[b'x'; 64]);
    bytes.extend(user_record(record_type::HEADER_EVENT_TYPE, &body.buf));
    let file = PerfFile::from_bytes(bytes).unwrap();
    assert!(file.warnings().is_empty(), "{:?}", file.warnings());
    assert_eq!(file.feature(feature::RPROF_SYMBOLS), None);
}

#[test]
fn one_event_with_more_ids_than_a_record_holds_keeps_what_fits() {
    let many: Vec<u64> = (0..10_000).collect();
    let one = [AttrEntry {
        attr: cpu_clock_attr(SAMPLE_TYPE),
        ids: many.clone(),
    }];
    let mut out = Vec::new();
    write_pipe_stream(&mut out, &one, &features());
    let file = PerfFile::from_bytes(out).unwrap();
    let (records, warnings) = file.read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(without_user_records(records), expected_records());

    let two = [one[0].clone(), one[0].clone()];
    let err = PipeWriter::new(Vec::new(), "test output", None, &two, &features())
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            WriteError::TooManyIds {
                event: 0,
                ids: 10_000,
                max: 8174
            }
        ),
        "{err}"
    );
}

/// A reader that went away.
struct ClosedPipe;

impl std::io::Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_pipe_is_the_end_of_the_recording_not_a_quiet_exit() {
    let attrs = [AttrEntry {
        attr: cpu_clock_attr(SAMPLE_TYPE),
        ids: vec![],
    }];
    let err = PipeWriter::new(ClosedPipe, "standard output", None, &attrs, &features())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "standard output was closed by its reader (broken pipe) after 0 bytes: the recording \
         stopped there"
    );
    // No io::Error underneath: `rprof record` must not exit quietly as
    // `rprof report | head` does.
    assert!(std::error::Error::source(&err).is_none());
}

#[test]
fn the_copy_for_symbol_embedding_reads_back_and_has_no_name() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let copy = pipe::unlinked_temp_file(dir.path()).unwrap();
    assert_eq!(copy.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let attrs = [AttrEntry {
        attr: cpu_clock_attr(SAMPLE_TYPE),
        ids: vec![7, 8],
    }];
    let mut out = Vec::new();
    let mut w = PipeWriter::new(&mut out, "test output", Some(copy), &attrs, &features()).unwrap();
    DataSink::write_raw(&mut w, &encode_records(&expected_records())).unwrap();
    DataSink::mark_data_complete(&mut w).unwrap();
    let file = DataSink::read_back(&mut w).unwrap();
    assert!(file.is_pipe_mode());
    let (records, warnings) = file.read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(without_user_records(records), expected_records());
    drop(file);
    DataSink::finish(Box::new(w), &features()).unwrap();
    // The stream holds the copy's bytes, then the end.
    let streamed = PerfFile::from_bytes(out).unwrap();
    assert_eq!(
        streamed.feature(feature::RPROF_SYMBOLS),
        features().rprof_symbols.as_deref()
    );
}

#[test]
fn no_prefix_of_a_written_pipe_stream_panics() {
    let f = FeatureData {
        rprof_symbols: Some(large_symbols()[..70_000].to_vec()),
        ..features()
    };
    let bytes = pipe_stream_bytes(&f);
    for end in (16..bytes.len()).step_by(97) {
        read_everything(bytes[..end].to_vec());
    }
}

// ---- Linux perf ----

#[path = "../../tests/support/kernel_wide.rs"]
mod kernel_wide;

/// Runs perf (through the suite's one perf runner, which holds the lock
/// against system-wide recordings and fails on a crash); `None` means
/// "skip": perf is missing or not permitted here (panics instead when
/// RPROF_REQUIRE_PERF is set).
fn run_perf(args: &[&str]) -> Option<Output> {
    let required = std::env::var_os("RPROF_REQUIRE_PERF").is_some();
    let skip = |why: String| {
        assert!(!required, "RPROF_REQUIRE_PERF is set but {why}");
        eprintln!("skipping: {why}");
        None
    };
    let output = match kernel_wide::run_linux_perf(args) {
        Ok(output) => output,
        Err(e) => return skip(format!("cannot run perf: {e}")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let denied = ["ermission", "paranoid", "not supported", "No permission"];
    if !output.status.success() && denied.iter().any(|d| stderr.contains(d)) {
        return skip(format!("perf {args:?} is not permitted: {stderr}"));
    }
    Some(output)
}

fn assert_success(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

const BUSY_LOOP: &str = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done";

#[test]
fn reads_a_linux_perf_record_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let path_str = path.to_str().unwrap();
    let args = [
        "record", "-q", "-g", "-o", path_str, "--", "sh", "-c", BUSY_LOOP,
    ];
    let Some(output) = run_perf(&args) else {
        return;
    };
    assert_success(&output, "perf record");
    let file = PerfFile::open(&path).unwrap();
    assert!(!file.is_pipe_mode());
    check_busy_loop_recording(&file, &path);
}

#[test]
fn reads_a_linux_perf_all_cgroups_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let path_str = path.to_str().unwrap();
    let args = [
        "record",
        "-q",
        "--all-cgroups",
        "-g",
        "-o",
        path_str,
        "--",
        "sh",
        "-c",
        BUSY_LOOP,
    ];
    let Some(output) = run_perf(&args) else {
        return;
    };
    assert_success(&output, "perf record --all-cgroups");
    let file = PerfFile::open(&path).unwrap();
    assert_ne!(file.attrs()[0].sample_type & sample::CGROUP, 0);
    check_busy_loop_recording(&file, &path);
    let (records, _) = file.read_records();
    // perf synthesizes the existing cgroups; every sample names one of them.
    let named: std::collections::HashSet<u64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Cgroup(c) => Some(c.id),
            _ => None,
        })
        .collect();
    let sampled: Vec<Option<u64>> = records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s.cgroup),
            _ => None,
        })
        .collect();
    assert!(!sampled.is_empty());
    assert!(
        sampled
            .iter()
            .all(|id| id.is_some_and(|id| named.contains(&id))),
        "cgroups named: {named:?}"
    );
}

#[test]
fn reads_a_compressed_linux_perf_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    let path_str = path.to_str().unwrap();
    let args = [
        "record", "-q", "-z", "-g", "-o", path_str, "--", "sh", "-c", BUSY_LOOP,
    ];
    let Some(output) = run_perf(&args) else {
        return;
    };
    assert_success(&output, "perf record -z");
    let file = PerfFile::open(&path).unwrap();
    assert!(
        file.feature(feature::COMPRESSED).is_some(),
        "perf record -z wrote no HEADER_COMPRESSED feature"
    );
    check_busy_loop_recording(&file, &path);
}

/// `perf record -o -` with `extra` args, its output saved to a file.
fn record_pipe_file(dir: &Path, extra: &[&str]) -> Option<std::path::PathBuf> {
    let mut args = vec!["record", "-q", "-g", "-o", "-"];
    args.extend(extra);
    args.extend(["--", "sh", "-c", BUSY_LOOP]);
    let output = run_perf(&args)?;
    assert!(
        output.status.success(),
        "perf {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.join("pipe.data");
    std::fs::write(&path, &output.stdout).unwrap();
    Some(path)
}

#[test]
fn reads_a_linux_perf_pipe_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = record_pipe_file(dir.path(), &[]) else {
        return;
    };
    let file = PerfFile::open(&path).unwrap();
    assert!(file.is_pipe_mode());
    check_busy_loop_recording(&file, &path);

    // No prefix of it panics (every 97th, to keep the test quick).
    let bytes = std::fs::read(&path).unwrap();
    for len in (0..bytes.len()).step_by(97) {
        read_everything(bytes[..len].to_vec());
    }
}

#[test]
fn reads_a_compressed_linux_perf_pipe_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = record_pipe_file(dir.path(), &["-z"]) else {
        return;
    };
    let file = PerfFile::open(&path).unwrap();
    assert!(file.is_pipe_mode());
    assert!(file.feature(feature::COMPRESSED).is_some());
    check_busy_loop_recording(&file, &path);
}

/// What a recording of BUSY_LOOP holds, however perf wrote it (plain, -z,
/// pipe mode): metadata, samples with call chains, comm and mmap records,
/// and exactly the samples `perf script` sees.
fn check_busy_loop_recording(file: &PerfFile, path: &Path) {
    let meta = file.metadata();
    assert!(meta.hostname.as_deref().is_some_and(|h| !h.is_empty()));
    assert!(meta.osrelease.is_some());
    assert!(meta.arch.is_some());
    assert!(meta
        .nrcpus
        .is_some_and(|(online, avail)| online >= 1 && avail >= online));
    assert!(
        meta.cmdline.iter().any(|a| a == "record"),
        "{:?}",
        meta.cmdline
    );
    assert_eq!(meta.event_names.len(), file.attrs().len());
    assert!(file.attrs()[0].sample_type & sample::CALLCHAIN != 0);

    let mut ordered = file.ordered();
    let records: Vec<Record<'_>> = ordered.by_ref().collect();
    let warnings = ordered.warnings();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(!records.contains(&Record::Other {
        kind: record_type::COMPRESSED
    }));
    let samples: Vec<&Sample> = records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s),
            _ => None,
        })
        .collect();
    assert!(samples.len() > 10, "only {} samples", samples.len());
    assert!(samples.windows(2).all(|w| w[0].time <= w[1].time));
    let with_chain = samples.iter().filter(|s| s.callchain.len() >= 2).count();
    assert!(
        with_chain * 2 > samples.len(),
        "{with_chain} of {} have chains",
        samples.len()
    );
    assert!(samples
        .iter()
        .all(|s| s.callchain.first().map_or(true, |&ip| ip >= context::MAX)));
    let sh = records.iter().find_map(|r| match r {
        Record::Comm(c) if c.comm == "sh" => Some(c),
        _ => None,
    });
    let sh = sh.expect("a COMM record for sh");
    assert!(samples.iter().any(|s| s.pid == sh.pid));
    assert!(records
        .iter()
        .any(|r| matches!(r, Record::Mmap(m) if m.pid == sh.pid)));
    assert!(records
        .iter()
        .any(|r| matches!(r, Record::Mmap(m) if m.cpumode == CpuMode::Kernel)));

    let path_str = path.to_str().unwrap();
    let Some(output) = run_perf(&["script", "-G", "-F", "pid,time", "-i", path_str]) else {
        return;
    };
    let script = assert_success(&output, "perf script");
    let perf_samples = script.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(
        samples.len(),
        perf_samples,
        "perf script sees other samples"
    );
}

#[test]
fn linux_perf_reads_our_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    write_test_file(&path);
    let path_str = path.to_str().unwrap();

    let Some(output) = run_perf(&["script", "-i", path_str, "-F", "comm,pid,time,ip,period"])
    else {
        return;
    };
    let script = assert_success(&output, "perf script");
    assert!(script.contains("busy"), "{script}");
    assert_eq!(
        script.lines().filter(|l| l.contains("busy")).count(),
        3,
        "{script}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
    let complaints = [
        "incompatible",
        "non matching",
        "corrupt",
        "unprocessable",
        "failed",
    ];
    assert!(!complaints.iter().any(|c| stderr.contains(c)), "{stderr}");

    let Some(output) = run_perf(&["report", "-i", path_str, "--header-only"]) else {
        return;
    };
    let header = assert_success(&output, "perf report --header-only");
    assert!(header.contains("hostname : rprof-test-host"), "{header}");
    assert!(header.contains("os release : 6.1.0-test"), "{header}");
    assert!(
        header.contains("cmdline : rprof record -- busy"),
        "{header}"
    );
    assert!(header.contains("nrcpus online : 3"), "{header}");
    assert!(header.contains("nrcpus avail : 4"), "{header}");
    assert!(header.contains("name = cpu-clock"), "{header}");
    assert!(
        header.contains("size = 128"),
        "perf 6.1 refuses larger attrs: {header}"
    );

    let Some(output) = run_perf(&["buildid-list", "-i", path_str]) else {
        return;
    };
    let ids = assert_success(&output, "perf buildid-list");
    assert!(
        ids.contains(&format!("{} [kernel.kallsyms]", "ab".repeat(20))),
        "{ids}"
    );
    assert!(ids.contains("0102030405060708 "), "{ids}");

    let Some(output) = run_perf(&["report", "-i", path_str, "--stdio", "--sort", "comm,pid"])
    else {
        return;
    };
    let report = assert_success(&output, "perf report");
    assert!(report.contains("busy"), "{report}");
}

/// The 24 bytes between pgoff and prot of an MMAP2 body as device/inode
/// (`maj, min, ino, ino_generation`), what the kernel writes for an event
/// that did not ask for build ids.
fn device_inode(maj: u32, min: u32, ino: u64, ino_generation: u64) -> Vec<u8> {
    let mut w = ByteWriter::default();
    w.u32(maj).u32(min).u64(ino).u64(ino_generation);
    w.buf
}

#[test]
fn mmap2_build_id_flag_over_device_inode_bytes_means_no_build_id() {
    let genuine = |id: &[u8]| {
        let mut area = [0u8; 20];
        area[..id.len()].copy_from_slice(id);
        let mut w = ByteWriter::default();
        w.u8(id.len() as u8).bytes(&[0; 3]).bytes(&area);
        w.buf
    };
    let cases = [
        // Kernel 6.18 beside a system-wide event with build ids: size byte 0xfe.
        ("dm/virtio 254:0", device_inode(254, 0, 247076, 0), None),
        // nvme's major 259 leaves 0x01 in the first reserved byte.
        ("nvme 259:1", device_inode(259, 1, 1_048_577, 0), None),
        // overlayfs, btrfs, tmpfs: major 0, so a size of 0.
        ("overlay 0:42", device_inode(0, 42, 31337, 0), None),
        // sd's major 8 reads as a size of 8; ext4's random generation follows.
        ("sd 8:1", device_inode(8, 1, 1234, 0x5eed_cafe), None),
        (
            "20-byte build id",
            genuine(&[0xab; 20]),
            Some(vec![0xab; 20]),
        ),
        (
            "8-byte build id",
            genuine(&[1, 2, 3, 4, 5, 6, 7, 8]),
            Some(vec![1, 2, 3, 4, 5, 6, 7, 8]),
        ),
    ];
    let mut data = Vec::new();
    for (time, (_, area, _)) in cases.iter().enumerate() {
        let mut body = ByteWriter::default();
        body.u32(42).u32(42).u64(0x40_0000).u64(0x2000).u64(0x1000);
        body.bytes(area).u32(5).u32(2); // prot r-x, flags MAP_PRIVATE
        body.padded_c_string("/usr/bin/rprof-test-binary", 8);
        let misc = misc::USER | misc::MMAP_BUILD_ID;
        data.extend(raw_record(record_type::MMAP2, misc, &body.buf, time as u64));
    }
    let bytes = file_with(&[(cpu_clock_attr(SAMPLE_TYPE), vec![])], &data);
    let (records, warnings) = PerfFile::from_bytes(bytes).unwrap().read_records();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records.len(), cases.len());
    let inodes = [
        Some((254, 0, 247076)),
        Some((259, 1, 1_048_577)),
        Some((0, 42, 31337)),
        Some((8, 1, 1234)),
        None,
        None,
    ];
    for (((what, _, build_id), record), inode) in cases.iter().zip(&records).zip(inodes) {
        let Record::Mmap(m) = record else {
            panic!("{what}: {record:?}")
        };
        assert_eq!(&m.build_id, build_id, "{what}");
        assert_eq!(
            m.inode.map(|i| (i.major, i.minor, i.ino)),
            inode,
            "{what}: device and inode"
        );
        assert_eq!(
            (m.pid, m.start, m.len, m.pgoff, m.prot, m.flags),
            (42, 0x40_0000, 0x2000, 0x1000, 5, 2),
            "{what}"
        );
        assert_eq!(m.filename, "/usr/bin/rprof-test-binary", "{what}");
    }
}
