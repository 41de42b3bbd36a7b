//! Off-CPU and wall-clock profiles (`record --off-cpu`, `--wall`) against
//! the ground truth of tests/workloads/offcpu.c, which blocks in
//! sleep_phase about 70% of the time and computes in compute_phase for the
//! rest, and against Linux perf's sched:sched_switch stacks.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::util::*;

/// The off-CPU workload with frame pointers, and without (DWARF mode).
struct OffCpuWorkloads {
    fp: PathBuf,
    no_fp: PathBuf,
}

fn offcpu_workloads() -> &'static OffCpuWorkloads {
    static BUILT: OnceLock<OffCpuWorkloads> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workloads-offcpu");
        std::fs::create_dir_all(&dir).expect("workload dir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/offcpu.c");
        let fp = dir.join("offcpu");
        let no_fp = dir.join("offcpu-nofp");
        cc(&[&src], &fp, &["-pthread"]);
        cc_with(NO_FP_FLAGS, &[&src], &no_fp, &["-pthread"]);
        OffCpuWorkloads { fp, no_fp }
    })
}

/// `rprof record ARGS -o OUT` that must succeed; the command's stdout.
fn record(out: &Path, args: &[&str]) -> String {
    let mut argv = vec!["record", "-o", out.to_str().unwrap()];
    argv.extend_from_slice(args);
    let output = rprof(&argv);
    assert!(
        output.status.success(),
        "rprof {argv:?} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// `rprof report -i DATA ARGS` that must succeed: (stdout, stderr).
fn report(data: &Path, args: &[&str]) -> (String, String) {
    let mut argv = vec!["report", "-i", data.to_str().unwrap()];
    argv.extend_from_slice(args);
    let output = rprof(&argv);
    assert!(
        output.status.success(),
        "rprof {argv:?} failed: {}",
        text(&output.stderr)
    );
    (text(&output.stdout), text(&output.stderr))
}

/// The workload's truth: (compute_phase ns, sleep_phase ns).
fn truth_of(stdout: &str) -> (f64, f64) {
    let truth = truth(stdout);
    let get = |name: &str| {
        truth
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {name} in the truth line: {stdout}"))
    };
    (get("compute_phase"), get("sleep_phase"))
}

/// Total (inclusive) share per symbol from `report --sort symbol --children`.
fn total_shares(top: &str) -> Vec<(String, f64)> {
    top.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let total: f64 = cols.first()?.trim_end_matches('%').parse().ok()?;
            Some((cols.get(4..)?.join(" "), total))
        })
        .collect()
}

/// Records `--wall` of the split workload and checks each function's share
/// of wall time against the workload's own within 5 points.
fn assert_wall_matches_truth(name: &str, workload: &Path, call_graph: &[&str]) {
    let dir = temp_dir(name);
    let data = dir.join("wall.data");
    let mut args = vec!["--wall"];
    args.extend_from_slice(call_graph);
    args.extend_from_slice(&["--", workload.to_str().unwrap(), "split", "3"]);
    let stdout = record(&data, &args);
    let (compute, sleep) = truth_of(&stdout);
    let (top, _) = report(&data, &["--sort", "symbol", "--children", "-n", "0"]);
    assert!(
        top.contains("# Event: wall (weight unit: ns)"),
        "one event in one unit: {top}"
    );
    assert!(top.contains("# Wall: on-CPU "), "{top}");
    let shares = total_shares(&top);
    let share = |f: &str| {
        shares
            .iter()
            .find(|(n, _)| n == f)
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("no {f} row:\n{top}"))
    };
    let (measured_compute, measured_sleep) = (share("compute_phase"), share("sleep_phase"));
    let whole = measured_compute + measured_sleep;
    assert!(whole > 90.0, "compute and sleep hold too little:\n{top}");
    let truth_compute = 100.0 * compute / (compute + sleep);
    let truth_sleep = 100.0 - truth_compute;
    for (function, measured, truth) in [
        (
            "compute_phase",
            100.0 * measured_compute / whole,
            truth_compute,
        ),
        ("sleep_phase", 100.0 * measured_sleep / whole, truth_sleep),
    ] {
        eprintln!("{name}: {function} {measured:.1}% of wall time, truth {truth:.1}%");
        assert!(
            (measured - truth).abs() <= 5.0,
            "{function}: profile {measured:.1}%, truth {truth:.1}%\n{top}"
        );
    }
}

#[test]
fn wall_profile_matches_the_workloads_split_with_frame_pointers() {
    require_perf!();
    let _guard = serial();
    assert_wall_matches_truth("wall-fp", &offcpu_workloads().fp, &["-g"]);
}

#[test]
fn wall_profile_matches_the_workloads_split_with_dwarf_unwinding() {
    require_perf!();
    let _guard = serial();
    assert_wall_matches_truth(
        "wall-dwarf",
        &offcpu_workloads().no_fp,
        &["--call-graph", "dwarf"],
    );
}

/// Folded off-CPU weight: (in stacks through sleep_phase down to the
/// kernel's schedule, in all stacks) of the lines whose stack starts
/// with `comm`.
fn sleeping_weight(folded_text: &str, comm: &str) -> (u64, u64) {
    let lines = folded(folded_text);
    let ours = lines.iter().filter(|(stack, _)| stack.starts_with(comm));
    let all: u64 = ours.clone().map(|(_, w)| w).sum();
    let sleeping: u64 = ours
        .filter(|(stack, _)| {
            let user = stack.find(";sleep_phase;");
            let kernel = stack.find(";schedule_[k]");
            matches!((user, kernel), (Some(u), Some(k)) if u < k)
        })
        .map(|(_, w)| w)
        .sum();
    (sleeping, all)
}

/// Checks that ~all of the off-CPU weight is sleep_phase's blocked time,
/// with its user and kernel frames, and that the total is near `truth_ns`.
fn assert_blocked_in_sleep_phase(folded_text: &str, comm: &str, truth_ns: f64, tolerance: f64) {
    let (sleeping, all) = sleeping_weight(folded_text, comm);
    assert!(all > 0, "no off-CPU weight for {comm}:\n{folded_text}");
    let share = 100.0 * sleeping as f64 / all as f64;
    assert!(
        share >= 95.0,
        "sleep_phase ... schedule holds {share:.1}% of the off-CPU weight:\n{folded_text}"
    );
    let ratio = all as f64 / truth_ns;
    eprintln!("off-CPU total {all} ns vs blocked truth {truth_ns:.0} ns ({ratio:.3}x)");
    assert!(
        (ratio - 1.0).abs() <= tolerance,
        "off-CPU total {all} ns, truth {truth_ns:.0} ns\n{folded_text}"
    );
}

#[test]
fn off_cpu_profile_of_a_launched_command_puts_its_blocked_time_in_the_sleeping_function() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("offcpu-launch");
    let data = dir.join("off.data");
    let work = offcpu_workloads().fp.to_str().unwrap();
    let stdout = record(&data, &["--off-cpu", "-g", "--", work, "split", "2"]);
    let (_, sleep) = truth_of(&stdout);
    let (folded_text, stderr) = report(&data, &["--format", "folded"]);
    // Sampling adapts N (1 in N switches) at the default rate, but every
    // switch is timed: the thread's total is measured.
    assert_blocked_in_sleep_phase(&folded_text, "offcpu", sleep, 0.1);
    assert!(
        stderr.contains("counts are off-cpu/nanoseconds"),
        "folded says its unit: {stderr}"
    );
    let (top, _) = report(&data, &["--sort", "symbol"]);
    for expected in [
        "# Event: off-cpu (weight unit: off-cpu/nanoseconds)",
        "# Off-CPU: stacks of switches sampled at up to 1000/s per thread",
        "each thread's off-CPU total is measured",
        "preempted ones left out",
        "Self off-CPU",
    ] {
        assert!(top.contains(expected), "{expected}:\n{top}");
    }
    let (svg, _) = report(&data, &["--format", "svg"]);
    assert!(svg.contains("us off-CPU"), "svg tooltips name the unit");
}

#[test]
fn off_cpu_every_switch_with_dwarf_unwinding_matches_the_blocked_time() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("offcpu-dwarf");
    let data = dir.join("off.data");
    let work = offcpu_workloads().no_fp.to_str().unwrap();
    let stdout = record(
        &data,
        &[
            "--off-cpu",
            "--off-cpu-every",
            "1",
            "--call-graph",
            "dwarf",
            "--",
            work,
            "split",
            "2",
        ],
    );
    let (_, sleep) = truth_of(&stdout);
    let (folded_text, _) = report(&data, &["--format", "folded"]);
    assert!(
        folded_text.contains(";sleep_phase;block_once;"),
        "{folded_text}"
    );
    assert_blocked_in_sleep_phase(&folded_text, "offcpu-nofp", sleep, 0.1);
    let (top, _) = report(&data, &["-n", "1"]);
    assert!(
        top.contains("# Off-CPU: every context switch sampled"),
        "{top}"
    );
}

#[test]
fn off_cpu_attaches_to_a_running_process() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("offcpu-pid");
    let data = dir.join("off.data");
    let (child, pid) = spawn_workload(&offcpu_workloads().fp, "spin", "3");
    record(
        &data,
        &[
            "--off-cpu",
            "--off-cpu-every",
            "1",
            "-g",
            "-p",
            &pid,
            "--",
            "sleep",
            "1.5",
        ],
    );
    let output = child.wait_with_output().expect("workload ends");
    let (_, sleep) = truth_of(&text(&output.stdout));
    let (folded_text, _) = report(&data, &["--format", "folded"]);
    // 1.5 s of the 3 s run, about 70% of it blocked.
    assert_blocked_in_sleep_phase(&folded_text, "offcpu", sleep / 2.0, 0.25);
}

#[test]
fn off_cpu_system_wide_finds_the_sleeping_stack() {
    require_perf!();
    let _guard = serial();
    let _kernel = KernelWide::system_wide();
    let dir = temp_dir("offcpu-all");
    let data = dir.join("off.data");
    let work = offcpu_workloads().fp.to_str().unwrap();
    let stdout = record(
        &data,
        &[
            "--off-cpu",
            "--off-cpu-every",
            "1",
            "-g",
            "-a",
            "--",
            work,
            "split",
            "1.5",
        ],
    );
    let (_, sleep) = truth_of(&stdout);
    let (folded_text, _) = report(&data, &["--format", "folded", "--comm", "offcpu"]);
    assert_blocked_in_sleep_phase(&folded_text, "offcpu", sleep, 0.15);
}

/// The hard case for sampled switches: system-wide at the default rate
/// while another process switches ~100,000 times a second, so each CPU's
/// period (1 in N) is set by that process and the sleeper is sampled
/// rarely. Its blocked total must still be its own, not N times a few
/// intervals.
#[test]
fn off_cpu_system_wide_at_the_default_rate_keeps_a_rarely_sampled_threads_total() {
    require_perf!();
    let _guard = serial();
    let _kernel = KernelWide::system_wide();
    let dir = temp_dir("offcpu-all-busy");
    let data = dir.join("off.data");
    let workloads = offcpu_workloads();
    // A copy, so its threads have a comm of their own.
    let switcher = dir.join("switcher");
    std::fs::copy(&workloads.fp, &switcher).expect("copy the workload");
    let (mut pingpong, _) = spawn_workload(&switcher, "pingpong", "100000000");
    let stdout = record(
        &data,
        &[
            "--off-cpu",
            "-g",
            "-a",
            "--",
            workloads.fp.to_str().unwrap(),
            "split",
            "2",
        ],
    );
    let _ = pingpong.kill();
    let _ = pingpong.wait();
    let (_, sleep) = truth_of(&stdout);
    let (top, _) = report(&data, &["-n", "1"]);
    let periods = top
        .lines()
        .find(|l| l.contains("stacks of switches sampled"))
        .unwrap_or_else(|| panic!("no sampling line:\n{top}"));
    assert!(
        !periods.contains("(1 in 1 switches)"),
        "the busy CPUs were sampled 1 in N>1: {periods}"
    );
    let (folded_text, _) = report(&data, &["--format", "folded", "--comm", "offcpu"]);
    assert_blocked_in_sleep_phase(&folded_text, "offcpu", sleep, 0.1);
}

#[test]
fn linux_perf_sched_switch_stacks_agree_and_perf_opens_rprofs_off_cpu_file() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("offcpu-perf");
    let work = offcpu_workloads().fp.to_str().unwrap();
    let perf_data = dir.join("perf.data");
    let perf_data_str = perf_data.to_str().unwrap();
    perf_succeeded(
        run_linux_perf([
            "record",
            "-q",
            "-e",
            "sched:sched_switch",
            "-g",
            "-o",
            perf_data_str,
            "--",
            work,
            "split",
            "1.5",
        ]),
        "perf record -e sched:sched_switch -g",
    );
    let script = perf_succeeded(
        run_linux_perf(["script", "-i", perf_data_str, "--comm", "offcpu"]),
        "perf script",
    );
    // perf script prints one sample per paragraph: header line, frames.
    // perf records every switch, preemptions included (prev_state=R, many
    // on a busy machine); rprof leaves those out, so compare the blocked
    // ones (S, D): the sleeping stack must lead them.
    let samples: Vec<&str> = script
        .split("\n\n")
        .filter(|s| s.contains("sched_switch"))
        .filter(|s| s.contains("prev_state=S") || s.contains("prev_state=D"))
        .collect();
    // perf's frame-pointer walk may lose sleep_phase below libc's
    // nanosleep (no frame pointer there), so the syscall names it too.
    let sleeping = samples
        .iter()
        .filter(|s| s.contains("sleep_phase") || s.contains("nanosleep"))
        .count();
    let computing = samples
        .iter()
        .filter(|s| s.contains("compute_phase"))
        .count();
    let elsewhere = samples.len() - sleeping - computing;
    assert!(
        sleeping > computing + elsewhere,
        "perf: {sleeping} sleeping, {computing} computing, {elsewhere} elsewhere"
    );

    let data = dir.join("off.data");
    record(&data, &["--off-cpu", "-g", "--", work, "split", "1.5"]);
    let (folded_text, _) = report(&data, &["--format", "folded"]);
    let (sleeping_weight, all) = sleeping_weight(&folded_text, "offcpu");
    assert!(sleeping_weight * 100 >= all * 95, "{folded_text}");
    // Linux perf opens rprof's file: the switch samples as event off-cpu.
    let perf_report = perf_succeeded(
        run_linux_perf([
            "report",
            "-i",
            data.to_str().unwrap(),
            "--stdio",
            "--no-children",
        ]),
        "perf report of rprof's off-CPU file",
    );
    assert!(perf_report.contains("of event 'off-cpu'"), "{perf_report}");
    assert!(perf_report.contains("schedule"), "{perf_report}");
}

#[test]
fn off_cpu_flags_without_off_cpu_are_refused_with_what_to_add() {
    let output = rprof(&["record", "--off-cpu-freq", "10", "--", "true"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("add --off-cpu or --wall"),
        "{}",
        text(&output.stderr)
    );
}
