//! Continuous recording (`record --rotate`): real recordings split into
//! interval files, checked against the workload's own CPU time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rprof::perfdata::format::feature;
use rprof::perfdata::{PerfFile, Record};

use crate::util::*;

/// The finished interval files in `dir`, oldest first (names sort by
/// start time, then sequence).
fn interval_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("rprof-") && name.ends_with(".data")
        })
        .collect();
    files.sort();
    files
}

/// (time, period) of every sample of the workload in one file.
fn samples(file: &Path) -> Vec<(u64, u64)> {
    let data = PerfFile::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        data.warnings().is_empty(),
        "{}: {:?}",
        file.display(),
        data.warnings()
    );
    assert!(
        data.feature(feature::RPROF_SYMBOLS).is_some(),
        "{}: symbols not embedded",
        file.display()
    );
    data.records()
        .filter_map(|r| match r {
            Record::Sample(s) => Some((s.time, s.period)),
            _ => None,
        })
        .collect()
}

fn folded_of(file: &Path) -> String {
    let run = rprof(&["report", "-i", file.to_str().unwrap(), "--format", "folded"]);
    assert!(
        run.status.success(),
        "{}: {}",
        file.display(),
        text(&run.stderr)
    );
    text(&run.stdout)
}

#[test]
fn rotate_splits_a_recording_into_complete_files_without_losing_or_repeating_samples() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("rotate-time").join("out/");
    // 1 ms of CPU per sample: the samples' periods add up to CPU time.
    let run = rprof_command()
        .args(["record", "-v", "-g", "-c", "1000000", "--rotate", "150ms"])
        .arg("-o")
        .arg(&dir)
        .arg("--")
        .arg(&workloads().work)
        .args(["split", "3.2"])
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let files = interval_files(&dir);
    assert!(
        (18..=24).contains(&files.len()),
        "{} files for 3.2 s at 150 ms: {stderr}",
        files.len()
    );
    assert_eq!(
        stderr.matches("rprof: interval ").count(),
        files.len(),
        "-v prints one line per file: {stderr}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    let mut total_samples = 0;
    let mut total_ns = 0;
    let mut previous_last = 0;
    let mut with_both = 0;
    for file in &files {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        let samples = samples(file);
        let times: Vec<u64> = samples.iter().map(|s| s.0).collect();
        if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) {
            assert!(
                *first > previous_last,
                "{} starts at {first}, before the previous file ended ({previous_last})",
                file.display()
            );
            previous_last = *last;
        }
        total_samples += samples.len() as u64;
        total_ns += samples.iter().map(|s| s.1).sum::<u64>();
        // Each file names the functions itself (its own embedded symbols).
        let folded = folded_of(file);
        if folded.contains("burn_a") && folded.contains("burn_b") {
            with_both += 1;
        }
        assert!(
            samples.is_empty() || folded.contains("burn_a") || folded.contains("burn_b"),
            "{}: not symbolized:\n{folded}",
            file.display()
        );
    }
    // The last interval may be a sliver; every full one holds both.
    assert!(
        with_both + 2 >= files.len(),
        "{with_both} of {}",
        files.len()
    );
    assert_eq!(
        total_samples,
        summary_samples(&stderr),
        "the files hold exactly the samples the summary counted"
    );
    // Ground truth: the workload's own CPU time in burn_a + burn_b.
    let truth: f64 = truth(&text(&run.stdout)).iter().map(|(_, ns)| ns).sum();
    let measured = total_ns as f64;
    assert!(
        (measured - truth).abs() / truth < 0.05,
        "samples add up to {:.0} ms of CPU, the workload measured {:.0} ms",
        measured / 1e6,
        truth / 1e6
    );
    assert!(
        stderr.contains(&format!("{} files", files.len())),
        "{stderr}"
    );
}

#[test]
fn keep_leaves_the_newest_files_and_size_rotation_splits_by_bytes() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("rotate-keep");
    // Not ours: never deleted.
    std::fs::write(dir.join("notes.txt"), b"x").unwrap();
    let run = rprof_command()
        .args(["record", "-g", "--rotate", "100ms", "--keep", "3", "-o"])
        .arg(&dir)
        .arg("--")
        .arg(&workloads().work)
        .args(["split", "1"])
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let files = interval_files(&dir);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(dir.join("notes.txt").exists());
    assert!(stderr.contains("old ones deleted (--keep)"), "{stderr}");
    // The newest three: the last sequence numbers.
    let last: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap()[23..].to_string())
        .collect();
    let n: Vec<u64> = last
        .iter()
        .map(|s| s.trim_end_matches(".data").parse().unwrap())
        .collect();
    assert_eq!(n[1], n[0] + 1, "{last:?}");
    assert_eq!(n[2], n[1] + 1, "{last:?}");

    // By size: -F 4000 with call chains writes well over 100K a second.
    let dir = temp_dir("rotate-size");
    let run = rprof_command()
        .args(["record", "-g", "-F", "4000", "--rotate", "100K", "-o"])
        .arg(&dir)
        .arg("--")
        .arg(&workloads().work)
        .args(["split", "1"])
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let files = interval_files(&dir);
    assert!(files.len() >= 2, "{stderr}");
    let total: u64 = files.iter().map(|f| samples(f).len() as u64).sum();
    assert_eq!(total, summary_samples(&stderr));
    // A drain ends an interval once it passes 100K: all but the last hold
    // at least that much.
    for file in &files[..files.len() - 1] {
        let size = std::fs::metadata(file).unwrap().len();
        assert!(size >= 100 << 10, "{}: {size} bytes", file.display());
    }
}

/// Starts a rotating recording of `work split 30` (60 s intervals, so only
/// signals end intervals).
fn start_rotating(dir: &Path) -> std::process::Child {
    Command::new(rprof_bin())
        .args(["record", "-g", "--rotate", "60s", "-o"])
        .arg(dir)
        .arg("--")
        .arg(&workloads().work)
        .args(["split", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sighup_starts_a_new_file_and_sigterm_finishes_the_last_one() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("rotate-signals");
    let mut child = start_rotating(&dir);
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        interval_files(&dir).is_empty(),
        "a file before its interval ended"
    );
    signal(&child, "HUP");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        interval_files(&dir).len(),
        1,
        "SIGHUP did not finish a file"
    );
    signal(&child, "HUP");
    std::thread::sleep(Duration::from_millis(600));
    signal(&child, "TERM");
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    let files = interval_files(&dir);
    assert_eq!(files.len(), 3, "{stderr}");
    let mut total = 0;
    for file in &files {
        let n = samples(file).len() as u64;
        assert!(n > 0, "{}: no samples", file.display());
        total += n;
        assert!(folded_of(file).contains("burn_a"));
    }
    assert_eq!(total, summary_samples(&stderr));
    let left = Command::new("pgrep")
        .args(["-f", "work split 30"])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "the command outlived the recording");
}

#[test]
fn rotate_to_standard_output_is_refused() {
    let run = rprof(&["record", "--rotate", "60s", "-o", "-", "-a"]);
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("--rotate") && stderr.contains("-o DIR/"),
        "{stderr}"
    );
    let run = rprof(&["record", "--keep", "3", "-a"]);
    assert!(!run.status.success());
    assert!(
        text(&run.stderr).contains("--rotate"),
        "{}",
        text(&run.stderr)
    );
    let run = rprof(&["record", "--rotate", "60", "-a"]);
    assert!(
        text(&run.stderr).contains("missing unit"),
        "{}",
        text(&run.stderr)
    );
}

#[test]
fn dwarf_intervals_are_each_unwound_and_symbolized() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("rotate-dwarf");
    let run = rprof_command()
        .args(["record", "--call-graph", "dwarf", "--rotate", "300ms", "-o"])
        .arg(&dir)
        .arg("--")
        .arg(&workloads_no_fp().work)
        .args(["split", "1.2"])
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("user stacks unwound"), "{stderr}");
    let files = interval_files(&dir);
    assert!(files.len() >= 3, "{stderr}");
    let mut total = 0;
    let mut with_samples = 0;
    for file in &files {
        let count = samples(file).len() as u64;
        total += count;
        // The last interval may hold only the workload's exit, no sample.
        if count == 0 {
            continue;
        }
        with_samples += 1;
        let data = PerfFile::open(file).unwrap();
        assert!(
            data.feature(feature::RPROF_UNWOUND).is_some(),
            "{}: stacks not unwound",
            file.display()
        );
        let folded = folded_of(file);
        let to_main = folded
            .lines()
            .filter(|l| l.contains(";main;") && l.contains("burn_"))
            .count();
        assert!(
            to_main > 0,
            "{}: nothing unwound to main:\n{folded}",
            file.display()
        );
    }
    assert!(with_samples >= 3, "{stderr}");
    assert_eq!(total, summary_samples(&stderr));
}

/// A binary that ran, exited and was deleted before its interval was
/// finished (`go run`, a CI job's build) is still unwound and named: the
/// recorder held its file open from the process's first sample.
#[test]
fn a_binary_deleted_after_its_process_exited_is_still_unwound_and_named() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("rotate-gone");
    let copy = dir.join("gone-work");
    std::fs::copy(&workloads_no_fp().work, &copy).unwrap();
    let out = dir.join("out/");
    // The copy runs 2 s (long enough for its first samples to be drained,
    // and its file opened, on a loaded CI host) and is deleted at once; the
    // first interval ends (and is unwound and symbolized) 1.5 s later.
    let script = format!("{0} split 2; rm -f {0}; sleep 3", copy.display());
    let run = rprof_command()
        .args([
            "record",
            "--call-graph",
            "dwarf",
            "--rotate",
            "3500ms",
            "-o",
        ])
        .arg(&out)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(!copy.exists(), "the script did not delete its binary");
    let files = interval_files(&out);
    assert!(!files.is_empty(), "{stderr}");
    let folded = folded_of(&files[0]);
    let named: u64 = folded
        .lines()
        .filter(|l| l.starts_with("gone-work;") && l.contains(";main;") && l.contains("burn_"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let all: u64 = folded
        .lines()
        .filter(|l| l.starts_with("gone-work;"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        all > 100,
        "too few samples of the deleted binary:\n{folded}"
    );
    assert!(
        named * 10 >= all * 9,
        "{named} of {all} samples unwound to main and named:\n{folded}"
    );
}

/// Holding a binary open must not keep its filesystem busy once the
/// process is gone: a container runtime unmounts the container's root
/// right after its last process exits (and retries for a moment on EBUSY,
/// as this script does).
#[test]
fn a_filesystem_mounted_during_the_recording_can_be_unmounted_after_its_process_exits() {
    require_perf!();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting an overlay needs root");
        return;
    }
    let _guard = serial();
    let dir = temp_dir("rotate-umount");
    for sub in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::copy(&workloads().work, dir.join("lower/work")).unwrap();
    let d = dir.display();
    let script = format!(
        "sleep 0.3
         mount -t overlay overlay -o lowerdir={d}/lower,upperdir={d}/upper,workdir={d}/work {d}/merged || exit 3
         {d}/merged/work split 0.4
         i=0
         until umount {d}/merged 2>/dev/null; do
           i=$((i+1)); [ $i -ge 50 ] && {{ umount -l {d}/merged; exit 4; }}; sleep 0.05
         done
         echo unmounted"
    );
    let out = dir.join("out/");
    let run = rprof_command()
        .args(["record", "-g", "--rotate", "10s", "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert_ne!(run.status.code(), Some(3), "mount failed: {stderr}");
    assert!(
        run.status.success() && text(&run.stdout).contains("unmounted"),
        "the overlay stayed busy after its process exited: {stderr}"
    );
    // The recording itself went on and finished its file.
    let files = interval_files(&out);
    assert_eq!(files.len(), 1, "{stderr}");
}
