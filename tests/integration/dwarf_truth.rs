//! Ground truth for DWARF unwinding of code built without frame pointers
//! (`-O2 -fomit-frame-pointer`, Rust without `force-frame-pointers`, a
//! distro binary): stacks through a signal handler, calls through the PLT,
//! C++ exceptions in flight, a Rust release binary and Debian's python3.
//! Files come from Linux `perf record --call-graph dwarf` (read by
//! `rprof report -i`); two cases also from `rprof record --call-graph dwarf`,
//! checked on the report only. Each workload measures its own truth.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util::*;

fn workload_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/workloads")
        .join(name)
}

fn workload_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workloads-truth");
    std::fs::create_dir_all(&dir).expect("workload dir");
    dir
}

/// sigwork.c without frame pointers (built once per test run).
fn sigwork() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = workload_dir().join("sigwork");
        cc_with(NO_FP_FLAGS, &[&workload_src("sigwork.c")], &out, &[]);
        out
    })
}

/// pltwork.c and its libpltlib.so, both without frame pointers.
fn pltwork() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = workload_dir();
        let lib = dir.join("libpltlib.so");
        cc_with(
            NO_FP_FLAGS,
            &[&workload_src("pltlib.c")],
            &lib,
            &["-shared", "-fPIC"],
        );
        let out = dir.join("pltwork");
        let rpath = format!("-Wl,-rpath,{}", dir.display());
        let libdir = format!("-L{}", dir.display());
        cc_with(
            NO_FP_FLAGS,
            &[&workload_src("pltwork.c")],
            &out,
            &[&libdir, "-lpltlib", &rpath],
        );
        out
    })
}

/// excwork.cc by g++ without frame pointers.
fn excwork() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = workload_dir().join("excwork");
        let status = Command::new("g++")
            .args(NO_FP_FLAGS)
            .arg(workload_src("excwork.cc"))
            .arg("-o")
            .arg(&out)
            .status()
            .expect("run g++ (install g++)");
        assert!(status.success(), "g++ failed for {}", out.display());
        out
    })
}

/// rswork.rs as a release binary without frame pointers, with line tables.
fn rswork() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = workload_dir().join("rswork");
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let status = Command::new(rustc)
            .args(["--edition", "2021", "-C", "opt-level=2"])
            .args(["-C", "force-frame-pointers=no", "-C", "debuginfo=1"])
            .arg(workload_src("rswork.rs"))
            .arg("-o")
            .arg(&out)
            .status()
            .expect("run rustc");
        assert!(status.success(), "rustc failed for {}", out.display());
        out
    })
}

/// `perf record -q --call-graph dwarf -F 999 -o OUT -- COMMAND...`; the
/// command's stdout. Hold `serial()`.
fn perf_record_dwarf(out: &Path, command: &[&str]) -> String {
    let mut argv = vec![
        "record",
        "-q",
        "--call-graph",
        "dwarf",
        "-F",
        "999",
        "-o",
        out.to_str().unwrap(),
        "--",
    ];
    argv.extend_from_slice(command);
    perf_succeeded(run_linux_perf(&argv), "perf record --call-graph dwarf")
}

/// `rprof record --call-graph dwarf -F 999 -o OUT COMMAND...`; the
/// command's stdout. Hold `serial()`.
fn rprof_record_dwarf(out: &Path, command: &[&str]) -> String {
    let args = [
        &["record", "--call-graph", "dwarf", "-F", "999", "-o"],
        &[out.to_str().unwrap()][..],
        command,
    ]
    .concat();
    let run = rprof(&args);
    assert!(run.status.success(), "record: {}", text(&run.stderr));
    text(&run.stdout)
}

fn report(args: &[&str]) -> String {
    let run = rprof(&[&["report"], args].concat());
    assert!(run.status.success(), "report failed: {}", text(&run.stderr));
    text(&run.stdout)
}

/// A recording's stacks: frames root first, and sample counts (folded
/// counts are weights in ns, the same for every sample at a fixed rate).
struct Stacks(Vec<(Vec<String>, u64)>);

impl Stacks {
    fn of(data: &Path) -> Stacks {
        let folded = folded(&report(&[
            "-i",
            data.to_str().unwrap(),
            "--format",
            "folded",
        ]));
        Stacks(
            folded
                .into_iter()
                .map(|(stack, count)| (stack.split(';').map(str::to_string).collect(), count))
                .collect(),
        )
    }

    /// The summed weight of the stacks `select` takes.
    fn weight(&self, select: impl Fn(&[String]) -> bool) -> u64 {
        self.0
            .iter()
            .filter(|(frames, _)| select(frames))
            .map(|(_, w)| w)
            .sum()
    }

    /// Of the stacks `select` takes, the share (0..1) that `reach` also
    /// takes, and their weight.
    fn share(
        &self,
        select: impl Fn(&[String]) -> bool,
        reach: impl Fn(&[String]) -> bool,
    ) -> (f64, u64) {
        let total = self.weight(&select);
        let reaching = self.weight(|f| select(f) && reach(f));
        (reaching as f64 / total.max(1) as f64, total)
    }

    /// The stacks `select` takes that `reach` does not (for messages).
    fn missing(
        &self,
        select: impl Fn(&[String]) -> bool,
        reach: impl Fn(&[String]) -> bool,
    ) -> String {
        self.0
            .iter()
            .filter(|(f, _)| select(f) && !reach(f))
            .take(10)
            .map(|(f, w)| format!("{} {w}\n", f.join(";")))
            .collect()
    }
}

fn has(frames: &[String], name: &str) -> bool {
    frames.iter().any(|f| f == name)
}

/// A workload's truth value `name` (ns).
fn truth_of(stdout: &str, name: &str) -> f64 {
    truth(stdout)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no truth {name} in {stdout:?}"))
        .1
}

/// Handler samples: the stack continues past the trampoline the handler
/// returns to (`__restore_rt`) into the interrupted function and on to
/// main; the handler's share of samples is its share of the thread's CPU
/// time.
fn assert_signal_stacks(data: &Path, stdout: &str) {
    let stacks = Stacks::of(data);
    let in_handler = |f: &[String]| has(f, "on_sigprof");
    let (to_main, handler) = stacks.share(in_handler, |f| has(f, "main"));
    assert!(handler > 0, "no handler samples");
    assert!(
        to_main >= 0.95,
        "only {:.1}% of the handler's samples reach main:\n{}",
        to_main * 100.0,
        stacks.missing(in_handler, |f| has(f, "main"))
    );
    // Caller of the handler: the trampoline; its caller: the code the
    // signal interrupted (spin_loop, nearly always).
    let through = |f: &[String]| {
        f.iter()
            .position(|n| n == "on_sigprof")
            .is_some_and(|i| i >= 2 && f[i - 2] == "spin_loop" && f[i - 1] != "[truncated]")
    };
    let (interrupted, _) = stacks.share(in_handler, through);
    assert!(
        interrupted >= 0.90,
        "only {:.1}% of the handler's samples show spin_loop;TRAMPOLINE;on_sigprof:\n{}",
        interrupted * 100.0,
        stacks.missing(in_handler, through)
    );
    // Where libc's own symbols are known, the trampoline has its name: the
    // address the handler returns to is looked up as is, not minus one
    // (which lies before the function).
    if stacks.weight(|f| has(f, "__libc_start_call_main")) > 0 {
        let named = |f: &[String]| has(f, "__restore_rt");
        let (share, _) = stacks.share(in_handler, named);
        assert!(
            share >= 0.90,
            "the trampoline is not named __restore_rt:\n{}",
            stacks.missing(in_handler, named)
        );
    }
    let all = stacks.weight(|_| true);
    let measured = 100.0 * handler as f64 / all as f64;
    let truth = 100.0 * truth_of(stdout, "handler") / truth_of(stdout, "total");
    assert!(
        (measured - truth).abs() <= 3.0,
        "the handler holds {measured:.2}% of samples, truth {truth:.2}%"
    );
    eprintln!(
        "signal: {:.1}% of handler samples reach main, {:.1}% through spin_loop;trampoline, handler {measured:.2}% (truth {truth:.2}%)",
        to_main * 100.0,
        interrupted * 100.0
    );
}

#[test]
fn signal_handler_stacks_continue_through_the_trampoline_to_main() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let work = sigwork().to_str().unwrap();
    let _guard = serial();
    let dir = temp_dir("truth-signal");
    let data = dir.join("perf.data");
    let stdout = perf_record_dwarf(&data, &[work, "2"]);
    assert_signal_stacks(&data, &stdout);
}

#[test]
fn rprof_dwarf_recording_unwinds_through_a_signal_handler() {
    require_perf!();
    let work = sigwork().to_str().unwrap();
    let _guard = serial();
    let dir = temp_dir("truth-signal-rprof");
    let data = dir.join("rprof.data");
    let stdout = rprof_record_dwarf(&data, &[work, "2"]);
    assert_signal_stacks(&data, &stdout);
}

#[test]
fn calls_through_the_plt_unwind_to_main_and_split_matches_truth() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let work = pltwork().to_str().unwrap();
    let _guard = serial();
    let dir = temp_dir("truth-plt");
    let data = dir.join("perf.data");
    let stdout = perf_record_dwarf(&data, &[work, "2"]);
    let stacks = Stacks::of(&data);

    // Samples in the PLT stub itself (the leaf), and in the library's
    // function called through it.
    let in_stub = |f: &[String]| f.last().is_some_and(|l| l == "plt_step@plt");
    let (stub_to_main, stub) = stacks.share(in_stub, |f| has(f, "main"));
    assert!(stub > 0, "no sample in the PLT stub");
    assert!(
        stub_to_main >= 0.95,
        "only {:.1}% of PLT-stub samples reach main:\n{}",
        stub_to_main * 100.0,
        stacks.missing(in_stub, |f| has(f, "main"))
    );
    let via = |f: &[String]| {
        f.windows(2)
            .any(|w| w[0] == "via_plt" && w[1] == "plt_step@plt")
    };
    let (stub_via, _) = stacks.share(in_stub, via);
    assert!(stub_via >= 0.95, "the stub's caller is not via_plt");
    let in_lib = |f: &[String]| has(f, "plt_step");
    let (lib_to_main, lib) = stacks.share(in_lib, |f| has(f, "main") && has(f, "via_plt"));
    assert!(
        lib > 0 && lib_to_main >= 0.95,
        "only {:.1}% of plt_step samples reach main through via_plt:\n{}",
        lib_to_main * 100.0,
        stacks.missing(in_lib, |f| has(f, "main"))
    );

    // via_plt (with the stub and the library under it) against local_loop.
    let (plt, local) = (
        stacks.weight(|f| has(f, "via_plt")) as f64,
        stacks.weight(|f| has(f, "local_loop")) as f64,
    );
    let measured = 100.0 * plt / (plt + local);
    let (t_plt, t_local) = (
        truth_of(&stdout, "via_plt"),
        truth_of(&stdout, "local_loop"),
    );
    let truth = 100.0 * t_plt / (t_plt + t_local);
    assert!(
        (measured - truth).abs() <= 2.0,
        "via_plt {measured:.2}% of via_plt + local_loop, truth {truth:.2}%"
    );
    eprintln!(
        "plt: stub {:.1}% of samples, {:.1}% reach main; plt_step {:.1}% reach main; via_plt {measured:.2}% (truth {truth:.2}%)",
        100.0 * stub as f64 / stacks.weight(|_| true) as f64,
        stub_to_main * 100.0,
        lib_to_main * 100.0
    );
}

#[test]
fn cpp_exceptions_in_flight_unwind_to_main_and_split_matches_truth() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let work = excwork().to_str().unwrap();
    let _guard = serial();
    let dir = temp_dir("truth-exceptions");
    let data = dir.join("perf.data");
    let stdout = perf_record_dwarf(&data, &[work, "2"]);
    let data_str = data.to_str().unwrap();
    let stacks = Stacks::of(&data);

    // The functions sampled in the exception runtime (libgcc_s's unwinder,
    // libstdc++'s __cxa_throw and personality routine), named as the
    // folded stacks name them.
    let by_dso = report(&[
        "-i",
        data_str,
        "--sort",
        "dso,symbol",
        "--no-children",
        "--full-names",
    ]);
    let runtime: Vec<String> = by_dso
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let dso = cols.get(4)?;
            (dso.starts_with("libgcc_s") || dso.starts_with("libstdc++"))
                .then(|| cols[5..].join(" "))
        })
        .collect();
    let in_runtime = |f: &[String]| f.last().is_some_and(|l| runtime.contains(l));
    let (runtime_to_main, in_rt) = stacks.share(in_runtime, |f| has(f, "main"));
    let all = stacks.weight(|_| true);
    assert!(
        in_rt * 10 >= all,
        "under 10% of samples in the exception runtime:\n{by_dso}"
    );
    assert!(
        runtime_to_main >= 0.95,
        "only {:.1}% of samples in the exception runtime reach main:\n{}",
        runtime_to_main * 100.0,
        stacks.missing(in_runtime, |f| has(f, "main"))
    );
    // Raising: from the runtime back through the thrower and its callers.
    let raising = |f: &[String]| has(f, "_Unwind_RaiseException");
    let through = |f: &[String]| {
        has(f, "main") && has(f, "thrower(unsigned long)") && has(f, "level1(unsigned long)")
    };
    let (raising_through, _) = stacks.share(raising, through);
    assert!(
        raising_through >= 0.90,
        "only {:.1}% of _Unwind_RaiseException samples reach main through thrower and level1:\n{}",
        raising_through * 100.0,
        stacks.missing(raising, through)
    );
    let in_thrower = |f: &[String]| f.last().is_some_and(|l| l == "thrower(unsigned long)");
    let (thrower_to_main, _) = stacks.share(in_thrower, |f| has(f, "main"));
    assert!(thrower_to_main >= 0.95, "thrower samples do not reach main");

    let (throws, plain) = (
        stacks.weight(|f| has(f, "throw_path(long)")) as f64,
        stacks.weight(|f| has(f, "plain_work(long)")) as f64,
    );
    let measured = 100.0 * throws / (throws + plain);
    let (t_throws, t_plain) = (
        truth_of(&stdout, "throw_path"),
        truth_of(&stdout, "plain_work"),
    );
    let truth = 100.0 * t_throws / (t_throws + t_plain);
    assert!(
        (measured - truth).abs() <= 2.0,
        "throw_path {measured:.2}% of throw_path + plain_work, truth {truth:.2}%"
    );
    eprintln!(
        "exceptions: runtime leaf {:.1}% of samples, {:.1}% reach main; raising {:.1}% through thrower; throw_path {measured:.2}% (truth {truth:.2}%)",
        100.0 * in_rt as f64 / all as f64,
        runtime_to_main * 100.0,
        raising_through * 100.0
    );
}

/// The Rust workload's burn_a/burn_b split against its truth, and the
/// share of their samples reaching main.
fn assert_rust_split(data: &Path, stdout: &str) {
    let top = report(&[
        "-i",
        data.to_str().unwrap(),
        "--sort",
        "symbol",
        "--no-children",
    ]);
    let shares = self_shares(&top);
    let (a, b) = (
        share_of(&shares, "rswork::burn_a"),
        share_of(&shares, "rswork::burn_b"),
    );
    assert!(a + b > 50.0, "burn_a/burn_b hold too little:\n{top}");
    let measured = 100.0 * a / (a + b);
    let (t_a, t_b) = (truth_of(stdout, "burn_a"), truth_of(stdout, "burn_b"));
    let truth = 100.0 * t_a / (t_a + t_b);
    assert!(
        (measured - truth).abs() <= 2.0,
        "profile says burn_a {measured:.2}%, truth {truth:.2}%\n{top}"
    );
    let stacks = Stacks::of(data);
    let burning = |f: &[String]| has(f, "rswork::burn_a") || has(f, "rswork::burn_b");
    let to_main = |f: &[String]| has(f, "main") && has(f, "rswork::main");
    let (share, total) = stacks.share(burning, to_main);
    assert!(total > 0, "no burn samples");
    assert!(
        share >= 0.99,
        "only {:.1}% of burn samples reach main:\n{}",
        share * 100.0,
        stacks.missing(burning, to_main)
    );
    eprintln!(
        "rust: burn_a {measured:.2}% (truth {truth:.2}%), {:.2}% of burn samples reach main",
        share * 100.0
    );
}

#[test]
fn rust_release_binary_without_frame_pointers_matches_truth_and_reaches_main() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let work = rswork().to_str().unwrap();
    let _guard = serial();
    let dir = temp_dir("truth-rust");
    let data = dir.join("perf.data");
    let stdout = perf_record_dwarf(&data, &[work, "2"]);
    assert_rust_split(&data, &stdout);
}

#[test]
fn rprof_dwarf_recording_of_a_rust_binary_matches_truth() {
    require_perf!();
    let work = rswork().to_str().unwrap();
    let _guard = serial();
    let dir = temp_dir("truth-rust-rprof");
    let data = dir.join("rprof.data");
    let stdout = rprof_record_dwarf(&data, &[work, "2"]);
    assert_rust_split(&data, &stdout);
}

/// Debian's own python3 (`/usr/bin/python3`, not a pyenv or venv shim):
/// built by the distro without frame pointers, stripped, its unwind tables
/// in `.eh_frame` only.
const DISTRO_PYTHON: &str = "/usr/bin/python3";

#[test]
fn distro_python_without_frame_pointers_reaches_its_entry_and_agrees_with_perf() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    assert!(
        Path::new(DISTRO_PYTHON).exists(),
        "{DISTRO_PYTHON} is missing (apt-get install python3)"
    );
    let _guard = serial();
    let dir = temp_dir("truth-python");
    let data = dir.join("perf.data");
    let script = "import time\n\
                  def inner(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n\
                  def outer(end):\n    while time.monotonic() < end:\n        inner(10000)\n\
                  outer(time.monotonic() + 2.5)\n";
    perf_record_dwarf(&data, &[DISTRO_PYTHON, "-c", script]);
    let data_str = data.to_str().unwrap();

    // The binary is stripped: its `main` has no name, but main's callee
    // Py_BytesMain is exported. Every stack but those of the loader's start
    // (before main) should get there.
    let stacks = Stacks::of(&data);
    let python = |f: &[String]| f.first().is_some_and(|c| c.starts_with("python3"));
    let rooted = |f: &[String]| has(f, "Py_BytesMain") || has(f, "main") || has(f, "start_thread");
    let (share, total) = stacks.share(python, rooted);
    assert!(total > 0, "no python3 samples");
    assert!(
        share >= 0.95,
        "only {:.1}% of python3 samples reach Py_BytesMain:\n{}",
        share * 100.0,
        stacks.missing(python, rooted)
    );

    // The same file through perf: the top functions by self share (the
    // named ones; perf prints unnamed addresses differently) agree.
    let perf = perf_succeeded(
        run_linux_perf([
            "report",
            "-i",
            data_str,
            "--stdio",
            "--no-children",
            "--sort",
            "symbol",
            "-g",
            "none",
        ]),
        "perf report",
    );
    let perf_rows: Vec<(String, f64)> = perf_report_rows(&perf)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("0x"))
        .take(5)
        .collect();
    assert!(perf_rows.len() >= 3, "{perf}");
    let ours = self_shares(&report(&[
        "-i",
        data_str,
        "--sort",
        "symbol",
        "--no-children",
    ]));
    for (name, perf_share) in &perf_rows {
        let share = share_of(&ours, name);
        assert!(
            (share - perf_share).abs() <= 1.0,
            "{name}: rprof {share:.2}%, perf {perf_share:.2}%\nperf: {perf_rows:?}\nrprof: {:?}",
            &ours[..ours.len().min(10)]
        );
    }
    let our_top = ours.iter().find(|(name, _)| !name.contains("+0x"));
    assert_eq!(
        perf_rows.first().map(|r| &r.0),
        our_top.map(|r| &r.0),
        "top function differs: perf {perf_rows:?}, rprof {:?}",
        &ours[..ours.len().min(5)]
    );
    eprintln!(
        "python: {:.2}% of samples reach Py_BytesMain; perf's top {perf_rows:?}",
        share * 100.0
    );
}
