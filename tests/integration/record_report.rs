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

fn truth_split(stdout: &str) -> f64 {
    let truth = truth(stdout);
    let get = |name: &str| {
        truth
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .expect("truth line")
    };
    100.0 * get("burn_a") / (get("burn_a") + get("burn_b"))
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
    let (mut child, pid) = spawn_workload("threads", "1.5");
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
    // `  74.78%  [.] burn_a  ...`: the symbol follows the [.]/[k] marker.
    let perf_rows: Vec<(String, f64)> = perf
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('%'))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let share = cols.first()?.trim_end_matches('%').parse().ok()?;
            let marker = cols
                .iter()
                .position(|c| c.starts_with('[') && c.ends_with(']'))?;
            Some((cols.get(marker + 1)?.to_string(), share))
        })
        .collect();
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

/// Records `work split 30`, sends SIGINT `presses` times 20 ms apart, and
/// returns rprof's exit status and stderr.
fn interrupt_recording(data: &Path, presses: usize) -> (std::process::ExitStatus, String) {
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
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "record did not stop on SIGINT"
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
    let (status, stderr) = interrupt_recording(&data, 1);
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
fn second_ctrl_c_still_leaves_a_readable_file() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("sigint2");
    let data = dir.join("int2.data");
    // The second press may land while symbols are embedded, which it cuts
    // short: the samples are on disk by then.
    let (status, stderr) = interrupt_recording(&data, 2);
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
    ];
    for (args, expect) in cases {
        let run = rprof(args);
        let err = text(&run.stderr);
        assert!(!run.status.success(), "{args:?} succeeded");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
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
    // `nobody` must reach the binary and the output directory: the checkout
    // may sit under a private home, so both go to a world-readable place.
    // Refused before any event opens, but -a all the same if that broke.
    let _kernel = KernelWide::system_wide();
    let dir = std::env::temp_dir().join(format!("rprof-nobody-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let binary = dir.join("rprof");
    std::fs::copy(rprof_bin(), &binary).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(&binary)
        .args([
            "record",
            "-a",
            "--duration",
            "0.2",
            "-o",
            dir.join("n.data").to_str().unwrap(),
        ])
        .output()
        .expect("setpriv (util-linux)");
    let _ = std::fs::remove_dir_all(&dir);
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

/// Starts `work MODE SECS` and returns it with its pid once it is running.
fn spawn_workload(mode: &str, secs: &str) -> (std::process::Child, String) {
    let mut child = Command::new(&workloads().work)
        .args([mode, secs])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start workload");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid = line
        .trim()
        .strip_prefix("ready ")
        .expect("ready line")
        .to_string();
    (child, pid)
}

#[test]
fn recording_ends_when_the_attached_process_exits() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("pidexit");
    let data = dir.join("exit.data");
    let (mut child, pid) = spawn_workload("spin", "1");
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
    let (mut child, tid) = spawn_workload("threads", "1.5");
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
    let _ = Command::new("umount").arg(&dir).status();
    let err = text(&run.stderr);
    assert!(!run.status.success(), "a full disk went unnoticed: {err}");
    assert!(err.contains("No space left on device"), "{err}");
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
