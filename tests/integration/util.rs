//! Shared helpers for the integration tests: building the C workloads,
//! running rprof, and the skip rule for perf_event_open.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

#[path = "../support/kernel_wide.rs"]
mod kernel_wide;
/// Tests that record system-wide hold `KernelWide::system_wide()`; tests run
/// Linux perf only through `run_linux_perf` (see tests/support/kernel_wide.rs).
pub use kernel_wide::{
    run_linux_perf, run_linux_perf_holding, run_linux_perf_with_stdin, KernelWide,
};

/// Recordings are run one at a time: two CPU burners on a 2-core VM would
/// make each other's timings and sample rates noisy. Take it before
/// `KernelWide`, never after.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn rprof_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rprof"))
}

/// Runs rprof, its report widths not taken from the caller's COLUMNS.
pub fn rprof(args: &[&str]) -> Output {
    rprof_command().args(args).output().expect("run rprof")
}

/// A `Command` for rprof without the caller's COLUMNS (which would narrow
/// every table).
pub fn rprof_command() -> Command {
    let mut command = Command::new(rprof_bin());
    command.env_remove("COLUMNS");
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh directory under the cargo target dir for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Frame-pointer build flags for the workloads.
pub const FP_FLAGS: &[&str] = &[
    "-O2",
    "-g",
    "-fno-omit-frame-pointer",
    "-mno-omit-leaf-frame-pointer",
];

/// Builds without frame pointers: only DWARF CFI can unwind them.
pub const NO_FP_FLAGS: &[&str] = &["-O2", "-g", "-fomit-frame-pointer"];

/// The compiled workloads (built once per test run).
pub struct Workloads {
    pub work: PathBuf,
    pub dlwork: PathBuf,
}

pub fn workloads() -> &'static Workloads {
    static BUILT: OnceLock<Workloads> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workloads");
        std::fs::create_dir_all(&dir).expect("workload dir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads");
        let work = dir.join("work");
        let dlwork = dir.join("libdlwork.so");
        cc(&[&src.join("work.c")], &work, &["-ldl", "-pthread", "-lm"]);
        cc(&[&src.join("dlwork.c")], &dlwork, &["-shared", "-fPIC"]);
        Workloads { work, dlwork }
    })
}

/// The workloads built with [`NO_FP_FLAGS`] (once per test run).
pub fn workloads_no_fp() -> &'static Workloads {
    static BUILT: OnceLock<Workloads> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workloads-nofp");
        std::fs::create_dir_all(&dir).expect("workload dir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads");
        let work = dir.join("work");
        let dlwork = dir.join("libdlwork.so");
        cc_with(
            NO_FP_FLAGS,
            &[&src.join("work.c")],
            &work,
            &["-ldl", "-pthread", "-lm"],
        );
        cc_with(
            NO_FP_FLAGS,
            &[&src.join("dlwork.c")],
            &dlwork,
            &["-shared", "-fPIC"],
        );
        Workloads { work, dlwork }
    })
}

pub fn cc(sources: &[&Path], out: &Path, extra: &[&str]) {
    cc_with(FP_FLAGS, sources, out, extra);
}

pub fn cc_with(flags: &[&str], sources: &[&Path], out: &Path, extra: &[&str]) {
    let status = Command::new("cc")
        .args(flags)
        .args(sources)
        .arg("-o")
        .arg(out)
        .args(extra)
        .status()
        .expect("run cc (install gcc)");
    assert!(status.success(), "cc failed for {}", out.display());
}

/// Whether this test may skip when perf_event_open is refused: only when
/// RPROF_REQUIRE_PERF is unset (CI sets it, so there the tests must run).
pub fn perf_events_usable() -> bool {
    let paranoid = rprof::sys::perf_event_paranoid().unwrap_or(2);
    let usable = rprof::sys::is_root() || paranoid <= 1;
    if !usable && std::env::var_os("RPROF_REQUIRE_PERF").is_some() {
        panic!("perf_event_open is not usable (paranoid={paranoid}, not root) but RPROF_REQUIRE_PERF is set");
    }
    usable
}

/// The stdout of a Linux perf run that must have succeeded.
pub fn perf_succeeded(output: std::io::Result<Output>, what: &str) -> String {
    let output = output.unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Whether Linux perf can be used for cross-checks (required under RPROF_REQUIRE_PERF).
pub fn linux_perf_available() -> bool {
    let ok = run_linux_perf(["--version"]).is_ok_and(|o| o.status.success());
    if !ok && std::env::var_os("RPROF_REQUIRE_PERF").is_some() {
        panic!("Linux perf is not installed but RPROF_REQUIRE_PERF is set (apt-get install linux-perf)");
    }
    ok
}

macro_rules! require_perf {
    () => {
        if !$crate::util::perf_events_usable() {
            eprintln!("skipped: perf_event_open not permitted here (set RPROF_REQUIRE_PERF=1 to fail instead)");
            return;
        }
    };
}
pub(crate) use require_perf;

/// Starts `WORK MODE SECS` (a mode that prints `ready PID`) and returns it
/// with its pid once it is running.
pub fn spawn_workload(work: &Path, mode: &str, secs: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(work)
        .args([mode, secs])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start workload");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the ready line");
    let pid = line
        .trim()
        .strip_prefix("ready ")
        .expect("ready line")
        .to_string();
    (child, pid)
}

/// Parses `truth name=NS name=NS` lines from a workload's stdout.
pub fn truth(stdout: &str) -> Vec<(String, f64)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("truth "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|kv| {
            kv.split_once('=')
                .and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        })
        .collect()
}

/// burn_a's share of burn_a + burn_b (percent) in a `work split` run's
/// printed truth.
pub fn truth_split(stdout: &str) -> f64 {
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

/// Asserts that a `--sort symbol --no-children` table splits burn_a and
/// burn_b within 2 points of the workload's truth.
pub fn assert_split_matches_truth(top: &str, workload_stdout: &str) {
    let shares = self_shares(top);
    let (a, b) = (share_of(&shares, "burn_a"), share_of(&shares, "burn_b"));
    assert!(a + b > 50.0, "burn_a/burn_b hold too little: {top}");
    let measured = 100.0 * a / (a + b);
    let truth = truth_split(workload_stdout);
    assert!(
        (measured - truth).abs() <= 2.0,
        "profile says burn_a {measured:.2}%, truth {truth:.2}%\n{top}"
    );
}

/// Parses folded output into (stack, count) pairs.
pub fn folded(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            l.rsplit_once(' ')
                .and_then(|(s, c)| Some((s.to_string(), c.parse().ok()?)))
        })
        .collect()
}

/// Self share (percent) per symbol from `report --sort symbol --no-children`.
pub fn self_shares(top: &str) -> Vec<(String, f64)> {
    top.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 5 {
                return None;
            }
            let self_pct: f64 = cols[1].trim_end_matches('%').parse().ok()?;
            Some((cols[4..].join(" "), self_pct))
        })
        .collect()
}

/// (symbol, share) rows of `perf report --stdio`: in `  74.78%  [.] burn_a
/// ...` the symbol follows the [.]/[k] marker.
pub fn perf_report_rows(stdout: &str) -> Vec<(String, f64)> {
    stdout
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
        .collect()
}

/// The summed share of the rows named `name`.
pub fn share_of(shares: &[(String, f64)], name: &str) -> f64 {
    shares
        .iter()
        .filter(|(s, _)| s == name)
        .map(|(_, p)| *p)
        .sum()
}

/// A copy of rprof that `nobody` can run, in a world-writable directory
/// for its output: the checkout may sit under a private home. Removed on drop.
pub struct NobodyRprof {
    pub dir: PathBuf,
    binary: PathBuf,
}

impl NobodyRprof {
    pub fn new(name: &str) -> NobodyRprof {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rprof-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let binary = dir.join("rprof");
        std::fs::copy(rprof_bin(), &binary).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        NobodyRprof { dir, binary }
    }

    /// `WRAPPER... setpriv (as nobody) rprof ARGS`; the wrapper may set
    /// limits (`prlimit --memlock=0:0`), which the uid change keeps.
    pub fn run(&self, wrapper: &[&str], args: &[&str]) -> Output {
        let (program, wrapper_args) = match wrapper.split_first() {
            Some((program, rest)) => (*program, rest),
            None => ("setpriv", &[][..]),
        };
        let mut command = Command::new(program);
        command.args(wrapper_args);
        if !wrapper.is_empty() {
            command.arg("setpriv");
        }
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(&self.binary)
            .args(args)
            .output()
            .expect("setpriv (util-linux)")
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_string()
    }
}

impl Drop for NobodyRprof {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `samples: N` from the summary line.
pub fn summary_samples(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("[ rprof record:"))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    line["[ rprof record: ".len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}
