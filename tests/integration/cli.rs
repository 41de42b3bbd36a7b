//! The command line and the terminal reports: typing a command as perf
//! users do, messages for what rprof lacks, completions and man pages kept
//! in sync, tables that fit a width and a screen, the call tree against
//! ground truth, and golden outputs of a fixed recording.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rprof::event::{CallGraph, EventSpec, Sampling};
use rprof::perfdata::records::CpuMode;
use rprof::perfdata::writer::{encode, AttrEntry};
use rprof::perfdata::{Comm, FeatureData, Mmap, PerfDataWriter, Sample, SampleId};

use crate::util::*;

/// Checked-in recording of `work callers 1` (-F 999 -g) and its reports.
fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn report_of(data: &Path, args: &[&str]) -> String {
    let mut argv = vec!["report", "-i", data.to_str().unwrap()];
    argv.extend_from_slice(args);
    let run = rprof(&argv);
    assert!(run.status.success(), "report failed: {}", text(&run.stderr));
    text(&run.stdout)
}

#[test]
fn a_command_after_the_options_needs_no_double_dash() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("no-dashes");
    let data = dir.join("split.data");
    let work = workloads().work.to_str().unwrap();
    // As perf users type it: options, then the command and its own options.
    let run = rprof(&[
        "record",
        "-g",
        "-o",
        data.to_str().unwrap(),
        work,
        "split",
        "1",
    ]);
    assert!(run.status.success(), "record failed: {}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("truth burn_a="),
        "the command ran"
    );
    let folded = report_of(&data, &["--format", "folded"]);
    assert!(folded.contains("burn_a"), "{folded}");

    // Values attached to short options stay options, not the command.
    let run = rprof(&[
        "record",
        "-F999",
        "-o",
        data.to_str().unwrap(),
        work,
        "split",
        "0.2",
    ]);
    assert!(run.status.success(), "-F999: {}", text(&run.stderr));
    // A typo is an error, not a program to run.
    let run = rprof(&[
        "record",
        "--bogus",
        "-o",
        data.to_str().unwrap(),
        work,
        "split",
        "0.2",
    ]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("unexpected argument '--bogus'"));

    // Progress bars are for terminals: none in a pipe.
    let err = text(&run.stderr);
    assert!(
        !err.contains("symbolizing") && !err.contains("reading records") && !err.contains('\u{1b}'),
        "progress drawn into a pipe: {err}"
    );

    // The command's options are its own: `sh -c 'exit 7'` gets `-c`.
    let run = rprof(&["record", "-o", data.to_str().unwrap(), "sh", "-c", "exit 7"]);
    assert_eq!(run.status.code(), Some(7), "{}", text(&run.stderr));
    // `--` still works.
    let run = rprof(&[
        "record",
        "-o",
        data.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(run.status.code(), Some(5), "{}", text(&run.stderr));
}

#[test]
fn perf_flags_rprof_lacks_are_named_not_run_as_a_command() {
    for args in [
        &["record", "-j", "any", "--", "true"][..],
        &["record", "-j", "any", "true"],
        &["record", "--call-graph", "fp", "-z", "true"],
        &["record", "--switch-output=1s", "-a"],
    ] {
        let run = rprof(args);
        let err = text(&run.stderr);
        assert!(!run.status.success(), "{args:?} succeeded");
        assert!(
            err.contains("is a `perf record` flag that rprof does not have"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("use '-- -"), "{args:?}: clap's hint: {err}");
    }
}

#[test]
fn report_without_a_recording_says_what_to_run_once() {
    let dir = temp_dir("no-recording");
    let run = rprof_command()
        .arg("report")
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = text(&run.stderr);
    assert!(!run.status.success());
    assert!(
        err.contains("no rprof.data in this directory: record one first")
            && err.contains("rprof record -g ./app"),
        "{err}"
    );
    let missing = dir.join("missing.data");
    let run = rprof(&["report", "-i", missing.to_str().unwrap()]);
    let err = text(&run.stderr);
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause is said once: {err}"
    );
}

#[test]
fn completions_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let bless = std::env::var_os("RPROF_BLESS").is_some();
    for (name, script) in rprof::cli::completions::render_shipped() {
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &script).unwrap();
            continue;
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == script,
            "completions/{name} is stale: run `RPROF_BLESS=1 cargo test completions` and commit completions/"
        );
    }
    let run = rprof(&["completions", "bash"]);
    let script = text(&run.stdout);
    assert!(run.status.success());
    assert!(
        script.contains("--call-graph") && script.contains("record") && script.contains("--format"),
        "bash completion lacks rprof's flags"
    );
}

#[test]
fn man_pages_name_the_command_and_its_values_and_carry_the_sections() {
    let pages = rprof::cli::man::render_all().unwrap();
    let page = |name: &str| {
        let (_, bytes) = pages.iter().find(|(n, _)| n == name).unwrap();
        String::from_utf8(bytes.clone()).unwrap()
    };
    let record = page("rprof-record.1");
    let synopsis = record.split(".SH SYNOPSIS").nth(1).unwrap();
    assert!(synopsis.starts_with("\n\\fBrprof record\\fR"), "{synopsis}");
    assert!(synopsis.contains("[\\fB\\-F\\fR \\fIHZ\\fR]"), "{synopsis}");
    for hidden in [
        "intr\\-regs",
        "compression\\-level",
        "branch\\-any",
        "switch\\-output",
    ] {
        assert!(
            !record.contains(hidden),
            "hidden flag {hidden} in the man page"
        );
    }
    let bash =
        String::from_utf8(rprof::cli::completions::render(clap_complete::Shell::Bash)).unwrap();
    assert!(
        !bash.contains("--branch-any"),
        "hidden flags are not completed"
    );
    assert!(bash.contains("--off-cpu"), "--off-cpu is a real flag now");
    for section in ["PERMISSIONS", "SIGNALS", "EXIT STATUS", "FILES"] {
        assert!(
            record.contains(&format!(".SH \"{section}\""))
                || record.contains(&format!(".SH {section}")),
            "{section}"
        );
    }
    let report = page("rprof-report.1");
    assert!(report.contains("\\fBrprof report\\fR"));
    assert!(report.contains(".SH \"EXIT STATUS\"") || report.contains(".SH EXIT STATUS"));
}

/// The widest line of a text, in display columns.
fn widest_line(text: &str) -> usize {
    text.lines()
        .map(rprof::output::text::columns)
        .max()
        .unwrap_or(0)
}

#[test]
fn top_fits_a_100_column_terminal_with_long_cpp_names() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("long-names");
    let binary = dir.join("longnames");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/longnames.cc");
    let status = Command::new("g++")
        .args(FP_FLAGS)
        .arg(&src)
        .arg("-o")
        .arg(&binary)
        .status()
        .expect("run g++ (install g++)");
    assert!(status.success());
    let data = dir.join("long.data");
    let run = rprof(&[
        "record",
        "-g",
        "-o",
        data.to_str().unwrap(),
        binary.to_str().unwrap(),
        "1",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));

    let full = report_of(&data, &[]);
    assert!(
        full.contains("process_every_element_of_the_request(std::vector<"),
        "a pipe gets names whole:\n{full}"
    );
    let narrow = rprof_command()
        .args(["report", "-i", data.to_str().unwrap()])
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let narrow = text(&narrow.stdout);
    let rows: Vec<&str> = narrow.lines().filter(|l| !l.starts_with('#')).collect();
    for row in &rows {
        assert!(
            rprof::output::text::columns(row) <= 100,
            "{} columns: {row}",
            rprof::output::text::columns(row)
        );
    }
    let hot = rows
        .iter()
        .find(|r| r.contains("of_the_request"))
        .unwrap_or_else(|| panic!("the function's own name stays:\n{narrow}"));
    assert!(
        hot.ends_with("_of_the_request(...)") && !narrow.contains("(std::vector"),
        "parameter lists are shortened:\n{narrow}"
    );
    assert!(widest_line(&full) > 100, "the full table was wider");

    let whole = rprof_command()
        .args(["report", "-i", data.to_str().unwrap(), "--full-names"])
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert!(text(&whole.stdout).contains("(std::vector<"));
}

/// A recording of one thread sampled in `functions` distinct addresses of
/// a module that does not exist: one unnamed row each.
fn write_many_rows_recording(path: &Path, functions: u64) {
    let attr = EventSpec::cpu_clock(Sampling::Period(1_000_000), CallGraph::None).to_attr();
    let st = attr.sample_type;
    let mut writer = PerfDataWriter::create(path, &[AttrEntry { attr, ids: vec![] }]).unwrap();
    let id = SampleId {
        pid: Some(7),
        tid: Some(7),
        time: Some(1),
        id: None,
        cpu: Some(0),
    };
    let mut data = encode::comm(
        st,
        &Comm {
            pid: 7,
            tid: 7,
            comm: "many".into(),
            exec: true,
            sample_id: id,
        },
    );
    data.extend(encode::mmap2(
        st,
        &Mmap {
            cpumode: CpuMode::User,
            pid: 7,
            tid: 7,
            start: 0x40_0000,
            len: 0x10_0000,
            pgoff: 0,
            filename: "/nonexistent/libmany.so".into(),
            build_id: None,
            inode: None,
            prot: (libc::PROT_READ | libc::PROT_EXEC) as u32,
            flags: libc::MAP_PRIVATE as u32,
            sample_id: id,
        },
    ));
    let mut time = 10;
    for f in 0..functions {
        // Function f gets f+1 samples, so the order is fixed.
        for _ in 0..=f {
            time += 1;
            data.extend(encode::sample(
                st,
                &Sample {
                    cpumode: CpuMode::User,
                    ip: 0x40_0000 + 0x100 * f,
                    pid: 7,
                    tid: 7,
                    time,
                    period: 1_000_000,
                    ..Sample::default()
                },
            ));
        }
    }
    writer.write_raw(&data).unwrap();
    writer.finish(&FeatureData::default()).unwrap();
}

/// Runs `rprof ARGS` with its stdout on a pseudo-terminal; returns what the
/// terminal showed.
fn on_a_terminal(args: &[&str]) -> String {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let terminal_out: std::fs::File = pty.slave.try_clone().unwrap().into();
    let mut child = rprof_command()
        .args(args)
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .stdout(Stdio::from(terminal_out))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(pty.slave);
    let status = child.wait().unwrap();
    assert!(status.success(), "rprof on a terminal failed");
    let _ = pty.master.as_fd();
    let mut master: std::fs::File = pty.master.into();
    let mut shown = Vec::new();
    // Reading the master after the slave closed ends with EIO.
    let _ = master.read_to_end(&mut shown);
    text(&shown).replace("\r\n", "\n")
}

#[test]
fn a_terminal_gets_a_screenful_of_rows_and_a_pipe_gets_all() {
    let dir = temp_dir("many-rows");
    let data = dir.join("many.data");
    write_many_rows_recording(&data, 120);
    let data = data.to_str().unwrap();

    let piped = report_of(Path::new(data), &["--sort", "symbol"]);
    let piped_rows = piped.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(piped_rows, 120, "a pipe gets every row:\n{piped}");
    assert!(!piped.contains("not shown"));

    let shown = on_a_terminal(&["report", "-i", data, "--sort", "symbol"]);
    let rows = shown.lines().filter(|l| l.starts_with("  ")).count();
    assert!(
        (10..120).contains(&rows),
        "{rows} rows on a terminal:\n{shown}"
    );
    assert!(
        shown.contains(&format!(
            "# ... {} more rows not shown: -n 0 shows all",
            120 - rows
        )),
        "{shown}"
    );
    // The hottest rows are the ones kept: function 119 has the most samples.
    assert!(shown.contains("libmany.so+0x7700"), "{shown}");

    let all = on_a_terminal(&["report", "-i", data, "--sort", "symbol", "-n", "0"]);
    assert_eq!(all.lines().filter(|l| l.starts_with("  ")).count(), 120);
}

/// (share, name) of the lines of a tree printed under the row of `function`.
fn tree_branches(tree: &str, function: &str) -> Vec<(f64, String, usize)> {
    let mut lines = tree
        .lines()
        .skip_while(|l| !(l.starts_with("  ") && l.ends_with(function)));
    lines
        .next()
        .unwrap_or_else(|| panic!("no row for {function}:\n{tree}"));
    lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let at = l.find("-- ")?;
            let rest = l[at + 3..].trim_start();
            let (pct, name) = rest.split_once("%  ")?;
            Some((pct.trim().parse().ok()?, name.to_string(), at))
        })
        .collect()
}

#[test]
fn tree_shows_who_calls_the_hot_function_as_measured() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("tree");
    let data = dir.join("callers.data");
    let w = workloads();
    let run = rprof(&[
        "record",
        "-g",
        "-F",
        "999",
        "-o",
        data.to_str().unwrap(),
        w.work.to_str().unwrap(),
        "callers",
        "2",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let truth = truth(&text(&run.stdout));
    let get = |n: &str| truth.iter().find(|(k, _)| k == n).unwrap().1;
    let left_truth = 100.0 * get("from_left") / (get("from_left") + get("from_right"));

    let tree = report_of(
        &data,
        &[
            "--format",
            "tree",
            "--sort",
            "symbol",
            "--branch-limit",
            "0",
        ],
    );
    let top = report_of(&data, &["--sort", "symbol"]);
    let total_of = |text: &str| -> f64 {
        let row = text
            .lines()
            .find(|l| l.starts_with("  ") && l.ends_with("alpha_work"))
            .unwrap_or_else(|| panic!("no alpha_work row:\n{text}"));
        row.split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap()
    };
    let total = total_of(&tree);
    assert_eq!(total, total_of(&top), "the tree's row is the table's row");
    let branches = tree_branches(&tree, "alpha_work");
    let first_level = branches.iter().map(|b| b.2).min().unwrap();
    let callers: Vec<&(f64, String, usize)> =
        branches.iter().filter(|b| b.2 == first_level).collect();
    let sum: f64 = callers.iter().map(|b| b.0).sum();
    assert!(
        (sum - total).abs() < 0.02 * callers.len() as f64 + 0.011,
        "callers add up to {sum}, the total is {total}:\n{tree}"
    );
    let share = |name: &str| callers.iter().find(|b| b.1 == name).map_or(0.0, |b| b.0);
    let left = 100.0 * share("from_left") / (share("from_left") + share("from_right"));
    assert!(
        (left - left_truth).abs() <= 3.0,
        "from_left calls {left:.1}% of alpha_work, truth {left_truth:.1}%:\n{tree}"
    );

    // Caller order: under main, its callees (from_left among them).
    let down = report_of(
        &data,
        &[
            "--format",
            "tree",
            "--order",
            "caller",
            "--sort",
            "symbol",
            "--max-stack",
            "3",
        ],
    );
    let under_main = tree_branches(&down, "main");
    assert!(under_main.iter().any(|b| b.1 == "from_left"), "{down}");
    let deepest = under_main.iter().map(|b| b.2).max().unwrap();
    assert!(
        deepest <= first_level + 8,
        "--max-stack 3 keeps 3 levels:\n{down}"
    );
}

/// Compares `actual` with the golden file `name`, or rewrites it under
/// RPROF_BLESS.
fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("RPROF_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{name} differs from tests/fixtures/golden/{name} (run `RPROF_BLESS=1 cargo test golden` \
         and review the diff if the change is intended):\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

#[test]
fn golden_top_tree_and_folded_of_a_fixed_recording() {
    let data = golden_dir().join("callers.data");
    // The source line names the path: the same on every checkout.
    let normalize = |text: String| text.replace(data.to_str().unwrap(), "callers.data");
    let top = normalize(report_of(&data, &[]));
    check_golden("callers.top", &top);
    let narrow = rprof_command()
        .args(["report", "-i", data.to_str().unwrap(), "--sort", "symbol"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    check_golden("callers.top80", &normalize(text(&narrow.stdout)));
    check_golden(
        "callers.tree",
        &normalize(report_of(&data, &["--format", "tree", "--sort", "symbol"])),
    );
    check_golden(
        "callers.tree-caller",
        &normalize(report_of(
            &data,
            &[
                "--format", "tree", "--order", "caller", "--sort", "symbol", "-n", "3",
            ],
        )),
    );
    check_golden("callers.folded", &report_of(&data, &["--format", "folded"]));
}

#[test]
fn flame_graph_title_names_command_event_samples_and_unit() {
    let data = golden_dir().join("callers.data");
    let svg = report_of(&data, &["--format", "svg"]);
    assert!(
        svg.contains("id=\"title\" fill=\"rgb(0,0,0)\" x=\"50.0000%\" y=\"24.00\">work callers 1<"),
        "title is the profiled command"
    );
    assert!(svg.contains("cpu-clock ·"), "subtitle names the event");
    assert!(svg.contains(" samples ·"), "subtitle gives the samples");
    assert!(
        svg.contains(" us CPU, "),
        "tooltips count microseconds of CPU time, not samples"
    );
    assert!(!svg.contains(" samples, "), "no tooltip says samples");
}
