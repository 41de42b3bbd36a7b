//! `rprof record -o -` (a pipe-mode stream on standard output) and
//! `rprof report -i -` (a recording on standard input), end to end, and
//! Linux perf reading rprof's stream.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rprof::perfdata::format::feature;
use rprof::perfdata::PerfFile;

use crate::util::*;

/// `rprof report -i - ARGS` with `input`'s bytes on standard input.
fn report_stdin(input: &Path, args: &[&str]) -> Output {
    Command::new(rprof_bin())
        .args(["report", "-i", "-"])
        .args(args)
        .stdin(File::open(input).unwrap())
        .output()
        .expect("run rprof report")
}

/// `rprof record -g -o - -- PROGRAM ARGS` with its stream written to `stream`.
fn record_stream(stream: &Path, program: &Path, args: &[&str]) -> Output {
    Command::new(rprof_bin())
        .args(["record", "-g", "-o", "-", "--"])
        .arg(program)
        .args(args)
        .stdout(File::create(stream).unwrap())
        .output()
        .expect("run rprof record")
}

/// Checks the stream's framing: the pipe header, and records all the way
/// to the end (nothing but the recording went to standard output).
fn assert_clean_stream(stream: &Path) -> PerfFile {
    let bytes = std::fs::read(stream).unwrap();
    assert_eq!(&bytes[..8], b"PERFILE2");
    assert_eq!(bytes[8..16], 16u64.to_ne_bytes(), "not a pipe-mode header");
    let file = PerfFile::open(stream).unwrap();
    assert!(file.is_pipe_mode());
    let (records, warnings) = file.read_records();
    assert!(!records.is_empty());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        file.feature(feature::RPROF_SYMBOLS).is_some(),
        "no embedded symbols in the stream"
    );
    file
}

#[test]
fn record_to_stdout_piped_into_report_matches_the_report_of_the_saved_stream() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("pipe-roundtrip");
    let copy = dir.join("work-copy");
    std::fs::copy(&workloads().work, &copy).unwrap();
    let stream = dir.join("stream.data");
    // A real pipeline: record | tee FILE | report -i -.
    let line = format!(
        "{rprof} record -g -o - -- {work} split 1 | tee {stream} | {rprof} report -i - --format folded",
        rprof = rprof_bin().display(),
        work = copy.display(),
        stream = stream.display(),
    );
    let run = Command::new("bash")
        .args(["-o", "pipefail", "-c", &line])
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let piped = text(&run.stdout);
    // The summary and the workload's own output went to standard error.
    assert!(
        stderr.contains("written to standard output") && stderr.contains("truth burn_a="),
        "{stderr}"
    );
    assert_clean_stream(&stream);

    // The binary is gone: names come from the stream's embedded symbols.
    std::fs::remove_file(&copy).unwrap();
    let from_file = folded_report_of(&stream);
    let from_stdin = report_stdin(&stream, &["--format", "folded"]);
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    assert_eq!(text(&from_stdin.stdout), from_file);
    assert_eq!(piped, from_file);
    let stacks = folded(&piped);
    let weight = |f: &str| -> u64 {
        stacks
            .iter()
            .filter(|(s, _)| s.ends_with(&format!(";main;{f}")))
            .map(|(_, w)| w)
            .sum()
    };
    let total: u64 = stacks.iter().map(|(_, w)| w).sum();
    assert!(
        weight("burn_a") > total / 2 && weight("burn_b") > total / 10,
        "{piped}"
    );
}

#[test]
fn linux_perf_reads_the_pipe_stream_and_agrees_on_the_top_function() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("pipe-perf");
    let stream = dir.join("stream.data");
    let run = record_stream(&stream, &workloads().work, &["split", "1"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_clean_stream(&stream);
    let ours = self_shares(&text(
        &report_stdin(&stream, &["--sort", "symbol", "--no-children"]).stdout,
    ));
    assert_eq!(ours[0].0, "burn_a", "{ours:?}");

    let report = run_linux_perf_with_stdin(
        [
            "report",
            "-i",
            "-",
            "--stdio",
            "--no-children",
            "--sort",
            "symbol",
        ],
        File::open(&stream).unwrap(),
    )
    .unwrap();
    let stderr = text(&report.stderr);
    assert!(report.status.success(), "perf report -i -: {stderr}");
    // perf 6.1 prints "failed: wrong feature ID: 200" and stops for a
    // HEADER_FEATURE bit it does not know; the symbols are not one.
    assert!(!stderr.contains("failed"), "perf report -i -: {stderr}");
    let stdout = text(&report.stdout);
    let perf_rows = perf_report_rows(&stdout);
    assert_eq!(perf_rows[0].0, "burn_a", "perf report -i -:\n{stdout}");
    assert!(
        (perf_rows[0].1 - ours[0].1).abs() < 1.0,
        "{perf_rows:?} vs {ours:?}"
    );

    let script =
        run_linux_perf_with_stdin(["script", "-i", "-"], File::open(&stream).unwrap()).unwrap();
    assert!(script.status.success(), "{}", text(&script.stderr));
    assert!(text(&script.stdout).contains("burn_a"), "perf script -i -");
}

#[test]
fn reader_going_away_stops_the_recording_with_a_message() {
    require_perf!();
    let _guard = serial();
    let mut child = Command::new(rprof_bin())
        .args(["record", "-g", "-o", "-", "--"])
        .arg(&workloads().work)
        .args(["split", "29"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut start = [0u8; 16];
    stdout.read_exact(&mut start).unwrap();
    assert_eq!(&start[..8], b"PERFILE2");
    std::thread::sleep(Duration::from_millis(500));
    drop(stdout);
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "record went on after its reader left"
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("rprof: error: standard output was closed by its reader (broken pipe) after"),
        "{stderr}"
    );
    let left = Command::new("pgrep")
        .args(["-f", "work split 29"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "the profiled command outlived the recording"
    );
}

#[test]
fn ctrl_c_on_a_pipeline_ends_the_stream_and_the_report_shows_all_of_it() {
    use std::os::unix::process::CommandExt;
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("pipe-sigint");
    let stream = dir.join("stream.data");
    // As in a terminal: Ctrl-C reaches every process of the pipeline (tee
    // -i ignores it, as the saved copy must outlive it).
    let line = format!(
        "{rprof} record -g -o - -- {work} split 30 | tee -i {stream} | {rprof} report -i - --format folded",
        rprof = rprof_bin().display(),
        work = workloads().work.display(),
        stream = stream.display(),
    );
    // The pipeline's status is the report's: the workload itself may die of
    // the Ctrl-C before rprof stops it, and rprof then passes on its 130.
    let child = Command::new("bash")
        .args(["-c", &line])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ctrl-C once records flow (the report then has its input open and the
    // recorder its signal handlers), not after a guessed delay.
    let flowing = Instant::now();
    while std::fs::metadata(&stream).map_or(0, |m| m.len()) < 64 << 10 {
        assert!(
            flowing.elapsed() < Duration::from_secs(30),
            "no records reached the pipe"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("written to standard output"), "{stderr}");
    assert_clean_stream(&stream);
    let from_file = folded_report_of(&stream);
    assert_eq!(text(&out.stdout), from_file);
    assert!(
        text(&out.stdout).contains(";main;burn_a "),
        "{}",
        text(&out.stdout)
    );
}

/// `rprof report -i FILE --format folded`, which must succeed.
fn folded_report_of(file: &Path) -> String {
    let run = rprof(&["report", "-i", file.to_str().unwrap(), "--format", "folded"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    text(&run.stdout)
}
