//! End-to-end tests: real recordings of workloads that measure their own
//! ground truth, checked against that truth and against Linux perf.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// Records `work ARGS` with frame pointers; returns the workload's stdout.
fn record_work(out: &Path, args: &[&str]) -> String {
    let run = record_work_with(&["-g"], out, args);
    assert!(run.status.success(), "record failed: {}", text(&run.stderr));
    text(&run.stdout)
}

/// Runs `rprof record FLAGS -o OUT -- work ARGS`, whatever its outcome.
fn record_work_with(flags: &[&str], out: &Path, args: &[&str]) -> std::process::Output {
    let w = workloads();
    let mut argv = vec!["record"];
    argv.extend_from_slice(flags);
    argv.extend(["-o", out.to_str().unwrap(), "--", w.work.to_str().unwrap()]);
    argv.extend_from_slice(args);
    rprof(&argv)
}

fn report(args: &[&str]) -> String {
    let run = rprof(&[&["report"], args].concat());
    assert!(run.status.success(), "report failed: {}", text(&run.stderr));
    text(&run.stdout)
}

/// Self share per function of a recording (`--sort symbol --no-children`).
fn symbol_shares(data: &Path) -> Vec<(String, f64)> {
    self_shares(&report(&[
        "-i",
        data.to_str().unwrap(),
        "--sort",
        "symbol",
        "--no-children",
    ]))
}

/// burn_a's share of burn_a + burn_b, in percent.
fn split_share(shares: &[(String, f64)]) -> f64 {
    let a = share_of(shares, "burn_a");
    let b = share_of(shares, "burn_b");
    assert!(
        a + b > 50.0,
        "burn_a/burn_b hold too little of the profile: {shares:?}"
    );
    100.0 * a / (a + b)
}

#[test]
fn split_between_functions_matches_ground_truth_within_two_points() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("split");
    let data = dir.join("split.data");
    let stdout = record_work(&data, &["split", "2"]);
    let top = report(&[
        "-i",
        data.to_str().unwrap(),
        "--sort",
        "symbol",
        "--no-children",
    ]);
    let measured = split_share(&self_shares(&top));
    let truth = truth_split(&stdout);
    assert!(
        (measured - truth).abs() <= 2.0,
        "profile says burn_a {measured:.2}%, truth {truth:.2}%\n{top}"
    );
}

#[test]
fn frame_pointer_build_unwinds_to_main() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("fp");
    let data = dir.join("fp.data");
    record_work(&data, &["split", "1"]);
    let folded = folded(&report(&[
        "-i",
        data.to_str().unwrap(),
        "--format",
        "folded",
    ]));
    let ours: Vec<_> = folded
        .iter()
        .filter(|(s, _)| s.starts_with("work;"))
        .collect();
    let total: u64 = ours.iter().map(|(_, c)| c).sum();
    let to_main: u64 = ours
        .iter()
        .filter(|(s, _)| s.split(';').any(|f| f == "main"))
        .map(|(_, c)| c)
        .sum();
    assert!(total > 0, "no samples of the workload");
    let share = to_main as f64 / total as f64;
    assert!(
        share >= 0.95,
        "only {:.1}% of samples unwind to main",
        share * 100.0
    );
}

#[test]
fn inline_frames_are_named_and_marked() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("inline");
    let data = dir.join("inline.data");
    record_work(&data, &["inline", "1"]);
    let folded = folded(&report(&[
        "-i",
        data.to_str().unwrap(),
        "--format",
        "folded",
    ]));
    let total: u64 = folded.iter().map(|(_, c)| c).sum();
    let inlined: u64 = folded
        .iter()
        .filter(|(s, _)| s.contains(";inline_host;mix_inline_[i]"))
        .map(|(_, c)| c)
        .sum();
    assert!(
        inlined * 2 > total,
        "inline frame missing or small: {folded:?}"
    );
}

#[test]
fn dlopened_library_is_symbolized() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("dlopen");
    let data = dir.join("dl.data");
    record_work(
        &data,
        &["dlopen", workloads().dlwork.to_str().unwrap(), "1"],
    );
    let top = report(&[
        "-i",
        data.to_str().unwrap(),
        "--sort",
        "dso,symbol",
        "--no-children",
    ]);
    let row = top
        .lines()
        .find(|l| l.contains("dl_spin"))
        .unwrap_or_else(|| panic!("dl_spin missing:\n{top}"));
    assert!(
        row.contains("libdlwork.so"),
        "dl_spin not attributed to libdlwork.so: {row}"
    );
    let shares = symbol_shares(&data);
    assert!(share_of(&shares, "dl_spin") > 80.0, "{shares:?}");
}

#[test]
fn forked_and_execed_child_is_profiled() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("fork");
    let data = dir.join("fork.data");
    record_work(&data, &["fork", "1"]);
    let shares = symbol_shares(&data);
    assert!(
        share_of(&shares, "child_burn") > 80.0,
        "child not profiled: {shares:?}"
    );
}

#[test]
fn attach_to_running_process_with_pid() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("attach");
    let data = dir.join("attach.data");
    // burn_b runs only in a thread the process starts after we attached.
    let (mut child, pid) = spawn_workload(&workloads().work, "threads", "1.5");
    let run = rprof(&["record", "-g", "-p", &pid, "-o", data.to_str().unwrap()]);
    let _ = child.wait();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let shares = symbol_shares(&data);
    assert!(
        share_of(&shares, "burn_a") > 25.0,
        "main thread missing: {shares:?}"
    );
    assert!(
        share_of(&shares, "burn_b") > 25.0,
        "thread created after attaching missing: {shares:?}"
    );
}

#[test]
fn linux_perf_opens_the_file_and_agrees_on_top_functions() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("perfcompat");
    let data = dir.join("compat.data");
    record_work(&data, &["split", "1"]);
    let perf = perf_succeeded(
        run_linux_perf([
            "report",
            "-i",
            data.to_str().unwrap(),
            "--stdio",
            "--no-children",
            "--sort",
            "symbol",
        ]),
        "perf report",
    );
    let perf_rows = perf_report_rows(&perf);
    let ours = symbol_shares(&data);
    // The two top functions, in the same order and within a point of each other.
    for rank in 0..2 {
        assert_eq!(
            perf_rows[rank].0, ours[rank].0,
            "perf and rprof disagree at rank {rank}"
        );
        assert!(
            (perf_rows[rank].1 - ours[rank].1).abs() < 1.0,
            "{perf_rows:?} vs {ours:?}"
        );
    }
    let script = perf_succeeded(
        run_linux_perf(["script", "-i", data.to_str().unwrap()]),
        "perf script",
    );
    assert!(script.contains("burn_a"), "perf script shows no burn_a");
}

#[test]
fn report_reads_files_written_by_linux_perf() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("perfinput");
    let data = dir.join("perf.data");
    let stdout = perf_succeeded(
        run_linux_perf([
            "record",
            "-q",
            "-g",
            "-o",
            data.to_str().unwrap(),
            "--",
            workloads().work.to_str().unwrap(),
            "split",
            "2",
        ]),
        "perf record",
    );
    let measured = split_share(&symbol_shares(&data));
    let truth = truth_split(&stdout);
    assert!(
        (measured - truth).abs() <= 2.0,
        "rprof on perf's file: {measured:.2}%, truth {truth:.2}%"
    );
}

#[test]
fn report_names_functions_after_the_binary_is_deleted() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("deleted");
    let copy = dir.join("work-copy");
    std::fs::copy(&workloads().work, &copy).unwrap();
    let data = dir.join("deleted.data");
    let run = rprof(&[
        "record",
        "-g",
        "-o",
        data.to_str().unwrap(),
        "--",
        copy.to_str().unwrap(),
        "split",
        "1",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    std::fs::remove_file(&copy).unwrap();
    let shares = symbol_shares(&data);
    assert!(
        share_of(&shares, "burn_a") > 50.0,
        "names lost after delete: {shares:?}"
    );
}

#[test]
fn recording_is_private_and_keeps_the_previous_file() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("mode");
    let data = dir.join("x.data");
    for _ in 0..2 {
        let run = rprof(&["record", "-o", data.to_str().unwrap(), "--", "true"]);
        assert!(run.status.success(), "{}", text(&run.stderr));
    }
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        dir.join("x.data.old").exists(),
        "previous recording not kept as .old"
    );
}

#[test]
fn symlink_at_output_path_is_refused_not_followed() {
    require_perf!();
    let dir = temp_dir("symlink");
    let victim = dir.join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let link = dir.join("out.data");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let run = rprof(&["record", "-o", link.to_str().unwrap(), "--", "true"]);
    assert!(!run.status.success());
    assert!(
        text(&run.stderr).contains("symbolic link"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
}

#[test]
fn summary_line_reports_samples_lost_size_and_overhead() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("summary");
    let data = dir.join("s.data");
    let run = record_work_with(&[], &data, &["split", "0.5"]);
    let err = text(&run.stderr);
    assert!(run.status.success(), "{err}");
    // `[ rprof record: N samples, L lost (x%), D s, SIZE written to F; rprof CPU ...`
    let number_before = |text: &str, word: &str| -> u64 {
        let at = text
            .find(word)
            .unwrap_or_else(|| panic!("no '{word}' in {text}"));
        text[..at]
            .split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .expect("a number")
    };
    let samples = number_before(&err, " samples, ");
    assert_eq!(number_before(&err, " lost ("), 0, "{err}");
    assert!(
        err.contains("rprof CPU") && err.contains("% of the recording"),
        "{err}"
    );
    assert!(
        err.contains(&format!("written to {}", data.display())),
        "{err}"
    );
    // The summary's count is the file's count.
    let top = report(&["-i", data.to_str().unwrap()]);
    assert_eq!(
        number_before(&top, " samples, total weight"),
        samples,
        "{top}"
    );
    // 0.5 s at 4000 Hz on one busy CPU: at most about 2000 samples (fewer
    // when other tests compete for the CPU).
    assert!(
        (200..=2600).contains(&samples),
        "{samples} samples in 0.5 s at 4000 Hz"
    );
}

#[test]
fn launched_command_exit_code_is_passed_on() {
    require_perf!();
    let dir = temp_dir("exitcode");
    let run = rprof(&[
        "record",
        "-o",
        dir.join("f.data").to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(run.status.code(), Some(3));
}

/// Records `work split 30`, sends `signal` (`INT`, `HUP`, ...) `presses`
/// times 20 ms apart, and returns rprof's exit status and stderr.
fn interrupt_recording(
    data: &Path,
    signal: &str,
    presses: usize,
) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(rprof_bin())
        .args(["record", "-g", "-o", data.to_str().unwrap(), "--"])
        .arg(&workloads().work)
        .args(["split", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..presses {
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "record did not stop on SIG{signal}"
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let left = Command::new("pgrep")
        .args(["-f", "work split 30"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "the profiled command outlived the recording"
    );
    (status, stderr)
}

#[test]
fn ctrl_c_finishes_a_valid_file() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("sigint");
    let data = dir.join("int.data");
    let (status, stderr) = interrupt_recording(&data, "INT", 1);
    assert!(status.success(), "record after Ctrl-C: {status:?} {stderr}");
    assert!(
        stderr.contains("samples"),
        "no summary after Ctrl-C: {stderr}"
    );
    let shares = symbol_shares(&data);
    assert!(share_of(&shares, "burn_a") > 40.0, "{shares:?}");
    let file = rprof::perfdata::PerfFile::open(&data).unwrap();
    assert!(
        file.feature(rprof::perfdata::format::feature::RPROF_SYMBOLS)
            .is_some(),
        "symbols not embedded"
    );
}

#[test]
fn sighup_finishes_a_valid_file_like_sigterm() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("sighup");
    let data = dir.join("hup.data");
    let (status, stderr) = interrupt_recording(&data, "HUP", 1);
    assert!(status.success(), "record after SIGHUP: {status:?} {stderr}");
    let file = rprof::perfdata::PerfFile::open(&data).unwrap();
    assert!(
        file.feature(rprof::perfdata::format::feature::RPROF_SYMBOLS)
            .is_some(),
        "symbols not embedded after SIGHUP"
    );
    assert!(file.warnings().is_empty(), "{:?}", file.warnings());
    let shares = symbol_shares(&data);
    assert!(share_of(&shares, "burn_a") > 40.0, "{shares:?}");
}

/// Whether `pid` is gone (or a zombie waiting for init to reap it).
fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn sigkill_loses_at_most_a_quarter_second_and_the_report_says_unfinished() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("sigkill");
    let data = dir.join("kill.data");
    let mut rprof_run = Command::new(rprof_bin())
        .args([
            "record",
            "-F",
            "999",
            "-g",
            "-o",
            data.to_str().unwrap(),
            "--",
        ])
        .arg(&workloads().work)
        .args(["spin", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The workload prints its pid as it starts, right after the exec that
    // enabled sampling.
    let mut line = String::new();
    BufReader::new(rprof_run.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started = std::time::Instant::now();
    let pid = line
        .trim()
        .strip_prefix("ready ")
        .expect("ready line")
        .to_string();
    std::thread::sleep(Duration::from_millis(1500));
    let killed_after = started.elapsed();
    rprof_run.kill().unwrap(); // SIGKILL
    rprof_run.wait().unwrap();

    // The launched command dies with rprof (PR_SET_PDEATHSIG).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !process_gone(&pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(process_gone(&pid), "the workload outlived the killed rprof");

    let run = rprof(&["report", "-i", data.to_str().unwrap(), "--sort", "symbol"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let all = text(&run.stdout) + &text(&run.stderr);
    assert!(
        all.contains("not finished cleanly (killed?)"),
        "no unfinished warning:
{all}"
    );
    assert!(all.contains("burn_a"), "{all}");

    // Sample times are perf_clock: compare their span with the wall time
    // from the workload's start to the kill; the difference is what the
    // kill lost (rings not drained, buffer not flushed).
    let file = rprof::perfdata::PerfFile::open(&data).unwrap();
    let times: Vec<u64> = file
        .records()
        .filter_map(|r| match r {
            rprof::perfdata::Record::Sample(s) if s.pid.to_string() == pid => Some(s.time),
            _ => None,
        })
        .collect();
    let (first, last) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    let recorded = Duration::from_nanos(last - first);
    let lost = killed_after.saturating_sub(recorded);
    // At most ~200 ms by design (100 ms drains and flushes); the rest is
    // margin for a loaded machine.
    assert!(
        lost < Duration::from_millis(400),
        "{lost:?} of samples lost to SIGKILL ({} samples over {recorded:?}, killed after {killed_after:?})",
        times.len()
    );
}

#[test]
fn second_ctrl_c_still_leaves_a_readable_file() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("sigint2");
    let data = dir.join("int2.data");
    // The second press may land while symbols are embedded, which it cuts
    // short: the samples are on disk by then.
    let (status, stderr) = interrupt_recording(&data, "INT", 2);
    assert!(
        status.success() || status.code() == Some(130),
        "{status:?} {stderr}"
    );
    let shares = symbol_shares(&data);
    assert!(share_of(&shares, "burn_a") > 40.0, "{shares:?}");
}

#[test]
fn report_into_closed_pipe_exits_quietly() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("pipe");
    let data = dir.join("p.data");
    record_work(&data, &["split", "0.5"]);
    let mut child = Command::new(rprof_bin())
        .args(["report", "-i", data.to_str().unwrap(), "--format", "folded"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "status {:?}", out.status);
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
}

#[test]
fn truncated_recording_reports_what_it_holds_with_a_warning() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("truncated");
    let data = dir.join("t.data");
    record_work(&data, &["split", "1"]);
    let bytes = std::fs::read(&data).unwrap();
    let cut = dir.join("cut.data");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let run = rprof(&[
        "report",
        "-i",
        cut.to_str().unwrap(),
        "--sort",
        "symbol",
        "--no-children",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let out = text(&run.stdout);
    assert!(
        out.to_lowercase().contains("truncated"),
        "no truncation warning:\n{out}"
    );
    assert!(share_of(&self_shares(&out), "burn_a") > 40.0, "{out}");
}

#[test]
fn bad_report_inputs_get_clear_errors() {
    let dir = temp_dir("badinput");
    let empty = dir.join("empty.data");
    std::fs::write(&empty, b"").unwrap();
    let foreign = dir.join("foreign.data");
    std::fs::write(
        &foreign,
        b"\x7fELF this is not a recording at all, just some bytes",
    )
    .unwrap();
    for (path, expect) in [
        (&empty, "empty"),
        (&foreign, "not a perf.data file"),
        (&dir.join("missing"), "cannot open"),
    ] {
        let run = rprof(&["report", "-i", path.to_str().unwrap()]);
        assert!(!run.status.success(), "{} accepted", path.display());
        let err = text(&run.stderr);
        assert!(err.contains(expect), "for {}: {err}", path.display());
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn bad_record_inputs_get_clear_errors() {
    require_perf!();
    let dir = temp_dir("badrecord");
    let out = dir.join("r.data");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["record", "-F", "0", "-o", out, "--", "true"],
            "at least 1 Hz",
        ),
        (&["record", "-p", "999999999", "-o", out], "no such process"),
        (
            &["record", "-o", out, "--", "/nonexistent/program"],
            "/nonexistent/program",
        ),
        (
            &["record", "-o", "/proc/no/such/dir/x.data", "--", "true"],
            "cannot create",
        ),
        (
            &["record", "-o", "/dev/null", "--", "true"],
            "/dev/null is not a regular file",
        ),
        (
            &["record", "-o", dir.to_str().unwrap(), "--", "true"],
            "is a directory; give a file path for the recording, e.g. -o ",
        ),
        (
            &[
                "record",
                "-c",
                "18446744073709551615",
                "-o",
                out,
                "--",
                "true",
            ],
            "-c 18446744073709551615: the period must be below 2^63",
        ),
        (
            &[
                "record",
                "-c",
                "9223372036854775808",
                "-o",
                out,
                "--",
                "true",
            ],
            "-c 9223372036854775808: the period must be below 2^63",
        ),
    ];
    for (args, expect) in cases {
        let run = rprof(args);
        let err = text(&run.stderr);
        assert!(!run.status.success(), "{args:?} succeeded");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains("File exists"), "{args:?}: {err}");
    }
}

#[test]
fn too_many_open_files_suggests_a_higher_limit() {
    require_perf!();
    let dir = temp_dir("emfile");
    let out = dir.join("f.data");
    // Raise the limit until the events are what runs out of descriptors.
    for limit in 3..=32u64 {
        let run = Command::new("prlimit")
            .arg(format!("--nofile={limit}:{limit}"))
            .arg(rprof_bin())
            .args(["record", "-o", out.to_str().unwrap(), "--", "true"])
            .output()
            .expect("prlimit (util-linux)");
        let err = text(&run.stderr);
        if !err.contains("(EMFILE)") {
            continue;
        }
        let suggested: u64 = err
            .split("`ulimit -n ")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no concrete ulimit -n suggestion: {err}"));
        assert!(
            suggested > limit,
            "suggests {suggested} at limit {limit}: {err}"
        );
        assert!(err.contains("file descriptors"), "{err}");
        assert!(err.contains(&format!("the limit is {limit}")), "{err}");
        return;
    }
    panic!("no limit between 3 and 32 ran out of descriptors at the events");
}

#[test]
fn attaching_to_another_users_process_names_ptrace_not_paranoid() {
    require_perf!();
    let mut victim = Command::new("sleep").arg("30").spawn().unwrap();
    let nobody = NobodyRprof::new("ptrace");
    let pid = victim.id().to_string();
    let run = nobody.run(
        &[],
        &[
            "record",
            "-p",
            &pid,
            "--duration",
            "0.2",
            "-o",
            &nobody.path("p.data"),
        ],
    );
    let _ = victim.kill();
    let _ = victim.wait();
    let err = text(&run.stderr);
    assert!(
        !run.status.success(),
        "nobody attached to root's process: {err}"
    );
    assert!(
        err.contains(&format!(
            "cannot attach to PID {pid}: it belongs to another user"
        )) && err.contains("ptrace"),
        "{err}"
    );
    assert!(!err.contains("perf_event_paranoid"), "{err}");
}

#[test]
fn ring_is_shrunk_to_the_locked_memory_limit_with_a_warning() {
    require_perf!();
    // Above 2 nobody may not record at all; at -1 the kernel enforces no
    // locked-memory limit on perf rings.
    if !(0..=2).contains(&rprof::sys::perf_event_paranoid().unwrap_or(2)) {
        return;
    }
    let page_kib = rprof::sys::page_size() as u64 / 1024;
    let Some(mlock_kb) = rprof::sys::perf_event_mlock_kb() else {
        return;
    };
    // One ring larger than the per-CPU allowance: with `ulimit -l` 0 the
    // kernel refuses it for a non-root user.
    let allowance = mlock_kb / page_kib;
    let request = (allowance + 1).next_power_of_two();
    if allowance < 9 || request > 1 << 20 {
        return; // nothing rprof would shrink to, or a limit no ring reaches
    }
    let nobody = NobodyRprof::new("mlock");
    let data = nobody.path("m.data");
    let run = nobody.run(
        &["prlimit", "--memlock=0:0"],
        &[
            "record",
            "-m",
            &request.to_string(),
            "-o",
            &data,
            "--",
            "sleep",
            "0.2",
        ],
    );
    let err = text(&run.stderr);
    assert!(run.status.success(), "-m {request} as nobody: {err}");
    assert!(
        err.contains(&format!("ring buffers shrunk from {request} to ")),
        "{err}"
    );
    assert!(
        err.contains("sysctl kernel.perf_event_mlock_kb=") && err.contains("ulimit -l"),
        "{err}"
    );
    let used: u64 = err
        .split(&format!("shrunk from {request} to "))
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(used < request && used < allowance, "{err}");
    let run = rprof(&["report", "-i", &data]);
    assert!(run.status.success(), "{}", text(&run.stderr));
}

#[test]
fn report_reads_a_recording_from_a_pipe() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("stdin");
    let data = dir.join("s.data");
    record_work(&data, &["split", "0.5"]);
    let mut child = Command::new(rprof_bin())
        .args([
            "report",
            "-i",
            "/dev/stdin",
            "--sort",
            "symbol",
            "--no-children",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = std::fs::read(&data).unwrap();
    let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("empty"),
        "{}",
        text(&out.stderr)
    );
    assert!(share_of(&self_shares(&stdout), "burn_a") > 40.0, "{stdout}");
}

#[test]
fn command_arguments_need_not_be_utf8() {
    use std::os::unix::ffi::OsStrExt;
    require_perf!();
    let dir = temp_dir("nonutf8");
    let name = std::ffi::OsStr::from_bytes(b"input-\xff\xfe.txt");
    let input = dir.join(name);
    std::fs::write(&input, b"exact bytes\n").unwrap();
    let run = Command::new(rprof_bin())
        .args([
            "record",
            "-o",
            dir.join("u.data").to_str().unwrap(),
            "--",
            "cat",
        ])
        .arg(&input)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(run.stdout, b"exact bytes\n");
}

#[test]
fn absurd_frequency_is_clamped_with_a_warning() {
    require_perf!();
    let dir = temp_dir("clamp");
    let run = rprof(&[
        "record",
        "-F",
        "10000000",
        "-o",
        dir.join("c.data").to_str().unwrap(),
        "--",
        "true",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("perf_event_max_sample_rate"),
        "{}",
        text(&run.stderr)
    );
}

#[test]
fn unprivileged_system_wide_recording_explains_paranoid() {
    require_perf!();
    if rprof::sys::perf_event_paranoid().unwrap_or(2) < 1 {
        return; // -a is allowed to everyone here; nothing to explain.
    }
    // Refused before any event opens, but -a all the same if that broke.
    let _kernel = KernelWide::system_wide();
    let nobody = NobodyRprof::new("nobody");
    let run = nobody.run(
        &[],
        &[
            "record",
            "-a",
            "--duration",
            "0.2",
            "-o",
            &nobody.path("n.data"),
        ],
    );
    let err = text(&run.stderr);
    assert!(!run.status.success(), "nobody recorded system-wide: {err}");
    assert!(
        err.contains("perf_event_paranoid") && err.contains("CAP_PERFMON"),
        "{err}"
    );
}

#[test]
fn flame_graph_svg_is_drawn_from_the_folded_stacks() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("svg");
    let data = dir.join("svg.data");
    record_work(&data, &["split", "0.5"]);
    let svg = dir.join("flame.svg");
    report(&[
        "-i",
        data.to_str().unwrap(),
        "--format",
        "svg",
        "-o",
        svg.to_str().unwrap(),
    ]);
    let body = std::fs::read_to_string(&svg).unwrap();
    assert!(
        body.contains("<svg") && body.contains("burn_a"),
        "flame graph lacks burn_a"
    );
}

#[test]
fn man_pages_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let bless = std::env::var_os("RPROF_BLESS").is_some();
    for (name, page) in rprof::cli::man::render_all().unwrap() {
        let path = dir.join(&name);
        if bless {
            std::fs::write(&path, &page).unwrap();
            continue;
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == page,
            "man/{name} is stale: run `RPROF_BLESS=1 cargo test man_pages` and commit man/"
        );
    }
}

#[test]
fn recording_ends_when_the_attached_process_exits() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("pidexit");
    let data = dir.join("exit.data");
    let (mut child, pid) = spawn_workload(&workloads().work, "spin", "1");
    let started = std::time::Instant::now();
    let run = rprof(&[
        "record",
        "-g",
        "-p",
        &pid,
        "--duration",
        "20",
        "-o",
        data.to_str().unwrap(),
    ]);
    let _ = child.wait();
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "record kept going after the process exited"
    );
    let shares = symbol_shares(&data);
    assert!(share_of(&shares, "burn_a") > 40.0, "{shares:?}");
}

#[test]
fn thread_mode_records_only_the_given_thread() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("tid");
    let data = dir.join("tid.data");
    // The main thread's tid is the pid; its sibling runs burn_b.
    let (mut child, tid) = spawn_workload(&workloads().work, "threads", "1.5");
    let run = rprof(&[
        "record",
        "-g",
        "-t",
        &tid,
        "-o",
        data.to_str().unwrap(),
        "--",
        "sleep",
        "1",
    ]);
    let _ = child.wait();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let shares = symbol_shares(&data);
    assert!(share_of(&shares, "burn_a") > 80.0, "{shares:?}");
    assert!(
        share_of(&shares, "burn_b") < 1.0,
        "a sibling thread was recorded: {shares:?}"
    );
}

#[test]
fn system_wide_recording_for_a_commands_lifetime_sees_the_workload() {
    require_perf!();
    let _guard = serial();
    let _kernel = KernelWide::system_wide();
    let dir = temp_dir("syswide");
    let data = dir.join("all.data");
    let run = record_work_with(&["-a", "-g"], &data, &["split", "1"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let top = report(&[
        "-i",
        data.to_str().unwrap(),
        "--sort",
        "comm,symbol",
        "--no-children",
    ]);
    let row = top
        .lines()
        .find(|l| l.contains(" burn_a"))
        .unwrap_or_else(|| panic!("no burn_a:\n{top}"));
    assert!(row.contains("work"), "{row}");
}

#[test]
fn full_disk_is_reported_and_the_command_is_not_left_running() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("fulldisk");
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&dir)
        .status();
    if !mount.map(|s| s.success()).unwrap_or(false) {
        assert!(
            std::env::var_os("RPROF_REQUIRE_PERF").is_none(),
            "cannot mount a small tmpfs for the full-disk test"
        );
        return;
    }
    let data = dir.join("full.data");
    // A uniquely named copy, to check afterwards that it is not left running.
    let copy = temp_dir("fulldisk-bin").join("work-fulldisk");
    std::fs::copy(&workloads().work, &copy).unwrap();
    let run = rprof(&[
        "record",
        "-g",
        "-o",
        data.to_str().unwrap(),
        "--",
        copy.to_str().unwrap(),
        "split",
        "2",
    ]);
    let report = rprof(&["report", "-i", data.to_str().unwrap()]);
    let _ = Command::new("umount").arg(&dir).status();
    let err = text(&run.stderr);
    assert!(!run.status.success(), "a full disk went unnoticed: {err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("stay readable"), "{err}");
    // The file holds what fit, and the report says why it ends there.
    let all = text(&report.stdout) + &text(&report.stderr);
    assert!(report.status.success(), "{all}");
    assert!(
        all.contains("stopped early because the disk was full"),
        "{all}"
    );
    assert!(!all.contains("killed?"), "{all}");
    let left = Command::new("pgrep")
        .args(["-f", "work-fulldisk"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "the profiled command outlived the failed recording"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn jit_frames_are_named_from_the_perf_map() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("jit");
    let data = dir.join("jit.data");
    let stdout = record_work(&data, &["jit", "1"]);
    let folded = folded(&report(&[
        "-i",
        data.to_str().unwrap(),
        "--format",
        "folded",
    ]));
    if let Some(map) = stdout.lines().find_map(|l| l.strip_prefix("jit map ")) {
        let _ = std::fs::remove_file(map.trim());
    }
    let total: u64 = folded.iter().map(|(_, c)| c).sum();
    let jit: u64 = folded
        .iter()
        .filter(|(s, _)| s.contains("jit_spin_[j]"))
        .map(|(_, c)| c)
        .sum();
    assert!(
        jit * 10 > total * 8,
        "JIT frames missing or small ({jit} of {total}): {folded:?}"
    );
}

#[test]
fn lost_samples_are_counted_and_recorded_in_the_file() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("lost");
    let data = dir.join("lost.data");
    // A one-page ring at 100 kHz overflows between drains.
    let run = record_work_with(&["-m", "1", "-c", "10000", "-g"], &data, &["split", "1"]);
    let err = text(&run.stderr);
    assert!(run.status.success(), "{err}");
    let lost_in_summary: u64 = err
        .split(" lost (")
        .next()
        .and_then(|head| head.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lost count in: {err}"));
    assert!(
        lost_in_summary > 0,
        "a one-page ring at 100 kHz lost nothing: {err}"
    );
    assert!(
        err.contains("samples were lost"),
        "no lost-samples warning: {err}"
    );
    let top = report(&["-i", data.to_str().unwrap()]);
    assert!(
        top.contains(&format!("# Lost: {lost_in_summary} samples")),
        "report disagrees with the summary ({lost_in_summary}):\n{top}"
    );
}
