//! `rprof report --format pprof` read by the reference reader, `go tool
//! pprof` (Debian's golang-go), and by rprof's own `decode`: real
//! recordings of the ground-truth workload.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rprof::output::pprof::{decode, proto};

use crate::util::*;

/// Whether `go tool pprof` can run: tests skip without it, unless
/// RPROF_REQUIRE_PERF is set (CI), where a missing `go` fails.
pub(crate) fn go_pprof_available() -> bool {
    let ok = Command::new("go")
        .args(["tool", "pprof", "-h"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok && std::env::var_os("RPROF_REQUIRE_PERF").is_some() {
        panic!(
            "`go tool pprof` is missing but RPROF_REQUIRE_PERF is set (apt-get install golang-go)"
        );
    }
    ok
}

macro_rules! require_go_pprof {
    () => {
        if !go_pprof_available() {
            eprintln!("skipped: `go tool pprof` not installed (apt-get install golang-go)");
            return;
        }
    };
}

/// `go tool pprof ARGS`, which must succeed; its stdout.
pub(crate) fn go_pprof(args: &[&str]) -> String {
    let output = Command::new("go")
        .arg("tool")
        .arg("pprof")
        .args(args)
        // No symbolization from this machine's files: what is shown must
        // come from the profile.
        .env("PPROF_BINARY_PATH", "/nonexistent")
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run go tool pprof");
    assert!(
        output.status.success(),
        "go tool pprof {args:?} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// A recording of `work MODE SECS` with `-g`, and its pprof.
struct Recorded {
    data: PathBuf,
    pprof: PathBuf,
    stdout: String,
}

fn record_to_pprof(name: &str, work_args: &[&str], flags: &[&str]) -> Recorded {
    let dir = temp_dir(&format!("pprof-{name}"));
    let data = dir.join(format!("{name}.data"));
    let pprof = dir.join(format!("{name}.pb.gz"));
    let w = workloads();
    let mut argv = vec!["record"];
    argv.extend_from_slice(flags);
    argv.extend(["-o", data.to_str().unwrap(), "--", w.work.to_str().unwrap()]);
    argv.extend_from_slice(work_args);
    let run = rprof(&argv);
    assert!(run.status.success(), "record failed: {}", text(&run.stderr));
    let report = rprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--format",
        "pprof",
        "-o",
        pprof.to_str().unwrap(),
    ]);
    assert!(
        report.status.success(),
        "report --format pprof failed: {}",
        text(&report.stderr)
    );
    Recorded {
        data,
        pprof,
        stdout: text(&run.stdout),
    }
}

/// `work split 2` (burn_a:burn_b = 3:1), recorded once for these tests.
fn split() -> &'static Recorded {
    static DONE: OnceLock<Recorded> = OnceLock::new();
    DONE.get_or_init(|| record_to_pprof("split", &["split", "2"], &["-g"]))
}

/// `work inline 1` (mix_inline always inlined into inline_host).
fn inline() -> &'static Recorded {
    static DONE: OnceLock<Recorded> = OnceLock::new();
    DONE.get_or_init(|| record_to_pprof("inline", &["inline", "1"], &["-g"]))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// (function, flat %) rows of `go tool pprof -top`.
fn go_top_flat(top: &str) -> Vec<(String, f64)> {
    top.lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 6 {
                return None;
            }
            let flat: f64 = cols[1].trim_end_matches('%').parse().ok()?;
            Some((cols[5..].join(" "), flat))
        })
        .collect()
}

#[test]
fn pprof_top_agrees_with_rprof_top_and_the_ground_truth() {
    require_perf!();
    require_go_pprof!();
    let _guard = serial();
    let rec = split();
    let go_top = go_pprof(&["-top", "-nodecount=100", path(&rec.pprof)]);
    assert!(go_top.contains("Type: cpu"), "{go_top}");
    let go = go_top_flat(&go_top);
    let top = rprof(&[
        "report",
        "-i",
        path(&rec.data),
        "--sort",
        "symbol",
        "--no-children",
    ]);
    let ours = self_shares(&text(&top.stdout));
    for function in ["burn_a", "burn_b"] {
        let (theirs, mine) = (share_of(&go, function), share_of(&ours, function));
        assert!(
            (theirs - mine).abs() <= 0.5,
            "{function}: go tool pprof {theirs:.2}%, rprof top {mine:.2}%\n{go_top}"
        );
    }
    // The top two functions are the same, in the same order.
    assert_eq!(go[0].0, "burn_a", "{go_top}");
    assert_eq!(go[1].0, "burn_b", "{go_top}");
    let (a, b) = (share_of(&go, "burn_a"), share_of(&go, "burn_b"));
    let measured = 100.0 * a / (a + b);
    let truth = truth_split(&rec.stdout);
    assert!(
        (measured - truth).abs() <= 3.0,
        "go tool pprof says burn_a {measured:.2}% of burn_a+burn_b, truth {truth:.2}%\n{go_top}"
    );
}

#[test]
fn pprof_traces_show_call_stacks_down_from_main() {
    require_perf!();
    require_go_pprof!();
    let _guard = serial();
    let traces = go_pprof(&["-traces", path(&split().pprof)]);
    // Traces list the leaf first, one frame a line, blocks split by dashes.
    let blocks: Vec<Vec<String>> = traces
        .split("-----------+")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.contains(':') && !l.trim().chars().all(|c| c == '-'))
                .map(|l| l.split_whitespace().last().unwrap_or("").to_string())
                .collect()
        })
        .collect();
    let burn_a: Vec<&Vec<String>> = blocks
        .iter()
        .filter(|frames| frames.first().map(String::as_str) == Some("burn_a"))
        .collect();
    assert!(
        !burn_a.is_empty(),
        "no trace with burn_a as leaf:\n{traces}"
    );
    assert!(
        burn_a
            .iter()
            .any(|frames| frames.iter().any(|f| f == "main")),
        "no trace burn_a <- ... <- main:\n{traces}"
    );
}

#[test]
fn pprof_raw_shows_types_period_labels_and_mappings_with_build_ids() {
    require_perf!();
    require_go_pprof!();
    let _guard = serial();
    let rec = split();
    let raw = go_pprof(&["-raw", path(&rec.pprof)]);
    assert!(raw.contains("PeriodType: cpu nanoseconds"), "{raw}");
    assert!(
        raw.lines()
            .any(|l| l.trim() == "samples/count cpu/nanoseconds[dflt]"),
        "{raw}"
    );
    // record's default rate, 4000 Hz: one sample per 250 us.
    assert!(raw.contains("Period: 250000"), "{raw}");
    for label in ["pid:[", "tid:[", "comm:[work]", "thread_comm:[work]"] {
        assert!(raw.contains(label), "no {label} label:\n{raw}");
    }
    let work = &workloads().work;
    let build_id = {
        use object::Object;
        let bytes = std::fs::read(work).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let id = file
            .build_id()
            .unwrap()
            .expect("the workload has a build id");
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let mappings = raw.split("Mappings").nth(1).expect("a Mappings section");
    let work_mapping = mappings
        .lines()
        .find(|l| l.contains(path(work)))
        .unwrap_or_else(|| panic!("no mapping of {}:\n{mappings}", work.display()));
    assert!(
        work_mapping.contains(&build_id),
        "mapping without build id {build_id}: {work_mapping}"
    );
    assert!(
        work_mapping.contains("[FN][FL][LN][IN]"),
        "the workload is symbolized down to inline frames: {work_mapping}"
    );
    assert!(
        mappings.contains("[kernel.kallsyms]"),
        "the kernel has a mapping:\n{mappings}"
    );
    // mapping[0] is the main binary.
    let first = mappings
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        first.starts_with("1: ") && first.contains(path(work)),
        "{mappings}"
    );
}

#[test]
fn pprof_lists_the_inlined_helper_within_its_caller() {
    require_perf!();
    require_go_pprof!();
    let _guard = serial();
    let rec = inline();
    let traces = go_pprof(&["-traces", path(&rec.pprof)]);
    let lines: Vec<&str> = traces.lines().map(str::trim).collect();
    let inlined = lines
        .iter()
        .position(|l| l.ends_with("mix_inline (inline)"))
        .unwrap_or_else(|| panic!("mix_inline not shown as inlined:\n{traces}"));
    assert_eq!(
        lines.get(inlined + 1).copied(),
        Some("inline_host"),
        "the inlined helper's caller follows it:\n{traces}"
    );
    // One location holds both: line[0] mix_inline, line[1] inline_host.
    let raw = go_pprof(&["-raw", path(&rec.pprof)]);
    let raw_lines: Vec<&str> = raw.lines().collect();
    let at = raw_lines
        .iter()
        .position(|l| l.contains(" mix_inline ") && l.contains("M="))
        .unwrap_or_else(|| panic!("no location of mix_inline:\n{raw}"));
    assert!(
        raw_lines[at + 1].trim_start().starts_with("inline_host "),
        "{}\n{}",
        raw_lines[at],
        raw_lines[at + 1]
    );
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET PATH` from 127.0.0.1:PORT; the whole response, or None if nothing
/// listens yet.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    Some(text(&response))
}

/// Kills the child on drop (a failed assertion must not leave it running).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pprof_web_ui_serves_the_profile() {
    require_perf!();
    require_go_pprof!();
    let _guard = serial();
    let rec = split();
    let port = free_port();
    let child = Command::new("go")
        .args(["tool", "pprof", "-no_browser"])
        .arg(format!("-http=127.0.0.1:{port}"))
        .arg(&rec.pprof)
        .env("PPROF_BINARY_PATH", "/nonexistent")
        .env("HOME", std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start go tool pprof -http");
    let _server = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        if let Some(page) = http_get(port, "/ui/top") {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "go tool pprof -http did not serve on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("burn_a"), "no burn_a on /ui/top:\n{page}");
}

#[test]
fn pprof_diff_base_compares_two_rprof_profiles() {
    require_perf!();
    require_go_pprof!();
    let _guard = serial();
    let (before, after) = (split(), inline());
    let diff = go_pprof(&[
        "-top",
        "-nodecount=100",
        "-diff_base",
        path(&before.pprof),
        path(&after.pprof),
    ]);
    assert!(diff.contains("Type: cpu"), "{diff}");
    // What only the base has got smaller (a negative flat time), what only
    // the new one has got larger.
    let flat = |name: &str| {
        diff.lines()
            .find(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() >= 6 && cols[5] == name
            })
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {name} row:\n{diff}"))
            .to_string()
    };
    assert!(flat("burn_a").starts_with('-'), "{diff}");
    assert!(!flat("mix_inline").starts_with('-'), "{diff}");
}

#[test]
fn pprof_of_a_real_recording_decodes_with_the_invariants() {
    require_perf!();
    let _guard = serial();
    let rec = split();
    let bytes = std::fs::read(&rec.pprof).unwrap();
    let p = decode(&bytes).expect("rprof's decode reads its own pprof");
    assert_eq!(p.string_table[0], "");
    let unique = |ids: Vec<u64>| {
        assert!(ids.iter().all(|&id| id != 0), "an id is 0");
        let set: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(set.len(), ids.len(), "ids repeat");
        set
    };
    let mappings = unique(p.mapping.iter().map(|m| m.id).collect());
    let locations = unique(p.location.iter().map(|l| l.id).collect());
    let functions = unique(p.function.iter().map(|f| f.id).collect());
    assert!(p
        .location
        .iter()
        .all(|l| l.mapping_id == 0 || mappings.contains(&l.mapping_id)));
    assert!(p
        .location
        .iter()
        .flat_map(|l| &l.line)
        .all(|line| functions.contains(&line.function_id)));
    let name_of = |location: u64| -> Option<&str> {
        let location = p.location.iter().find(|l| l.id == location)?;
        let line = location.line.last()?;
        let function = p.function.iter().find(|f| f.id == line.function_id)?;
        Some(p.string_table[function.name as usize].as_str())
    };
    let mut burn_a_leaf = 0;
    for sample in &p.sample {
        assert_eq!(sample.value.len(), p.sample_type.len());
        assert!(sample.location_id.iter().all(|id| locations.contains(id)));
        // Leaf first: main is never the leaf of a burn_a stack.
        let names: Vec<Option<&str>> = sample.location_id.iter().map(|&l| name_of(l)).collect();
        if let Some(a) = names.iter().position(|n| *n == Some("burn_a")) {
            let main = names.iter().position(|n| *n == Some("main"));
            assert!(!matches!(main, Some(m) if m < a), "{names:?}");
            if a == 0 {
                burn_a_leaf += sample.value[0];
            }
        }
    }
    assert!(burn_a_leaf > 0, "no sample with burn_a as its leaf");
    // Every sample of the recording is there once.
    let total: i64 = p.sample.iter().map(|s| s.value[0]).sum();
    let header = text(&rprof(&["report", "-i", path(&rec.data), "-n", "1"]).stdout);
    let samples = header
        .lines()
        .find_map(|l| l.strip_prefix("# Event: cpu-clock (weight unit: ns), "))
        .and_then(|rest| rest.split(' ').next())
        .map(|n| n.replace(',', ""))
        .expect("event line");
    assert_eq!(total.to_string(), samples, "{header}");
    assert!(
        p.time_nanos > 1_600_000_000_000_000_000,
        "time_nanos is a date"
    );
    assert!(
        p.duration_nanos > 1_000_000_000,
        "the 2 s run lasted over 1 s"
    );
}

#[test]
fn pprof_into_a_pipe_equals_pprof_into_a_file() {
    require_perf!();
    let _guard = serial();
    let rec = split();
    let piped = rprof(&["report", "-i", path(&rec.data), "--format", "pprof"]);
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    let from_pipe = decode(&piped.stdout).expect("gzip pprof on stdout");
    let from_file = decode(&std::fs::read(&rec.pprof).unwrap()).unwrap();
    assert_eq!(from_pipe.sample, from_file.sample);
    assert_eq!(from_pipe.location, from_file.location);
}

#[test]
fn pprof_carries_every_event_and_go_pprof_picks_one() {
    require_perf!();
    require_go_pprof!();
    let _guard = serial();
    let rec = record_to_pprof(
        "events",
        &["split", "1"],
        &["-g", "-e", "cpu-clock,page-faults"],
    );
    let raw = go_pprof(&["-raw", path(&rec.pprof)]);
    assert!(
        raw.lines()
            .any(|l| l.trim() == "samples/count cpu/nanoseconds[dflt] page-faults/count"),
        "{raw}"
    );
    assert!(raw.contains("event:[page-faults]"), "{raw}");
    let faults = go_pprof(&["-top", "-sample_index=page-faults", path(&rec.pprof)]);
    assert!(faults.contains("Type: page-faults"), "{faults}");
    // --event keeps one: its columns only.
    let one = rprof(&[
        "report",
        "-i",
        path(&rec.data),
        "--format",
        "pprof",
        "--event",
        "page-faults",
    ]);
    assert!(one.status.success(), "{}", text(&one.stderr));
    let p: proto::Profile = decode(&one.stdout).unwrap();
    let types: Vec<&str> = p
        .sample_type
        .iter()
        .map(|t| p.string_table[t.r#type as usize].as_str())
        .collect();
    assert_eq!(types, ["samples", "page-faults"]);
}

#[test]
fn pprof_of_an_off_cpu_recording_is_in_off_cpu_nanoseconds() {
    require_perf!();
    require_go_pprof!();
    let _guard = serial();
    let dir = temp_dir("pprof-offcpu");
    let data = dir.join("offcpu.data");
    let run = rprof(&[
        "record",
        "--off-cpu",
        "-g",
        "-o",
        path(&data),
        "--",
        "sh",
        "-c",
        "sleep 0.3; sleep 0.3",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let pprof = dir.join("offcpu.pb.gz");
    let report = rprof(&[
        "report",
        "-i",
        path(&data),
        "--format",
        "pprof",
        "-o",
        path(&pprof),
    ]);
    assert!(report.status.success(), "{}", text(&report.stderr));
    let raw = go_pprof(&["-raw", path(&pprof)]);
    assert!(
        raw.lines()
            .any(|l| l.trim() == "samples/count off-cpu/nanoseconds[dflt]"),
        "{raw}"
    );
    let top = go_pprof(&["-top", path(&pprof)]);
    assert!(top.contains("Type: off-cpu"), "{top}");
    // The shell waits 0.6 s for its sleeps, which sleep 0.3 s each: about
    // 1.2 s blocked in all (less what a busy machine leaves unsampled).
    let total = decode(&std::fs::read(&pprof).unwrap())
        .unwrap()
        .sample
        .iter()
        .map(|s| s.value[1])
        .sum::<i64>();
    assert!(
        (500_000_000..3_000_000_000).contains(&total),
        "off-CPU total {total} ns\n{top}"
    );
}

#[test]
fn pprof_is_never_written_to_a_terminal() {
    use std::os::fd::AsFd;
    let dir = temp_dir("pprof-terminal");
    let data = dir.join("none.data");
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let terminal: std::fs::File = pty.slave.try_clone().unwrap().into();
    let run = rprof_command()
        .args(["report", "-i", path(&data), "--format", "pprof"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(terminal))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    drop(pty.slave);
    let _ = pty.master.as_fd();
    let mut master: std::fs::File = pty.master.into();
    let mut shown = Vec::new();
    // Reading the master after the slave closed ends with EIO.
    let _ = master.read_to_end(&mut shown);
    assert!(!run.status.success());
    assert!(shown.is_empty(), "the terminal got {} bytes", shown.len());
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("-o FILE") && stderr.contains("pipe"),
        "{stderr}"
    );
}

/// A cgroup made for one test in the perf_event hierarchy (cgroup v2 on
/// current systems), removed on drop once its processes are gone.
struct TestCgroup {
    dir: PathBuf,
    /// As the kernel names it: from the hierarchy's root.
    path: String,
}

impl TestCgroup {
    /// `None` when no cgroup can be made here (no cgroup file system, or
    /// not writable: not root, a read-only container mount).
    fn create(name: &str) -> Option<TestCgroup> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = rprof::procfs::perf_event_cgroup_mount(&info)?;
        let dir = mount.mountpoint.join(name);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).ok()?;
        let path = format!("{}/{name}", mount.root.trim_end_matches('/'));
        Some(TestCgroup { dir, path })
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // The last process may still be exiting: rmdir says EBUSY until then.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

/// The string value of label `key`, or its number.
fn label<'p>(p: &'p proto::Profile, sample: &proto::Sample, key: &str) -> Option<&'p str> {
    sample
        .label
        .iter()
        .find(|l| p.string_table[l.key as usize] == key && l.str != 0)
        .map(|l| p.string_table[l.str as usize].as_str())
}

fn num_label(p: &proto::Profile, sample: &proto::Sample, key: &str) -> Option<i64> {
    sample
        .label
        .iter()
        .find(|l| p.string_table[l.key as usize] == key && l.str == 0)
        .map(|l| l.num)
}

#[test]
fn label_cgroup_names_each_workloads_cgroup_with_its_share_of_cpu_time() {
    require_perf!();
    let _guard = serial();
    let _kernel = KernelWide::system_wide();
    let pid = std::process::id();
    let made = (
        TestCgroup::create(&format!("rprof-test-{pid}-a")),
        TestCgroup::create(&format!("rprof-test-{pid}-b")),
    );
    let (Some(a), Some(b)) = made else {
        assert!(
            std::env::var_os("RPROF_REQUIRE_PERF").is_none(),
            "cannot create a cgroup under the cgroup file system, but RPROF_REQUIRE_PERF is set"
        );
        eprintln!("skipped: cannot create cgroups here (cgroup v2 not mounted or not writable)");
        return;
    };
    let dir = temp_dir("pprof-cgroup");
    // `work split` in each cgroup, side by side: each shell moves itself
    // in, then becomes the workload, so all of its CPU time is in there.
    let script = dir.join("two-cgroups.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         in_cgroup() { sh -c 'echo $$ > \"$1/cgroup.procs\" && echo pid $$ && shift && exec \"$@\"' sh \"$@\"; }\n\
         in_cgroup \"$2\" \"$1\" split 1.6 > \"$4/a.out\" &\n\
         in_cgroup \"$3\" \"$1\" split 0.8 > \"$4/b.out\" &\n\
         wait\n",
    )
    .unwrap();
    let data = dir.join("cgroup.data");
    let pprof = dir.join("cgroup.pb.gz");
    let run = rprof(&[
        "record",
        "-a",
        "--label-cgroup",
        "-o",
        path(&data),
        "--",
        "sh",
        path(&script),
        path(&workloads().work),
        path(&a.dir),
        path(&b.dir),
        path(&dir),
    ]);
    assert!(run.status.success(), "record failed: {}", text(&run.stderr));
    let report = rprof(&[
        "report",
        "-i",
        path(&data),
        "--format",
        "pprof",
        "-o",
        path(&pprof),
    ]);
    assert!(report.status.success(), "{}", text(&report.stderr));

    // Each workload's pid and the CPU time it measured itself.
    let measured = |file: &str| -> (i64, f64) {
        let out = std::fs::read_to_string(dir.join(file)).unwrap();
        let pid = out
            .lines()
            .find_map(|l| l.strip_prefix("pid ")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no pid line in {file}: {out}"));
        (pid, truth(&out).iter().map(|(_, ns)| ns).sum())
    };
    let ((pid_a, truth_a), (pid_b, truth_b)) = (measured("a.out"), measured("b.out"));
    assert!(truth_a > 0.0 && truth_b > 0.0, "{truth_a} {truth_b}");

    let p = decode(&std::fs::read(&pprof).unwrap()).unwrap();
    let mut weight = std::collections::HashMap::<&str, i64>::new();
    let mut cgroups_of_pid = std::collections::HashMap::<i64, HashSet<&str>>::new();
    for sample in &p.sample {
        let pid = num_label(&p, sample, "pid").unwrap();
        let cgroup = label(&p, sample, "cgroup");
        let ours = cgroup.is_some_and(|c| c == a.path || c == b.path);
        // Other tests on the host may run `work` too: the workloads are
        // told by their pids. Before its exec, each was a shell still in
        // the parent cgroup: its samples with the name `work` count.
        if pid != pid_a && pid != pid_b {
            assert!(!ours, "pid {pid} is not in {cgroup:?}");
            continue;
        }
        if label(&p, sample, "thread_comm") != Some("work") {
            continue;
        }
        let cgroup = cgroup.unwrap_or_else(|| {
            panic!(
                "a work sample without a cgroup path (id {:?})",
                num_label(&p, sample, "cgroup_id")
            )
        });
        *weight.entry(cgroup).or_default() += sample.value[1];
        cgroups_of_pid.entry(pid).or_default().insert(cgroup);
    }
    // Each workload's samples carry its own cgroup, and only that one.
    let only = |pid: i64| {
        cgroups_of_pid
            .get(&pid)
            .map(|c| c.iter().copied().collect::<Vec<_>>())
    };
    assert_eq!(
        only(pid_a),
        Some(vec![a.path.as_str()]),
        "{cgroups_of_pid:?}"
    );
    assert_eq!(
        only(pid_b),
        Some(vec![b.path.as_str()]),
        "{cgroups_of_pid:?}"
    );
    let (wa, wb) = (
        weight.get(a.path.as_str()).copied().unwrap_or(0) as f64,
        weight.get(b.path.as_str()).copied().unwrap_or(0) as f64,
    );
    assert!(wa > 0.0 && wb > 0.0, "{weight:?} ({} {})", a.path, b.path);
    let (share, truth_share) = (
        100.0 * wa / (wa + wb),
        100.0 * truth_a / (truth_a + truth_b),
    );
    assert!(
        (share - truth_share).abs() <= 5.0,
        "cgroup a has {share:.1}% of the work samples, its workload measured {truth_share:.1}% \
         ({weight:?})"
    );
    // Each cgroup's weight is its workload's CPU time, roughly.
    for (measured, truth) in [(wa, truth_a), (wb, truth_b)] {
        assert!(
            (measured / truth - 1.0).abs() <= 0.15,
            "{measured} ns sampled, {truth} ns measured"
        );
    }

    // The reference reader sees the labels too.
    if go_pprof_available() {
        let tags = go_pprof(&["-tags", path(&pprof)]);
        assert!(tags.contains("cgroup: Total"), "{tags}");
        assert!(tags.contains(&a.path) && tags.contains(&b.path), "{tags}");
    }
    // And Linux perf names the cgroups of rprof's file (run under the lock
    // this test holds: taking the shared one would wait for ourselves).
    let perf_runs =
        run_linux_perf_holding(&_kernel, ["--version"]).is_ok_and(|o| o.status.success());
    assert!(
        perf_runs || std::env::var_os("RPROF_REQUIRE_PERF").is_none(),
        "Linux perf is not installed but RPROF_REQUIRE_PERF is set"
    );
    if perf_runs {
        let by_cgroup = perf_succeeded(
            run_linux_perf_holding(
                &_kernel,
                ["report", "-i", path(&data), "--sort", "cgroup", "--stdio"],
            ),
            "perf report --sort cgroup",
        );
        assert!(
            by_cgroup.contains(&a.path) && by_cgroup.contains(&b.path),
            "{by_cgroup}"
        );
    }
}
