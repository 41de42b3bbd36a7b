//! The profile model end to end: several events in one recording, frames
//! nothing names, and recordings rprof cannot unwind yet, checked against
//! Linux perf on the same files.

use std::path::Path;

use crate::util::*;

fn report(args: &[&str]) -> std::process::Output {
    rprof(&[&["report"], args].concat())
}

/// Per event, in order of first appearance: perf script's sample count and
/// summed period (perf report rounds its sample counts, `4K`).
fn perf_event_totals(data: &Path) -> Vec<(String, u64, u64)> {
    let stdout = perf_succeeded(
        run_linux_perf(["script", "-F", "period,event", "-i", data.to_str().unwrap()]),
        "perf script",
    );
    let mut totals: Vec<(String, u64, u64)> = Vec::new();
    for line in stdout.lines() {
        let mut fields = line.split_whitespace();
        let (Some(period), Some(event)) = (fields.next(), fields.next()) else {
            continue;
        };
        let period: u64 = period.parse().expect(line);
        let event = event.trim_end_matches(':');
        match totals.iter_mut().find(|t| t.0 == event) {
            Some(total) => {
                total.1 += 1;
                total.2 += period;
            }
            None => totals.push((event.to_string(), 1, period)),
        }
    }
    totals
}

/// rprof's `# Event: NAME (weight unit: U), N samples` headers: (name, unit, samples).
fn rprof_event_headers(top: &str) -> Vec<(String, String, u64)> {
    top.lines()
        .filter_map(|l| l.strip_prefix("# Event: "))
        .map(|l| {
            let (name, rest) = l.split_once(" (weight unit: ").expect(l);
            let (unit, rest) = rest.split_once("), ").expect(l);
            let samples = rest.split_once(' ').expect(l).0.parse().expect(l);
            (name.to_string(), unit.to_string(), samples)
        })
        .collect()
}

#[test]
fn each_event_of_a_perf_recording_is_its_own_section_in_its_own_unit() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("multievent");
    let data = dir.join("perf.data");
    perf_succeeded(
        run_linux_perf([
            "record",
            "-q",
            "-e",
            "cpu-clock,page-faults",
            "-g",
            "-o",
            data.to_str().unwrap(),
            "--",
            workloads().work.to_str().unwrap(),
            "split",
            "1",
        ]),
        "perf record",
    );
    let input = data.to_str().unwrap();
    let top = report(&["-i", input]);
    assert!(top.status.success(), "{}", text(&top.stderr));
    let top = text(&top.stdout);
    let headers = rprof_event_headers(&top);
    let names: Vec<&str> = headers.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(names, ["cpu-clock", "page-faults"], "{top}");
    assert_eq!(headers[0].1, "ns");
    assert_eq!(headers[1].1, "faults");
    // Sample counts per event agree with perf on the same file.
    let perf = perf_event_totals(&data);
    for (name, _, samples) in &headers {
        let perf_samples = perf.iter().find(|p| &p.0 == name).expect(name).1;
        assert_eq!(
            *samples, perf_samples,
            "{name}: rprof {samples}, perf {perf_samples}"
        );
    }

    // Folded stacks show one event, say which on stderr, and sum to its
    // weight alone (page faults are never added in as nanoseconds).
    let folded_run = report(&["-i", input, "--format", "folded"]);
    let note = text(&folded_run.stderr);
    assert!(
        note.contains("showing event cpu-clock (ns)") && note.contains("--event"),
        "{note}"
    );
    let cpu_total: u64 = folded(&text(&folded_run.stdout)).iter().map(|l| l.1).sum();
    let faults = report(&["-i", input, "--format", "folded", "--event", "page-faults"]);
    assert!(faults.status.success(), "{}", text(&faults.stderr));
    assert!(!text(&faults.stderr).contains("showing event"));
    let fault_total: u64 = folded(&text(&faults.stdout)).iter().map(|l| l.1).sum();
    let perf_weight = |event: &str| perf.iter().find(|p| p.0 == event).expect(event).2;
    assert_eq!(cpu_total, perf_weight("cpu-clock"));
    assert_eq!(fault_total, perf_weight("page-faults"));

    // --event picks one section; a wrong name lists the ones there are.
    let only = text(&report(&["-i", input, "--event", "page-faults"]).stdout);
    assert_eq!(rprof_event_headers(&only).len(), 1, "{only}");
    let wrong = report(&["-i", input, "--event", "cycles"]);
    assert!(!wrong.status.success());
    let err = text(&wrong.stderr);
    assert!(err.contains("cpu-clock, page-faults"), "{err}");
}

#[test]
fn frames_in_a_stripped_binary_show_module_and_offset_each() {
    require_perf!();
    let _guard = serial();
    let dir = temp_dir("stripped");
    let stripped = dir.join("work-stripped");
    std::fs::copy(&workloads().work, &stripped).unwrap();
    let strip = std::process::Command::new("strip")
        .arg("-s")
        .arg(&stripped)
        .status()
        .expect("strip (binutils)");
    assert!(strip.success());
    let data = dir.join("stripped.data");
    let run = rprof(&[
        "record",
        "-g",
        "-o",
        data.to_str().unwrap(),
        "--",
        stripped.to_str().unwrap(),
        "split",
        "1",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let out = report(&["-i", data.to_str().unwrap(), "--format", "folded"]);
    let lines = folded(&text(&out.stdout));
    // Self time in the binary's own code, by leaf address.
    let mut leaves: Vec<&str> = lines
        .iter()
        .filter_map(|(stack, _)| stack.rsplit(';').next())
        .filter(|leaf| leaf.starts_with("work-stripped+0x"))
        .collect();
    leaves.sort_unstable();
    leaves.dedup();
    assert!(
        leaves.len() >= 2,
        "burn_a and burn_b should stay apart as addresses: {lines:?}"
    );
    for leaf in &leaves {
        let offset = leaf.trim_start_matches("work-stripped+0x");
        assert!(u64::from_str_radix(offset, 16).is_ok(), "{leaf}");
    }
    assert!(
        !lines.iter().any(|(s, _)| s.contains("[work-stripped]")),
        "no catch-all module row"
    );
}

#[test]
fn dwarf_recordings_are_unwound_and_say_how_many_stacks_were_cut() {
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("dwarfinput");
    let data = dir.join("perf.data");
    perf_succeeded(
        run_linux_perf([
            "record",
            "-q",
            "--call-graph",
            "dwarf,4096",
            "-F",
            "199",
            "-o",
            data.to_str().unwrap(),
            "--",
            workloads().work.to_str().unwrap(),
            "split",
            "0.5",
        ]),
        "perf record",
    );
    let top = report(&["-i", data.to_str().unwrap()]);
    assert!(top.status.success(), "{}", text(&top.stderr));
    let top = text(&top.stdout);
    // The old "does not unwind DWARF stack copies yet" warning is gone: the
    // header says how many stacks were unwound and how many cut short.
    assert!(
        !top.lines()
            .any(|l| l.starts_with("# Warning:") && l.contains("--call-graph dwarf")),
        "{top}"
    );
    assert!(
        top.lines().any(|l| l.starts_with("# DWARF stacks: ")),
        "{top}"
    );
    assert!(top.contains("burn_a"), "{top}");
    let folded = report(&["-i", data.to_str().unwrap(), "--format", "folded"]);
    let folded = text(&folded.stdout);
    assert!(
        folded
            .lines()
            .any(|l| l.contains(";main;") && l.contains("burn_a")),
        "{folded}"
    );
}

#[test]
fn a_recording_of_several_events_keeps_them_apart_for_rprof_and_perf() {
    use rprof::abi::software;
    use rprof::event::{CallGraph, EventSpec, Sampling};
    use rprof::record::{RecordConfig, Target};
    require_perf!();
    if !linux_perf_available() {
        return;
    }
    let _guard = serial();
    let dir = temp_dir("recordevents");
    let data = dir.join("events.data");
    // The command line offers cpu-clock only until `-e` exists; the record
    // side already takes a list, so drive it through the library.
    let cpu_clock = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer);
    let page_faults = EventSpec {
        name: "page-faults".into(),
        config: software::PAGE_FAULTS,
        sampling: Sampling::Period(1),
        ..cpu_clock.clone()
    };
    let config = RecordConfig {
        events: vec![cpu_clock, page_faults],
        target: Target::Launch {
            argv: vec![workloads().work.clone().into(), "split".into(), "1".into()],
        },
        cpus: None,
        duration: None,
        output: rprof::record::RecordOutput::File(data.clone()),
        mmap_pages: 128,
        embed_symbols: true,
        cmdline: vec!["rprof-test".into()],
        rotate: None,
        keep: None,
    };
    let outcome =
        rprof::record::run(&config, &rprof::progress::NoProgress).expect("record two events");
    assert!(outcome.samples > 0);

    let input = data.to_str().unwrap();
    let top = report(&["-i", input]);
    assert!(top.status.success(), "{}", text(&top.stderr));
    let top = text(&top.stdout);
    let headers = rprof_event_headers(&top);
    let names: Vec<&str> = headers.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(names, ["cpu-clock", "page-faults"], "{top}");
    assert!(headers.iter().all(|h| h.2 > 0), "{headers:?}");
    // Linux perf reads the same file and counts the same samples per event.
    let perf = perf_event_totals(&data);
    for (name, _, samples) in &headers {
        let perf_samples = perf.iter().find(|p| &p.0 == name).expect(name).1;
        assert_eq!(*samples, perf_samples, "{name}");
    }
    // Every page fault is a sample of period 1: weight equals count.
    let faults = report(&["-i", input, "--format", "folded", "--event", "page-faults"]);
    let fault_weight: u64 = folded(&text(&faults.stdout)).iter().map(|l| l.1).sum();
    assert_eq!(fault_weight, headers[1].2);
    // cpu-clock stacks still reach burn_a through main.
    let cpu = text(&report(&["-i", input, "--format", "folded"]).stdout);
    assert!(cpu.contains(";main;") && cpu.contains("burn_a"), "{cpu}");
}
