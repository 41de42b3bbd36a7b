//! `rprof stat` beside `perf stat` on the same deterministic work: page
//! faults of a fixed allocation and context switches of a fixed sleep loop
//! agree within 2%; the output forms (-x CSV, -j JSON, -r, -I, -A) carry
//! perf's columns and field names; the command's exit status comes back.

use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;

use crate::util::{
    cc, linux_perf_available, require_perf, rprof, run_linux_perf, serial, temp_dir, text,
    KernelWide,
};

/// tests/workloads/statwork.c, built once.
fn statwork() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = temp_dir("statwork");
        let out = dir.join("statwork");
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/statwork.c");
        cc(&[&src], &out, &[]);
        out
    })
}

/// `-x,` lines as (value, unit, event, the rest).
fn csv_counts(stderr: &str) -> Vec<Vec<String>> {
    stderr
        .lines()
        .filter(|l| l.contains(','))
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// The value of `event` in `-x,` output.
fn csv_value(stderr: &str, event: &str) -> f64 {
    let row = csv_counts(stderr)
        .into_iter()
        .find(|f| f.get(2).map(String::as_str) == Some(event))
        .unwrap_or_else(|| panic!("no {event} in {stderr}"));
    row[0]
        .parse()
        .unwrap_or_else(|_| panic!("{event}: {row:?}"))
}

fn rprof_stat(args: &[&str]) -> Output {
    let mut argv = vec!["stat"];
    argv.extend_from_slice(args);
    rprof(&argv)
}

/// Median of `runs` values of `event` from rprof and from perf, taken in
/// alternation so both see the same machine.
fn medians_side_by_side(event: &str, work: &[&str], runs: usize) -> (f64, f64) {
    let work_bin = statwork().to_str().unwrap().to_string();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut args = vec!["-x,", "-e", event, "--", work_bin.as_str()];
        args.extend_from_slice(work);
        let out = rprof_stat(&args);
        assert!(out.status.success(), "rprof stat: {}", text(&out.stderr));
        ours.push(csv_value(&text(&out.stderr), event));
        let mut perf_args = vec!["stat"];
        perf_args.extend_from_slice(&args);
        let out = run_linux_perf(&perf_args).expect("run perf stat");
        assert!(out.status.success(), "perf stat: {}", text(&out.stderr));
        theirs.push(csv_value(&text(&out.stderr), event));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(ours), median(theirs))
}

fn assert_within(ours: f64, theirs: f64, share: f64, what: &str) {
    let diff = (ours - theirs).abs() / theirs.max(1.0);
    assert!(
        diff <= share,
        "{what}: rprof {ours} vs perf {theirs} ({:.2}% apart)",
        diff * 100.0
    );
}

#[test]
fn stat_page_faults_of_a_fixed_allocation_agree_with_perf_stat() {
    let _serial = serial();
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let (ours, theirs) = medians_side_by_side("page-faults", &["pages", "4000"], 3);
    assert!(ours >= 4000.0, "fewer faults than pages touched: {ours}");
    assert_within(ours, theirs, 0.02, "page-faults");
    // Counters are inherited: the faults of a child of the command count.
    let script = format!("{} pages 4000", statwork().display());
    let out = rprof_stat(&["-x,", "-e", "page-faults", "--", "sh", "-c", &script]);
    let faults = csv_value(&text(&out.stderr), "page-faults");
    assert!(faults >= 4000.0, "the child's faults are missing: {faults}");
}

#[test]
fn stat_context_switches_of_a_sleep_loop_agree_with_perf_stat() {
    let _serial = serial();
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let (ours, theirs) = medians_side_by_side("context-switches", &["sleeps", "200"], 3);
    assert!(ours >= 200.0, "fewer switches than sleeps: {ours}");
    assert_within(ours, theirs, 0.02, "context-switches");
}

#[test]
fn stat_default_set_prints_perfs_table_and_unsupported_hardware() {
    let _serial = serial();
    require_perf!();
    let out = rprof_stat(&["--", "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "the table goes to stderr");
    let table = text(&out.stderr);
    assert!(
        table.contains(" Performance counter stats for 'true':"),
        "{table}"
    );
    for event in [
        "task-clock",
        "context-switches",
        "cpu-migrations",
        "page-faults",
        "cycles",
        "instructions",
        "branches",
        "branch-misses",
    ] {
        assert!(table.contains(event), "{event} missing: {table}");
    }
    assert!(table.contains(" msec task-clock") && table.contains("CPUs utilized"));
    for footer in ["seconds time elapsed", "seconds user", "seconds sys"] {
        assert!(table.contains(footer), "{footer}: {table}");
    }
    // Where perf finds no PMU (these VMs), rprof says the same, not an error.
    if linux_perf_available() {
        let perf = run_linux_perf(["stat", "-e", "cycles", "--", "true"]).expect("perf stat");
        if text(&perf.stderr).contains("<not supported>") {
            let cycles = table.lines().find(|l| l.contains(" cycles")).unwrap();
            assert!(cycles.contains("<not supported>"), "{table}");
        }
    }
}

#[test]
fn stat_passes_the_command_exit_status_through() {
    let _serial = serial();
    require_perf!();
    let work = statwork().to_str().unwrap().to_string();
    let out = rprof_stat(&["-e", "task-clock", "--", &work, "exit", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("task-clock"));
    let out = rprof_stat(&["-e", "task-clock", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15));
    // A usage error is clap's 2; a command that cannot run is an error.
    assert_eq!(rprof_stat(&["--no-such-flag"]).status.code(), Some(2));
    let out = rprof_stat(&["--", "/nonexistent/rprof-stat-cmd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot run"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn stat_repeat_prints_means_with_the_standard_error() {
    let _serial = serial();
    require_perf!();
    let work = statwork().to_str().unwrap().to_string();
    let out = rprof_stat(&[
        "-r",
        "3",
        "-e",
        "task-clock,page-faults",
        "--",
        &work,
        "pages",
        "100",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stderr);
    assert!(table.contains("(3 runs):"), "{table}");
    let faults = table.lines().find(|l| l.contains("page-faults")).unwrap();
    assert!(
        faults.contains("( +- ") && faults.ends_with("% )"),
        "{faults}"
    );
    assert!(table.contains(" +- ") && table.contains("seconds time elapsed  ( +- "));
    // CSV: the variance column follows the event name, as in perf.
    let out = rprof_stat(&[
        "-r",
        "2",
        "-x,",
        "-e",
        "page-faults",
        "--",
        &work,
        "pages",
        "100",
    ]);
    let rows = csv_counts(&text(&out.stderr));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].len(), 8, "{rows:?}");
    assert!(rows[0][3].ends_with('%'), "{rows:?}");
}

#[test]
fn stat_csv_has_perfs_columns() {
    let _serial = serial();
    require_perf!();
    let out = rprof_stat(&["-x", ";", "--", "true"]);
    assert!(out.status.success());
    let lines: Vec<String> = text(&out.stderr).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 8, "one line per default event: {lines:?}");
    let fields: Vec<&str> = lines[0].split(';').collect();
    // value, unit, event, run time, percentage, metric value, metric unit
    assert_eq!(fields.len(), 7, "{fields:?}");
    assert_eq!((fields[1], fields[2]), ("msec", "task-clock"));
    assert!(fields[0].parse::<f64>().is_ok() && fields[3].parse::<u64>().is_ok());
    assert_eq!(fields[6], "CPUs utilized");
    if linux_perf_available() {
        let perf = run_linux_perf(["stat", "-x", ";", "--", "true"]).expect("perf stat");
        let theirs: Vec<Vec<String>> = text(&perf.stderr)
            .lines()
            .map(|l| l.split(';').map(str::to_string).collect())
            .collect();
        let ours: Vec<Vec<&str>> = lines.iter().map(|l| l.split(';').collect()).collect();
        for (mine, perfs) in ours.iter().zip(&theirs) {
            assert_eq!(mine.len(), perfs.len(), "{mine:?} vs {perfs:?}");
            // Same event, unit and metric unit on every line (a rate's
            // K/M/G prefix follows the count, which differs run to run).
            let rate = |unit: &str| unit.trim_start_matches(['K', 'M', 'G']).to_string();
            assert_eq!(
                (mine[1], mine[2], rate(mine[6])),
                (perfs[1].as_str(), perfs[2].as_str(), rate(&perfs[6]))
            );
        }
    }
}

#[test]
fn stat_json_lines_parse_and_carry_perfs_field_names() {
    let _serial = serial();
    require_perf!();
    let work = statwork().to_str().unwrap().to_string();
    let out = rprof_stat(&["-j", "-r", "2", "--", &work, "pages", "10"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let objects: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objects.len(), 8);
    for object in &objects {
        for field in [
            "counter-value",
            "unit",
            "event",
            "variance",
            "event-runtime",
            "pcnt-running",
            "metric-value",
            "metric-unit",
        ] {
            assert!(object.get(field).is_some(), "{field} missing: {object}");
        }
    }
    let clock = &objects[0];
    assert_eq!(clock["event"], "task-clock");
    assert_eq!(clock["unit"], "msec");
    assert!(
        clock["counter-value"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    if linux_perf_available() {
        let perf = run_linux_perf(["stat", "-j", "-r", "2", "--", "true"]).expect("perf stat");
        for line in text(&perf.stderr).lines().filter(|l| l.starts_with('{')) {
            let theirs: serde_json::Value = serde_json::from_str(line).unwrap();
            let ours = objects
                .iter()
                .find(|o| o["event"] == theirs["event"])
                .unwrap_or_else(|| panic!("no {} in {stderr}", theirs["event"]));
            let keys = |v: &serde_json::Value| {
                let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                k.sort();
                k
            };
            assert_eq!(keys(ours), keys(&theirs));
        }
    }
}

#[test]
fn stat_interval_prints_timestamped_lines() {
    let _serial = serial();
    require_perf!();
    let out = rprof_stat(&[
        "-I",
        "100",
        "-e",
        "task-clock",
        "-x,",
        "--",
        "sleep",
        "0.45",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stamps: Vec<f64> = text(&out.stderr)
        .lines()
        .map(|l| l.split(',').next().unwrap().trim().parse().unwrap())
        .collect();
    assert!(stamps.len() >= 4, "{stamps:?}");
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    assert!((stamps[0] - 0.1).abs() < 0.05, "{stamps:?}");
    let table = text(&rprof_stat(&["-I", "100", "-e", "task-clock", "--", "sleep", "0.25"]).stderr);
    assert!(
        table.starts_with("#           time             counts unit events\n"),
        "{table}"
    );
    assert!(!table.contains("seconds time elapsed"), "{table}");
}

#[test]
fn stat_per_cpu_system_wide_prints_one_row_per_cpu() {
    let _serial = serial();
    require_perf!();
    let _kernel_wide = KernelWide::system_wide();
    let online = rprof::sys::online_cpus().unwrap();
    let out = rprof_stat(&[
        "-a",
        "-A",
        "-x,",
        "-e",
        "task-clock,cs",
        "--",
        "sleep",
        "0.1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = csv_counts(&text(&out.stderr));
    assert_eq!(rows.len(), 2 * online.len(), "{rows:?}");
    for (row, cpu) in rows.iter().zip(online.iter().chain(online.iter())) {
        assert_eq!(row[0], format!("CPU{cpu}"));
    }
    // Each CPU's clock ran about as long as the command (0.1 s).
    let clock: f64 = rows[0][1].parse().unwrap();
    assert!(clock > 50.0, "{rows:?}");
    let out = rprof_stat(&["-C", "0", "-e", "task-clock", "--", "sleep", "0.05"]);
    assert!(
        text(&out.stderr).contains("for 'CPU(s) 0'"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn stat_attaches_to_a_running_process_until_the_command_ends() {
    let _serial = serial();
    require_perf!();
    let work = statwork().to_str().unwrap().to_string();
    let mut target = std::process::Command::new(&work)
        .args(["sleeps", "2000"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = target.id().to_string();
    let out = rprof_stat(&["-p", &pid, "-x,", "-e", "cs", "--", "sleep", "0.3"]);
    let _ = target.kill();
    let _ = target.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let switches = csv_value(&text(&out.stderr), "cs");
    // About one switch per 1 ms sleep for 0.3 s (timer slack allows fewer).
    assert!((100.0..=400.0).contains(&switches), "{switches}");
}

#[test]
fn stat_without_privilege_counts_user_space_and_names_it() {
    let _serial = serial();
    require_perf!();
    if rprof::sys::perf_event_paranoid().unwrap_or(2) < 2 {
        return; // Kernel counts are open to everyone here: nothing to fall back from.
    }
    let nobody = crate::util::NobodyRprof::new("stat-nobody");
    let out = nobody.run(&[], &["stat", "-e", "task-clock,cs", "--", "true"]);
    let table = text(&out.stderr);
    assert!(out.status.success(), "{table}");
    // As perf stat: counted in user space only, and named so.
    assert!(table.contains(" msec task-clock:u "), "{table}");
    assert!(table.contains(" cs:u "), "{table}");
    // System-wide counting is refused with the fix named.
    let out = nobody.run(&[], &["stat", "-a", "-e", "cs", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("perf_event_paranoid"),
        "{}",
        text(&out.stderr)
    );
}
