//! `record -e`: software counters, tracepoints with filters and raw
//! fields, several events with separate totals, hardware events on a
//! machine without a PMU, and `rprof list`; checked against workloads that
//! know their own counts, and against Linux perf where it is cheap.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::util::*;

/// Pages the fault workload touches, once each.
const PAGES: u64 = 20_000;

/// A C program that maps PAGES pages without transparent huge pages,
/// touches each once (one minor fault each), and prints the count.
fn fault_workload() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = temp_dir("events-workload");
        let source = dir.join("faults.c");
        std::fs::write(
            &source,
            format!(
                r#"#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {{
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = {PAGES};
    char *p = mmap(0, pages * page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    madvise(p, pages * page, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < pages; i++) p[i * page] = 1;
    printf("touched %zu pages\n", pages);
    return 0;
}}
"#
            ),
        )
        .unwrap();
        let bin = dir.join("faults");
        cc(&[&source], &bin, &[]);
        bin
    })
}

fn record(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, std::process::Output) {
    let data = dir.join(name);
    let mut argv = vec!["record", "-o", data.to_str().unwrap()];
    argv.extend_from_slice(args);
    let out = rprof(&argv);
    (data, out)
}

fn recorded(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let (data, out) = record(dir, name, args);
    assert!(
        out.status.success(),
        "rprof record {args:?}: {}",
        text(&out.stderr)
    );
    data
}

fn report(data: &Path, args: &[&str]) -> String {
    let mut argv = vec!["report", "-i", data.to_str().unwrap()];
    argv.extend_from_slice(args);
    let out = rprof(&argv);
    assert!(
        out.status.success(),
        "report {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `(samples, total weight)` of the section headed `# Event: NAME (...`.
fn event_totals(top: &str, name: &str) -> (u64, u64, String) {
    let header = top
        .lines()
        .find(|l| l.starts_with(&format!("# Event: {name} (")))
        .unwrap_or_else(|| panic!("no section for {name}:\n{top}"));
    let number = |after: &str| -> u64 {
        let rest = &header[header.find(after).unwrap() + after.len()..];
        rest.split_whitespace()
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap_or(0)
    };
    let unit = header
        .split("weight unit: ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap()
        .to_string();
    (number("), "), number("total weight "), unit)
}

#[test]
fn page_faults_with_period_one_count_every_touched_page_like_perf() {
    require_perf!();
    let _serial = serial();
    let dir = temp_dir("events-faults");
    let work = fault_workload();
    let data = recorded(
        &dir,
        "faults.data",
        &["-e", "page-faults", "-c", "1", "--", work.to_str().unwrap()],
    );
    let top = report(&data, &["-n", "5", "--no-children"]);
    let (samples, weight, unit) = event_totals(&top, "page-faults");
    assert_eq!(unit, "faults");
    assert_eq!(samples, weight, "period 1: one fault per sample");
    // The touched pages plus the start-up of a small C program (loader,
    // libc: a few hundred faults).
    assert!(
        (PAGES..PAGES + 1_000).contains(&samples),
        "{samples} faults for {PAGES} pages:\n{top}"
    );
    if !linux_perf_available() {
        return;
    }
    let perf_data = dir.join("perf.data");
    perf_succeeded(
        run_linux_perf([
            "record",
            "-q",
            "-e",
            "page-faults",
            "-c",
            "1",
            "-o",
            perf_data.to_str().unwrap(),
            "--",
            work.to_str().unwrap(),
        ]),
        "perf record -e page-faults",
    );
    let script = perf_succeeded(
        run_linux_perf(["script", "-i", perf_data.to_str().unwrap(), "-F", "event"]),
        "perf script",
    );
    let perf_faults = script.lines().filter(|l| l.contains("page-faults")).count() as u64;
    let diff = perf_faults.abs_diff(samples) as f64 / perf_faults as f64;
    assert!(
        diff < 0.02,
        "rprof {samples} vs perf {perf_faults} page faults ({:.1}% apart)",
        diff * 100.0
    );
}

#[test]
fn several_events_keep_separate_totals_in_their_own_units() {
    require_perf!();
    let _serial = serial();
    let dir = temp_dir("events-several");
    let work = fault_workload();
    let data = recorded(
        &dir,
        "several.data",
        &[
            "-e",
            "page-faults",
            "-e",
            "{task-clock,minor-faults}",
            "-g",
            "--",
            work.to_str().unwrap(),
        ],
    );
    let top = report(&data, &["-n", "3"]);
    let (_, faults, faults_unit) = event_totals(&top, "page-faults");
    let (_, minor, minor_unit) = event_totals(&top, "minor-faults");
    let (clock_samples, _, clock_unit) = event_totals(&top, "task-clock");
    assert_eq!(clock_unit, "ns", "{top}");
    assert_eq!(
        (faults_unit.as_str(), minor_unit.as_str()),
        ("faults", "faults")
    );
    assert!(clock_samples > 0, "{top}");
    // At 4000 Hz the kernel adapts the period; the periods still add up to
    // about the number of faults, and neither total holds the other's.
    for total in [faults, minor] {
        assert!(
            (PAGES / 2..PAGES * 2).contains(&total),
            "{total} faults for {PAGES} pages:\n{top}"
        );
    }
    // Folded output of one event holds only that event's weights.
    let folded_faults: u64 = folded(&report(
        &data,
        &["--format", "folded", "--event", "page-faults"],
    ))
    .iter()
    .map(|(_, n)| n)
    .sum();
    assert_eq!(folded_faults, faults);
}

/// perf's per-event terms (`EVENT/period=N/`) and tracepoint wildcards
/// (`sched:sched_process_*`): the period wins over -F for its event only,
/// and every matching tracepoint is opened.
#[test]
fn per_event_periods_and_tracepoint_wildcards_reach_the_kernel() {
    require_perf!();
    let _serial = serial();
    let dir = temp_dir("events-terms");
    let work = fault_workload();
    let data = recorded(
        &dir,
        "terms.data",
        &[
            "-F",
            "999",
            "-e",
            "page-faults/period=1/",
            "-e",
            "minor-faults",
            "-e",
            "sched:sched_process_e*",
            "--",
            work.to_str().unwrap(),
        ],
    );
    let top = report(&data, &["-n", "1"]);
    let (samples, weight, _) = event_totals(&top, "page-faults/period=1/");
    assert_eq!(samples, weight, "period=1: one fault per sample\n{top}");
    assert!(
        samples >= PAGES,
        "{samples} samples for {PAGES} pages:\n{top}"
    );
    // minor-faults took -F 999: adaptive periods, far fewer samples.
    let (minor_samples, minor_weight, _) = event_totals(&top, "minor-faults");
    assert!(
        minor_samples < samples / 4 && minor_weight > minor_samples,
        "-F 999 applies to minor-faults only: {minor_samples} samples, {minor_weight} faults\n{top}"
    );
    // The launched command's exec and exit, one each.
    for tracepoint in ["sched:sched_process_exec", "sched:sched_process_exit"] {
        let (hits, _, _) = event_totals(&top, tracepoint);
        assert!(hits >= 1, "{tracepoint}:\n{top}");
    }
}

#[test]
fn tracepoints_keep_raw_fields_and_filters_drop_what_they_exclude() {
    require_perf!();
    let _serial = serial();
    if rprof::event::EventSources::system().tracefs.is_none() {
        let (_, out) = record(
            &temp_dir("events-no-tracefs"),
            "x.data",
            &["-e", "sched:sched_process_exec", "--", "true"],
        );
        assert!(text(&out.stderr).contains("mount -t tracefs nodev /sys/kernel/tracing"));
        return;
    }
    let dir = temp_dir("events-tracepoint");
    let command = ["sh", "-c", "/bin/true; /bin/echo hi >/dev/null; /bin/true"];
    let mut args = vec!["-e", "sched:sched_process_exec", "-g", "--"];
    args.extend_from_slice(&command);
    let data = recorded(&dir, "exec.data", &args);
    let script = report(&data, &["--format", "script"]);
    let execs: Vec<&str> = script
        .lines()
        .filter(|l| l.contains("sched:sched_process_exec: filename="))
        .collect();
    assert_eq!(execs.len(), 4, "sh, true, echo, true:\n{script}");
    assert_eq!(
        execs
            .iter()
            .filter(|l| l.contains("filename=/bin/true pid="))
            .count(),
        2,
        "{script}"
    );
    // The stacks still aggregate per event for the other formats.
    let top = report(&data, &["-n", "3"]);
    assert_eq!(event_totals(&top, "sched:sched_process_exec").0, 4, "{top}");

    // The kernel applies the filter: only the two execs of /bin/true.
    let mut filtered = vec![
        "-e",
        "sched:sched_process_exec",
        "--filter",
        "filename == \"/bin/true\"",
        "--",
    ];
    filtered.extend_from_slice(&command);
    let data = recorded(&dir, "filtered.data", &filtered);
    let script = report(&data, &["--format", "script"]);
    let execs: Vec<&str> = script.lines().collect();
    assert_eq!(execs.len(), 2, "{script}");
    assert!(
        execs.iter().all(|l| l.contains("filename=/bin/true")),
        "{script}"
    );

    // A filter the kernel cannot parse is an error that names --filter.
    let (_, out) = record(
        &dir,
        "bad.data",
        &[
            "-e",
            "sched:sched_process_exec",
            "--filter",
            "no_such_field == 1",
            "--",
            "true",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--filter"),
        "{}",
        text(&out.stderr)
    );

    if !linux_perf_available() {
        return;
    }
    let perf_data = dir.join("perf.data");
    let mut perf_args = vec![
        "record",
        "-q",
        "-e",
        "sched:sched_process_exec",
        "-o",
        perf_data.to_str().unwrap(),
        "--",
    ];
    perf_args.extend_from_slice(&command);
    perf_succeeded(
        run_linux_perf(&perf_args),
        "perf record -e sched:sched_process_exec",
    );
    let perf_script = perf_succeeded(
        run_linux_perf(["script", "-i", perf_data.to_str().unwrap()]),
        "perf script",
    );
    let perf_true = perf_script
        .lines()
        .filter(|l| l.contains("filename=/bin/true"))
        .count();
    assert_eq!(perf_true, 2, "perf sees the same execs:\n{perf_script}");

    // Linux perf opens rprof's tracepoint recording (HEADER_TRACING_DATA)
    // and names the same fields.
    let perf_on_rprof = perf_succeeded(
        run_linux_perf(["script", "-i", dir.join("exec.data").to_str().unwrap()]),
        "perf script of rprof's tracepoint recording",
    );
    let rprof_execs: Vec<&str> = perf_on_rprof
        .lines()
        .filter(|l| l.contains("sched:sched_process_exec: filename="))
        .collect();
    assert_eq!(rprof_execs.len(), 4, "{perf_on_rprof}");
    assert_eq!(
        rprof_execs
            .iter()
            .filter(|l| l.contains("filename=/bin/true pid="))
            .count(),
        2,
        "{perf_on_rprof}"
    );
}

#[test]
fn hardware_events_fail_clearly_where_there_is_no_pmu() {
    require_perf!();
    let _serial = serial();
    let dir = temp_dir("events-cycles");
    let (data, out) = record(&dir, "cycles.data", &["-e", "cycles", "--", "true"]);
    if out.status.success() {
        // A machine with a PMU records cycles like any other event.
        let top = report(&data, &[]);
        assert!(top.contains("# Event: cycles"), "{top}");
        return;
    }
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("event cycles needs a hardware PMU"),
        "{stderr}"
    );
    assert!(
        stderr.contains("-e cpu-clock") && stderr.contains("task-clock"),
        "{stderr}"
    );
    assert!(!data.exists(), "no file is left behind");
}

#[test]
fn list_shows_software_hardware_and_tracepoints_filtered() {
    let out = rprof(&["list"]);
    assert!(out.status.success());
    let all = text(&out.stdout);
    for want in [
        "cpu-clock",
        "page-faults OR faults",
        "cpu-cycles OR cycles",
        "L1-dcache-load-misses",
    ] {
        assert!(all.contains(want), "{want}:\n{all}");
    }
    let faults = text(&rprof(&["list", "fault"]).stdout);
    assert!(
        faults.contains("major-faults") && !faults.contains("cpu-clock"),
        "{faults}"
    );
    if rprof::event::EventSources::system().tracefs.is_some() {
        let sched = text(&rprof(&["list", "sched:sched_sw*"]).stdout);
        assert!(sched.contains("sched:sched_switch"), "{sched}");
        assert!(!sched.contains("cpu-clock"), "{sched}");
    }
    let none = rprof(&["list", "no-such-event-xyz"]);
    assert!(none.status.success());
    assert!(text(&none.stdout).contains("no event matches"));
}

#[test]
fn bad_event_names_are_refused_before_anything_runs() {
    let dir = temp_dir("events-bad");
    let marker = dir.join("ran");
    for (event, want) in [
        ("cyclez", "unknown event 'cyclez'"),
        ("cycles:x", "unknown modifier 'x'"),
        ("{cycles", "'{' without '}'"),
        ("nosuchpmu/event=1/", "unknown PMU 'nosuchpmu'"),
    ] {
        let (_, out) = record(
            &dir,
            "bad.data",
            &["-e", event, "--", "touch", marker.to_str().unwrap()],
        );
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains(want),
            "{event}: {}",
            text(&out.stderr)
        );
        assert!(!marker.exists(), "{event}: the command must not run");
    }
}
