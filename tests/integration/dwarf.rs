//! Files recorded by Linux `perf record --call-graph dwarf` of workloads
//! built without frame pointers: rprof unwinds the copied stacks with the
//! binaries' CFI, checked against the workloads' own ground truth.

use std::path::Path;

use crate::util::*;

/// `perf record --call-graph dwarf[,BYTES] -F 999 -o OUT -- work ARGS` of the
/// no-frame-pointer build; the workload's stdout.
fn perf_record_dwarf(call_graph: &str, out: &Path, args: &[&str]) -> String {
    perf_record_dwarf_of(&workloads_no_fp().work, call_graph, "999", out, args)
}

/// `perf record --call-graph CALL_GRAPH -F FREQ -o OUT -- PROGRAM ARGS`;
/// the program's stdout.
fn perf_record_dwarf_of(
    program: &Path,
    call_graph: &str,
    freq: &str,
    out: &Path,
    args: &[&str],
) -> String {
    let mut argv = vec![
        "record",
        "-q",
        "--call-graph",
        call_graph,
        "-F",
        freq,
        "-o",
        out.to_str().unwrap(),
        "--",
        program.to_str().unwrap(),
    ];
    argv.extend_from_slice(args);
    perf_succeeded(run_linux_perf(&argv), "perf record --call-graph dwarf")
}

/// `rprof record --call-graph dwarf -F FREQ -o OUT COMMAND...`, which must
/// succeed.
fn rprof_record_dwarf(freq: &str, out: &Path, command: &[&str]) -> std::process::Output {
    let argv = [
        &[
            "record",
            "--call-graph",
            "dwarf",
            "-F",
            freq,
            "-o",
            out.to_str().unwrap(),
        ][..],
        command,
    ]
    .concat();
    let run = rprof(&argv);
    assert!(run.status.success(), "record: {}", text(&run.stderr));
    run
}

/// The folded stacks of recording `data`.
fn folded_of(data: &Path) -> Vec<(String, u64)> {
    folded(&report(&[
        "-i",
        data.to_str().unwrap(),
        "--format",
        "folded",
    ]))
}

fn report(args: &[&str]) -> String {
    let run = rprof(&[&["report"], args].concat());
    assert!(run.status.success(), "report failed: {}", text(&run.stderr));
    text(&run.stdout)
}

/// The share (0..1) of the samples of stacks holding `leaf` that also hold `main`.
fn share_under_main(folded: &[(String, u64)], leaves: &[&str]) -> (f64, u64) {
    let frames = |s: &str| s.split(';').map(str::to_string).collect::<Vec<_>>();
    let with_leaf: Vec<_> = folded
        .iter()
        .filter(|(s, _)| frames(s).iter().any(|f| leaves.contains(&f.as_str())))
        .collect();
    let total: u64 = with_leaf.iter().map(|(_, c)| c).sum();
    let to_main: u64 = with_leaf
        .iter()
        .filter(|(s, _)| frames(s).iter().any(|f| f == "main"))
        .map(|(_, c)| c)
        .sum();
    (to_main as f64 / total.max(1) as f64, total)
}

#[test]
fn perf_dwarf_file_of_no_frame_pointer_build_matches_truth_and_reaches_main() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("dwarf-split");
    let data = dir.join("perf.data");
    let stdout = perf_record_dwarf("dwarf", &data, &["split", "2"]);
    let data = data.to_str().unwrap();

    let top = report(&["-i", data, "--sort", "symbol", "--no-children"]);
    assert!(top.contains("# DWARF stacks: "), "{top}");
    assert!(!top.contains("does not unwind"), "{top}");
    assert_split_matches_truth(&top, &stdout);

    let folded = folded(&report(&["-i", data, "--format", "folded"]));
    let (share, total) = share_under_main(&folded, &["burn_a", "burn_b"]);
    assert!(total > 0, "no burn samples: {folded:?}");
    // The bar: 99% (measured here: all of them).
    assert!(
        share >= 0.99,
        "only {:.1}% of burn_a/burn_b samples unwind to main: {folded:?}",
        share * 100.0
    );
}

#[test]
fn perf_dwarf_file_unwinds_a_dlopened_library_to_main() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("dwarf-dlopen");
    let data = dir.join("perf.data");
    let lib = workloads_no_fp().dlwork.to_str().unwrap();
    perf_record_dwarf("dwarf", &data, &["dlopen", lib, "1"]);
    let folded = folded_of(&data);
    let (share, total) = share_under_main(&folded, &["dl_spin"]);
    assert!(total > 0, "no dl_spin samples: {folded:?}");
    assert!(
        share >= 0.95,
        "only {:.1}% of dl_spin samples unwind to main: {folded:?}",
        share * 100.0
    );
    assert!(
        folded
            .iter()
            .any(|(s, _)| s.contains(";dl_burn;dl_spin") || s.contains(";dl_burn;dl_spin_")),
        "dl_burn -> dl_spin missing: {folded:?}"
    );
}

#[test]
fn stacks_cut_by_a_small_stack_copy_end_in_truncated() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("dwarf-truncated");
    let data = dir.join("perf.data");
    // 64 bytes hold a leaf's return address, not the way to main.
    perf_record_dwarf("dwarf,64", &data, &["split", "1"]);
    let data = data.to_str().unwrap();
    let top = report(&["-i", data, "--no-children"]);
    let line = top
        .lines()
        .find(|l| l.starts_with("# DWARF stacks: "))
        .unwrap_or_else(|| panic!("no DWARF line: {top}"));
    assert!(!line.contains(" 0 truncated"), "{line}");
    let folded = folded(&report(&["-i", data, "--format", "folded"]));
    let workload: Vec<_> = folded
        .iter()
        .filter(|(s, _)| s.starts_with("work;"))
        .collect();
    assert!(!workload.is_empty(), "{folded:?}");
    for (stack, _) in workload {
        let reaches_root = stack.split(';').any(|f| f == "main" || f == "_start");
        assert!(
            reaches_root || stack.starts_with("work;[truncated];"),
            "a stack cut without a [truncated] frame: {stack}"
        );
    }
}

#[test]
fn rprof_dwarf_recording_matches_truth_reaches_main_and_perf_agrees() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("rprof-dwarf");
    let data = dir.join("rprof.data");
    let work = workloads_no_fp().work.to_str().unwrap().to_string();
    let run = rprof_record_dwarf("999", &data, &[&work, "split", "2"]);
    let summary = text(&run.stderr);
    assert!(summary.contains("user stacks unwound"), "{summary}");
    let rprof_bytes = std::fs::metadata(&data).unwrap().len();
    let rprof_samples = recorded_samples(&summary);

    // The same run under perf, for the size its stack copies take.
    let perf_data = dir.join("perf.data");
    perf_record_dwarf("dwarf", &perf_data, &["split", "2"]);
    let perf_bytes = std::fs::metadata(&perf_data).unwrap().len();
    let perf_samples = perf_sample_count(perf_data.to_str().unwrap());
    let per_sample = |bytes: u64, samples: u64| bytes as f64 / samples.max(1) as f64;
    let (ours, perfs) = (
        per_sample(rprof_bytes, rprof_samples),
        per_sample(perf_bytes, perf_samples),
    );
    // Unwound while recording, the file keeps call chains, not 8 KB copies
    // (the issue asks for 1/10 of perf's size, 1/50 as a stretch).
    assert!(
        ours * 10.0 <= perfs,
        "rprof {ours:.0} bytes/sample vs perf {perfs:.0}: not a tenth"
    );

    let data = data.to_str().unwrap();
    let top = report(&["-i", data, "--sort", "symbol", "--no-children"]);
    assert!(top.contains("# DWARF stacks: "), "{top}");
    assert_split_matches_truth(&top, &text(&run.stdout));
    let folded = folded(&report(&["-i", data, "--format", "folded"]));
    let (share, _) = share_under_main(&folded, &["burn_a", "burn_b"]);
    assert!(share >= 0.95, "only {:.1}% reach main", share * 100.0);

    // Linux perf unwinds rprof's file too (its unwinder places each binary
    // by its first mapping, which the data mappings provide).
    let perf = perf_succeeded(
        run_linux_perf(["report", "-i", data, "--stdio", "--no-children", "-G"]),
        "perf report",
    );
    let rows = perf_report_rows(&perf);
    assert_eq!(rows.first().map(|r| r.0.as_str()), Some("burn_a"), "{perf}");
    assert!(
        perf.contains("main"),
        "perf unwound no stack to main:\n{perf}"
    );
}

#[test]
fn attaching_in_dwarf_mode_unwinds_for_rprof_and_for_perf() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("dwarf-attach");
    let data = dir.join("attach.data");
    let (mut child, pid) = spawn_workload(&workloads_no_fp().work, "spin", "3");
    let run = rprof(&[
        "record",
        "--call-graph",
        "dwarf",
        "-F",
        "999",
        "-p",
        &pid,
        "--duration",
        "1",
        "-o",
        data.to_str().unwrap(),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(run.status.success(), "record: {}", text(&run.stderr));
    let data = data.to_str().unwrap();
    let folded = folded(&report(&["-i", data, "--format", "folded"]));
    let (share, total) = share_under_main(&folded, &["burn_a", "burn_b"]);
    assert!(
        total > 0 && share >= 0.95,
        "{:.1}% reach main",
        share * 100.0
    );
    // The mappings of a running process come from /proc, data ones too:
    // perf's unwinder needs them to place each binary.
    let perf = perf_succeeded(
        run_linux_perf(["report", "-i", data, "--stdio", "--no-children", "-G"]),
        "perf report",
    );
    assert!(
        perf.contains("main"),
        "perf unwound no stack to main:\n{perf}"
    );
}

#[test]
fn a_binary_deleted_after_recording_still_unwinds_one_deleted_before_is_named() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("dwarf-gone");
    // Unwound at the end of the recording: deleting the binary afterwards
    // costs nothing (perf's stack copies need it at report time).
    let binary = dir.join("work-later");
    std::fs::copy(&workloads_no_fp().work, &binary).unwrap();
    let data = dir.join("later.data");
    rprof_record_dwarf("499", &data, &[binary.to_str().unwrap(), "split", "0.5"]);
    std::fs::remove_file(&binary).unwrap();
    let folded = folded_of(&data);
    let (share, _) = share_under_main(&folded, &["burn_a", "burn_b"]);
    assert!(share >= 0.95, "only {:.1}% reach main", share * 100.0);

    // Deleted while the recording still runs: its unwind tables are gone
    // when the stacks are unwound; the recording says so and marks them.
    let binary = dir.join("work-gone");
    std::fs::copy(&workloads_no_fp().work, &binary).unwrap();
    let data = dir.join("gone.data");
    let script = format!("{0} split 0.5 && rm {0}", binary.display());
    let run = rprof_record_dwarf("499", &data, &["sh", "-c", &script]);
    assert!(!binary.exists());
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains(&format!("no unwind tables for {}", binary.display())),
        "the recording names the binary it could not unwind with:\n{stderr}"
    );
    let top = report(&["-i", data.to_str().unwrap(), "--sort", "symbol"]);
    // Without its CFI the no-frame-pointer build cannot be walked: its
    // stacks are marked, not silently cut (and with the file gone, its
    // frames are named by module and offset).
    assert!(
        top.contains("[truncated]") && top.contains("work-gone+0x"),
        "{top}"
    );
    assert!(!top.contains(" 0 truncated"), "{top}");
}

#[test]
fn a_perf_dwarf_file_whose_binary_is_gone_says_so_and_marks_cut_stacks() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("perf-dwarf-gone");
    let binary = dir.join("work-gone");
    std::fs::copy(&workloads_no_fp().work, &binary).unwrap();
    let data = dir.join("gone.data");
    let out = data.to_str().unwrap();
    perf_record_dwarf_of(&binary, "dwarf", "499", &data, &["split", "0.5"]);
    std::fs::remove_file(&binary).unwrap();
    // perf's build-id cache (~/.debug) kept a copy, which rprof uses: with
    // HOME elsewhere the report is as on a machine without it.
    let run = rprof_command()
        .env("HOME", &dir)
        .args(["report", "-i", out, "--sort", "symbol"])
        .output()
        .unwrap();
    let top = text(&run.stdout);
    assert!(
        top.contains(&format!("no unwind tables for {}", binary.display())),
        "the report names the binary it could not unwind with:\n{top}"
    );
    assert!(top.contains("[truncated]"), "{top}");
    // With the cache, the kept copy of the recorded build unwinds it.
    let folded = folded(&report(&["-i", out, "--format", "folded"]));
    let (share, _) = share_under_main(&folded, &["burn_a", "burn_b"]);
    assert!(
        share >= 0.95,
        "from perf's cache: {:.1}% reach main",
        share * 100.0
    );
    assert!(!top.contains("# DWARF stacks: 0 unwound"), "{top}");
}

/// The sample count in `rprof record`'s summary line.
fn recorded_samples(summary: &str) -> u64 {
    summary
        .split("rprof record: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sample count in {summary}"))
}

/// The samples in a perf file, as `perf report --stats` counts them.
fn perf_sample_count(data: &str) -> u64 {
    let stats = perf_succeeded(
        run_linux_perf(["report", "-i", data, "--stats"]),
        "perf report --stats",
    );
    stats
        .lines()
        .find(|l| l.trim_start().starts_with("SAMPLE events:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no SAMPLE count in {stats}"))
}

/// Runs `program` (from `dir`) under `rprof record --call-graph dwarf`; the
/// folded report's share of burn samples that reach `main`.
fn rprof_dwarf_share_to_main(dir: &Path, program: &Path) -> f64 {
    let data = dir.join(format!(
        "{}.data",
        program.file_name().unwrap().to_string_lossy()
    ));
    rprof_record_dwarf("499", &data, &[program.to_str().unwrap(), "split", "0.5"]);
    let folded = folded_of(&data);
    let (share, total) = share_under_main(&folded, &["burn_a", "burn_b"]);
    assert!(total > 0, "no burn samples in {folded:?}");
    share
}

#[test]
fn code_only_debug_frame_describes_unwinds_also_from_a_separate_debug_file() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("debug-frame");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/work.c");
    // No unwind tables for the workload's own code: its rules are in
    // .debug_frame only (the C runtime's startup code keeps .eh_frame).
    let flags = [
        NO_FP_FLAGS,
        &["-fno-asynchronous-unwind-tables", "-fno-unwind-tables"],
    ]
    .concat();
    let inline = dir.join("work-debug-frame");
    cc_with(&flags, &[&src], &inline, &["-ldl", "-pthread", "-lm"]);
    let share = rprof_dwarf_share_to_main(&dir, &inline);
    assert!(share >= 0.95, "only {:.1}% reach main", share * 100.0);

    // The same, stripped: .debug_frame is found in the debug file that
    // .gnu_debuglink names.
    let stripped = dir.join("work-stripped");
    let debug = dir.join("work-stripped.debug");
    std::fs::copy(&inline, &stripped).unwrap();
    for args in [
        vec!["--only-keep-debug", path(&stripped), path(&debug)],
        vec!["--strip-debug", path(&stripped)],
        vec![
            &format!("--add-gnu-debuglink={}", path(&debug)),
            path(&stripped),
        ],
    ] {
        let status = std::process::Command::new("objcopy")
            .args(&args)
            .status()
            .expect("run objcopy (install binutils)");
        assert!(status.success(), "objcopy {args:?}");
    }
    let share = rprof_dwarf_share_to_main(&dir, &stripped);
    assert!(
        share >= 0.95,
        "stripped: only {:.1}% reach main",
        share * 100.0
    );
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_perf_dwarf_file_of_a_rebuilt_binary_is_unwound_with_the_recorded_build() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("dwarf-rebuilt");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/work.c");
    let binary = dir.join("work-rebuilt");
    cc_with(NO_FP_FLAGS, &[&src], &binary, &["-ldl", "-pthread", "-lm"]);
    let data = dir.join("rebuilt.data");
    let out = data.to_str().unwrap();
    // perf keeps a copy of each sampled binary in its build-id cache
    // (~/.debug), as `perf archive` unpacks them on another machine.
    perf_record_dwarf_of(&binary, "dwarf", "499", &data, &["split", "0.5"]);
    // Another build at the same path: its unwind tables and symbols would
    // be wrong for the recorded addresses.
    cc_with(
        &["-O1", "-g", "-fomit-frame-pointer"],
        &[&src],
        &binary,
        &["-ldl", "-pthread", "-lm"],
    );
    let folded = folded(&report(&["-i", out, "--format", "folded"]));
    let (share, total) = share_under_main(&folded, &["burn_a", "burn_b"]);
    assert!(
        total > 0 && share >= 0.95,
        "the recorded build (by the file's build id) unwinds: {:.1}% reach main",
        share * 100.0
    );
    // Without the cache the report says which binary could not be used.
    let run = rprof_command()
        .env("HOME", &dir)
        .args(["report", "-i", out])
        .output()
        .unwrap();
    let top = text(&run.stdout);
    assert!(
        top.contains(&format!("no unwind tables for {}", binary.display()))
            && top.contains("build id mismatch")
            && top.contains("[truncated]"),
        "{top}"
    );
}

#[test]
fn stacks_deeper_than_the_copy_go_on_along_the_kernels_frame_pointer_chain() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("dwarf-deep");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/deepwork.c");
    // Frame pointers: the kernel's walk of the user stack is sane.
    let binary = dir.join("deepwork");
    cc(&[&src], &binary, &[]);
    let data = dir.join("deep.data");
    rprof_record_dwarf("499", &data, &[binary.to_str().unwrap(), "1"]);
    // 100 levels of 300 bytes: 30 KB of stack, the copy holds 8.
    let folded = folded_of(&data);
    let (share, total) = share_under_main(&folded, &["burn"]);
    assert!(
        total > 0 && share >= 0.95,
        "only {:.1}% of deep stacks reach main",
        share * 100.0
    );
    let deepest = folded
        .iter()
        .map(|(stack, _)| stack.matches("dive").count())
        .max()
        .unwrap_or(0);
    assert!(deepest > 100, "the deepest stack has {deepest} dive frames");
}
