//! `rprof record`.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use super::parse_cpu_list;
use super::progress::TerminalProgress;
use super::push_sink::PushSink;
use crate::cli::RecordArgs;
use crate::event::{
    parse_event_list, CallGraph, EventError, EventGroup, EventSpec, Sampling,
    DEFAULT_DWARF_STACK_BYTES, MAX_DWARF_STACK_BYTES,
};
use crate::record::{
    self, FinishedInterval, IntervalSink, RecordConfig, RecordOutcome, RecordOutput, Target,
};

/// The largest ring per CPU rprof accepts (`-m`): 2^20 pages, 4 GiB.
const MAX_MMAP_PAGES: usize = 1 << 20;
/// The largest sampling period perf_event_open takes (`-c`).
const MAX_PERIOD: u64 = i64::MAX as u64;

/// -c or -F when given; None leaves each event its default.
fn sampling(args: &RecordArgs) -> Result<Option<Sampling>> {
    if let Some(period) = args.count {
        if period == 0 {
            bail!("-c 0: the period must be at least 1 event");
        }
        // The kernel refuses periods with the top bit set (EINVAL).
        if period > MAX_PERIOD {
            bail!(
                "-c {period}: the period must be below 2^63 ({}); for cpu-clock it is in \
                 nanoseconds (-c 1000000 samples once per millisecond of CPU time)",
                MAX_PERIOD + 1
            );
        }
        return Ok(Some(Sampling::Period(period)));
    }
    match args.freq.as_deref() {
        None => Ok(None),
        Some("max") => Ok(Some(Sampling::Frequency(
            crate::sys::max_sample_rate().unwrap_or(4000),
        ))),
        Some(text) => match text.parse::<u64>() {
            Ok(0) => bail!("-F 0: the frequency must be at least 1 Hz (perf's default is 4000; use -c PERIOD for a fixed period)"),
            Ok(hz) => Ok(Some(Sampling::Frequency(hz))),
            Err(_) => bail!("-F {text}: expected a number of samples per second, or `max`"),
        },
    }
}

/// The events of -e (cpu-clock without it), each with -F/-c (or its
/// default: every hit of a tracepoint, 4000 Hz otherwise), the call-graph
/// mode, and the --filter that follows its -e.
fn named_events(args: &RecordArgs) -> Result<Vec<EventSpec>> {
    let user_sampling = sampling(args)?;
    let call_graph = call_graph(args)?;
    if args.events.is_empty() {
        if let Some(filter) = args.filters.first() {
            bail!("--filter {filter}: a filter applies to a tracepoint given with -e before it (e.g. -e sched:sched_switch --filter 'prev_pid == 1')");
        }
        let sampling = user_sampling.unwrap_or_default();
        return Ok(vec![EventSpec::cpu_clock(sampling, call_graph)]);
    }
    let mut per_flag = args
        .events
        .iter()
        .map(|list| parse_event_list(std::slice::from_ref(list)))
        .collect::<Result<Vec<Vec<EventGroup>>, EventError>>()?;
    // Without clap's indices (a plain parse), filters follow the last -e.
    let positions = if args.filter_positions.len() == args.filters.len() {
        args.filter_positions.clone()
    } else {
        vec![args.events.len(); args.filters.len()]
    };
    for (filter, &position) in args.filters.iter().zip(&positions) {
        let event = position
            .checked_sub(1)
            .and_then(|flag| per_flag.get_mut(flag))
            .and_then(|groups| groups.last_mut())
            .and_then(|group| group.events.last_mut());
        match event {
            Some(event) if event.is_tracepoint() => event.filter = Some(filter.clone()),
            other => {
                return Err(EventError::FilterWithoutTracepoint {
                    filter: filter.clone(),
                    event: other.map_or_else(|| "(none)".to_string(), |e| e.name.clone()),
                }
                .into())
            }
        }
    }
    let mut events = EventGroup::flatten(per_flag.into_iter().flatten().collect());
    for event in &mut events {
        // An event's own period=/freq= terms win over -F/-c, as in perf.
        event.sampling = event
            .own_sampling
            .or(user_sampling)
            .unwrap_or_else(|| event.default_sampling());
        event.call_graph = call_graph;
    }
    Ok(events)
}

fn call_graph(args: &RecordArgs) -> Result<CallGraph> {
    match args.call_graph.as_deref() {
        None if args.call_graph_fp => Ok(CallGraph::FramePointer),
        None => Ok(CallGraph::None),
        Some(mode) => parse_call_graph(mode),
    }
}

/// `fp`, `dwarf` or `dwarf,SIZE` (bytes of user stack copied per sample,
/// rounded up to 8 as perf does, at most the kernel's 65528).
fn parse_call_graph(mode: &str) -> Result<CallGraph> {
    let (name, size) = match mode.split_once(',') {
        Some((name, size)) => (name, Some(size)),
        None => (mode, None),
    };
    match (name, size) {
        ("fp", None) => Ok(CallGraph::FramePointer),
        ("dwarf", None) => Ok(CallGraph::Dwarf {
            stack_bytes: DEFAULT_DWARF_STACK_BYTES,
        }),
        ("dwarf", Some(size)) => {
            let bytes: u64 = size.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "--call-graph {mode}: '{size}' is not a number of bytes (e.g. dwarf,16384)"
                )
            })?;
            let rounded = bytes.div_ceil(8) * 8;
            if rounded == 0 || rounded > u64::from(MAX_DWARF_STACK_BYTES) {
                bail!(
                    "--call-graph {mode}: the stack copy must be 8 to {MAX_DWARF_STACK_BYTES} bytes \
                     (default {DEFAULT_DWARF_STACK_BYTES})"
                );
            }
            Ok(CallGraph::Dwarf {
                stack_bytes: rounded as u32,
            })
        }
        _ => bail!("--call-graph {mode}: unknown mode (use fp, dwarf or dwarf,SIZE)"),
    }
}

/// Switch-outs sampled per second per thread (per CPU with -a) by
/// default: every switch of a thread that blocks up to 1000 times a second,
/// and a bounded cost (about one call chain per millisecond) beyond.
pub const DEFAULT_OFF_CPU_HZ: u64 = 1000;

/// How often switch-outs are sampled (`--off-cpu-freq`, `--off-cpu-every`).
fn off_cpu_sampling(args: &RecordArgs) -> Result<Sampling> {
    match (args.off_cpu_every, args.off_cpu_freq) {
        (Some(0), _) => bail!("--off-cpu-every 0: sample at least every switch (1)"),
        (Some(every), _) if every > MAX_PERIOD => {
            bail!("--off-cpu-every {every}: must be below 2^63")
        }
        (Some(every), _) => Ok(Sampling::Period(every)),
        (None, Some(0)) => bail!("--off-cpu-freq 0: expected at least 1 switch per second"),
        (None, Some(hz)) => Ok(Sampling::Frequency(hz)),
        (None, None) => Ok(Sampling::Frequency(DEFAULT_OFF_CPU_HZ)),
    }
}

/// The events to open: those of -e (cpu-clock without it); the off-CPU
/// switch event (`--off-cpu`); or cpu-clock and that event (`--wall`).
fn events(args: &RecordArgs) -> Result<Vec<EventSpec>> {
    if !(args.off_cpu || args.wall) {
        if args.off_cpu_freq.is_some() || args.off_cpu_every.is_some() {
            bail!("--off-cpu-freq/--off-cpu-every set how switches are sampled: add --off-cpu or --wall");
        }
        return named_events(args);
    }
    if !args.events.is_empty() {
        bail!(
            "--off-cpu and --wall choose their own events (context switches, and cpu-clock \
             for --wall): leave -e out, or record the -e events in a recording of their own"
        );
    }
    let call_graph = call_graph(args)?;
    let off_cpu = EventSpec::off_cpu(off_cpu_sampling(args)?, call_graph);
    if args.off_cpu {
        if args.freq.is_some() || args.count.is_some() {
            bail!(
                "-F/-c set the cpu-clock rate, which --off-cpu does not sample: \
                 --off-cpu-freq HZ or --off-cpu-every N set how often switches are \
                 sampled (--wall records both)"
            );
        }
        return Ok(vec![off_cpu]);
    }
    Ok(vec![
        EventSpec::cpu_clock(sampling(args)?.unwrap_or_default(), call_graph),
        off_cpu,
    ])
}

fn target(args: &RecordArgs) -> Result<Target> {
    super::target_of(
        &args.target,
        &args.command,
        "nothing to record: give a command, or -p PID, -t TID, or -a (e.g. `rprof record -g ./app args`)",
    )
}

/// `-o`: a file path, or `-` for a pipe-mode stream on standard output,
/// which is refused when standard output is a terminal.
fn output(path: &Path, stdout_is_terminal: bool) -> Result<RecordOutput> {
    if path != Path::new("-") {
        return Ok(RecordOutput::File(path.to_path_buf()));
    }
    if stdout_is_terminal {
        bail!("-o - writes binary data; redirect it to a file or pipe it into `rprof report -i -`");
    }
    Ok(RecordOutput::Stdout)
}

/// Validates the flags into a [`RecordConfig`].
pub fn config(args: &RecordArgs) -> Result<RecordConfig> {
    if let Some((flag, instead)) = args.perf_only.first_used() {
        bail!("{flag} is a `perf record` flag that rprof does not have: {instead}");
    }
    let duration = match args.duration {
        Some(secs) if !(secs > 0.0 && secs.is_finite()) => {
            bail!("--duration {secs}: expected a positive number of seconds")
        }
        Some(secs) => match Duration::try_from_secs_f64(secs) {
            Ok(duration) => Some(duration),
            Err(_) => bail!("--duration {secs}: too long; leave it out to record until Ctrl-C"),
        },
        None => None,
    };
    if !args.mmap_pages.is_power_of_two() || args.mmap_pages > MAX_MMAP_PAGES {
        bail!(
            "--mmap-pages {}: must be a power of two up to {MAX_MMAP_PAGES} (e.g. 128)",
            args.mmap_pages
        );
    }
    let output = output(&args.output, std::io::stdout().is_terminal())?;
    if args.rotate.is_some() && output == RecordOutput::Stdout {
        bail!("--rotate writes one file per interval, not a stream: give a directory with -o DIR/ instead of -o -");
    }
    if args.keep == Some(0) {
        bail!("--keep 0 would delete every file; give at least 1");
    }
    let mut events = events(args)?;
    for event in &mut events {
        event.cgroup = args.label_cgroup;
    }
    Ok(RecordConfig {
        events,
        target: target(args)?,
        cpus: args.target.cpu.as_deref().map(parse_cpu_list).transpose()?,
        duration,
        output,
        mmap_pages: args.mmap_pages,
        embed_symbols: !args.no_embed_symbols,
        // Lossy: a non-UTF-8 path must not stop a recording over its header.
        cmdline: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        rotate: args.rotate,
        keep: args.keep,
    })
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The one-line summary printed when a recording ends.
pub fn summary_line(outcome: &RecordOutcome, destination: &str) -> String {
    let secs = outcome.duration.as_secs_f64();
    let overhead = if secs > 0.0 {
        100.0 * outcome.profiler_cpu.as_secs_f64() / secs
    } else {
        0.0
    };
    let seen = outcome.samples.saturating_add(outcome.lost);
    let lost_share = if seen > 0 {
        100.0 * outcome.lost as f64 / seen as f64
    } else {
        0.0
    };
    let finish_ms = outcome.finish_time.as_millis();
    let unwound = outcome.unwound.map(|u| {
        let cut = 100.0 * u.truncated as f64 / u.unwound.max(1) as f64;
        format!("{} user stacks unwound ({cut:.1}% truncated)", u.unwound)
    });
    let symbols = match (unwound, outcome.symbols_embedded) {
        (None, true) => format!("symbols embedded in {finish_ms} ms"),
        (None, false) => "symbols not embedded".to_string(),
        (Some(unwound), true) => format!("{unwound} and symbols embedded in {finish_ms} ms"),
        (Some(unwound), false) => format!("{unwound} in {finish_ms} ms; symbols not embedded"),
    };
    let written = match &outcome.rotation {
        Some(r) => {
            let deleted = if r.deleted > 0 {
                format!(", {} old ones deleted (--keep)", r.deleted)
            } else {
                String::new()
            };
            format!(
                "{} files ({}) written to {}{deleted}; intervals finished in {} ms at most",
                r.files,
                human_bytes(outcome.file_size),
                r.dir.display(),
                r.max_finish.as_millis()
            )
        }
        None => format!(
            "{} written to {destination}",
            human_bytes(outcome.file_size)
        ),
    };
    format!(
        "[ rprof record: {} samples, {} lost ({lost_share:.1}%), {secs:.2} s, {written}; \
         rprof CPU {:.1} ms = {:.1}% of the recording; {symbols} ]",
        outcome.samples,
        outcome.lost,
        outcome.profiler_cpu.as_secs_f64() * 1e3,
        overhead,
    )
}

/// What each finished interval file goes to: a `-v` line, and the push.
struct IntervalSinks {
    verbose: bool,
    push: Option<PushSink>,
}

impl IntervalSink for IntervalSinks {
    fn finished(&mut self, interval: &FinishedInterval) {
        if self.verbose {
            eprintln!("{}", interval_line(interval));
        }
        if let Some(push) = &mut self.push {
            push.finished(interval);
        }
    }
}

fn interval_line(interval: &FinishedInterval) -> String {
    let secs = interval
        .end
        .duration_since(interval.start)
        .unwrap_or_default()
        .as_secs_f64();
    format!(
        "rprof: interval {}: {} samples, {} lost, {secs:.2} s -> {}",
        interval.sequence,
        interval.samples,
        interval.lost,
        interval.path.display()
    )
}

/// Interval files kept with `--push` when `--keep` is not given: the
/// profiles live on the server, the newest files stay for a local look.
pub const DEFAULT_PUSH_KEEP: usize = 10;

/// The `service_name` label when `--label` gives none: the launched (or
/// given) command's file name, else the first attached process's name,
/// else `rprof` (system-wide).
fn default_service_name(target: &Target) -> String {
    let (argv, pids) = match target {
        Target::Launch { argv } => (Some(argv), &[][..]),
        Target::Pids { pids, argv } => (argv.as_ref(), &pids[..]),
        Target::Tids { tids, argv } => (argv.as_ref(), &tids[..]),
        Target::SystemWide { argv } => (argv.as_ref(), &[][..]),
    };
    let from_argv = argv.and_then(|a| a.first()).and_then(|program| {
        Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let from_pid = || {
        let pid = pids.first()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some(comm.trim().to_string()).filter(|c| !c.is_empty())
    };
    from_argv
        .or_else(from_pid)
        .unwrap_or_else(|| "rprof".to_string())
}

/// Pyroscope's `sampleRate`: the first event's frequency, or the rate its
/// period gives for cpu-clock (nanoseconds); 0 when neither says.
fn sample_rate_hz(config: &RecordConfig) -> u64 {
    match config.events.first().map(|e| (e.sampling, e.name.as_str())) {
        Some((Sampling::Frequency(hz), _)) => hz,
        Some((Sampling::Period(ns), name)) if name.starts_with("cpu-clock") && ns > 0 => {
            1_000_000_000 / ns
        }
        _ => 0,
    }
}

/// The push sink of `--push` (which needs `--rotate`), started before the
/// recording so a bad URL or spool stops it before it begins.
fn push_sink(args: &RecordArgs, config: &mut RecordConfig) -> Result<Option<PushSink>> {
    let Some(push) = args.push.config(&default_service_name(&config.target))? else {
        return Ok(None);
    };
    if config.rotate.is_none() {
        bail!(
            "--push sends one profile per interval: add --rotate TIME (e.g. --rotate 60s; \
             Pyroscope and Parca agents push every 10-60 s)"
        );
    }
    config.keep = config.keep.or(Some(DEFAULT_PUSH_KEEP));
    Ok(Some(PushSink::start(push, sample_rate_hz(config))?))
}

/// Runs `rprof record`; returns the launched command's exit code, if any.
pub fn run(args: &RecordArgs) -> Result<Option<i32>> {
    let mut config = config(args)?;
    if config.rotate.is_some() {
        // Before any worker thread takes an arena.
        crate::sys::tune_allocator_for_long_runs();
    }
    let mut sinks = IntervalSinks {
        verbose: args.verbose,
        push: push_sink(args, &mut config)?,
    };
    let recorded = record::run_with_sink(&config, &TerminalProgress::on_stderr(), &mut sinks);
    // What was spooled is delivered (or kept) even if recording failed.
    let push_summary = sinks.push.take().map(|push| push.finish().summary());
    let outcome = recorded?;
    eprintln!("{}", summary_line(&outcome, &config.output.describe()));
    if let Some(line) = push_summary {
        eprintln!("{line}");
    }
    if outcome.throttle_events > 0 {
        eprintln!("rprof: warning: the kernel throttled sampling {} times (rate too high for this machine; try a lower -F)", outcome.throttle_events);
    }
    if outcome.lost > 0 {
        eprintln!("rprof: warning: {} samples were lost (the kernel could not write them, usually a full ring buffer); try a larger --mmap-pages or a lower -F", outcome.lost);
    }
    for warning in &outcome.warnings {
        eprintln!("rprof: warning: {warning}");
    }
    Ok(outcome.child_exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn call_graph_modes_parse_like_perf() {
        assert_eq!(parse_call_graph("fp").unwrap(), CallGraph::FramePointer);
        assert_eq!(
            parse_call_graph("dwarf").unwrap(),
            CallGraph::Dwarf { stack_bytes: 8192 }
        );
        assert_eq!(
            parse_call_graph("dwarf,100").unwrap(),
            CallGraph::Dwarf { stack_bytes: 104 },
            "rounded up to 8 bytes"
        );
        assert_eq!(
            parse_call_graph("dwarf,65528").unwrap(),
            CallGraph::Dwarf { stack_bytes: 65528 }
        );
        for bad in ["dwarf,0", "dwarf,65536", "dwarf,x", "lbr", "fp,8"] {
            let err = parse_call_graph(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--call-graph {bad}:")), "{err}");
        }
    }

    #[test]
    fn the_systemd_units_command_lines_are_valid_record_commands() {
        let unit = include_str!("../../dist/rprof.service");
        let lines: Vec<&str> = unit
            .lines()
            .filter_map(|l| l.trim_start_matches('#').strip_prefix("ExecStart="))
            .collect();
        assert_eq!(
            lines.len(),
            2,
            "the plain and the pushing ExecStart: {unit}"
        );
        for line in lines {
            // systemd puts the host name in for %H.
            let line = line.replace("%H", "db-1.example");
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[..2], ["/usr/local/bin/rprof", "record"]);
            let args = parse(&words[2..]);
            let cfg = config(&args).unwrap();
            assert!(cfg.rotate.is_some() && cfg.keep == Some(60), "{line}");
            for label in &args.push.labels {
                for (name, value) in crate::push::parse_labels(label).unwrap() {
                    if name == "service_name" {
                        crate::push::wire::check_service_name(&value).unwrap();
                    }
                }
            }
        }
    }

    fn parse(line: &[&str]) -> RecordArgs {
        let mut argv = vec!["rprof", "record"];
        argv.extend_from_slice(line);
        match crate::cli::Cli::try_parse_ordered_from(argv)
            .unwrap()
            .command
        {
            crate::cli::Command::Record(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn events_take_their_own_default_sampling_and_the_shared_flags() {
        let cfg = config(&parse(&[
            "-e",
            "page-faults,{cpu-clock,task-clock}",
            "-g",
            "true",
        ]))
        .unwrap();
        let names: Vec<&str> = cfg.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["page-faults", "cpu-clock", "task-clock"]);
        let members: Vec<bool> = cfg.events.iter().map(|e| e.group_member).collect();
        assert_eq!(members, vec![false, false, true]);
        assert!(cfg
            .events
            .iter()
            .all(|e| e.call_graph == CallGraph::FramePointer
                && e.sampling == Sampling::Frequency(4000)));
        let cfg = config(&parse(&[
            "-e",
            "cs",
            "-e",
            "minor-faults",
            "-c",
            "7",
            "true",
        ]))
        .unwrap();
        assert_eq!(cfg.events.len(), 2);
        assert!(cfg.events.iter().all(|e| e.sampling == Sampling::Period(7)));
        // Without -e: cpu-clock, as before.
        let cfg = config(&parse(&["true"])).unwrap();
        assert_eq!(cfg.events.len(), 1);
        assert_eq!(cfg.events[0].name, "cpu-clock");
    }

    #[test]
    fn filters_attach_to_the_tracepoint_before_them() {
        let err = config(&parse(&["-e", "page-faults", "--filter", "x == 1", "true"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'page-faults' is not one"), "{err}");
        let err = config(&parse(&["--filter", "x == 1", "true"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("-e sched:sched_switch"), "{err}");
        let err = config(&parse(&["--filter", "x", "-e", "cs", "true"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("(none)"), "{err}");
        // Only where tracefs exists can a tracepoint be parsed.
        let tracefs = crate::event::EventSources::system().tracefs;
        if tracefs.is_some_and(|t| t.join("events/sched/sched_switch/id").exists()) {
            let cfg = config(&parse(&[
                "-e",
                "sched:sched_switch",
                "--filter",
                "prev_pid == 1",
                "-e",
                "cs",
                "true",
            ]))
            .unwrap();
            assert_eq!(cfg.events[0].filter.as_deref(), Some("prev_pid == 1"));
            assert_eq!(cfg.events[0].sampling, Sampling::Period(1));
            assert_eq!(cfg.events[1].filter, None);
            assert_eq!(cfg.events[1].sampling, Sampling::Frequency(4000));
        }
    }

    #[test]
    fn zero_frequency_is_refused_with_advice() {
        let err = config(&parse(&["-F", "0", "--", "true"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("-F 0") && err.contains("at least 1 Hz"),
            "{err}"
        );
    }

    #[test]
    fn pid_with_command_keeps_the_command_as_window() {
        let cfg = config(&parse(&["-p", "12,13", "-g", "--", "sleep", "5"])).unwrap();
        assert_eq!(
            cfg.target,
            Target::Pids {
                pids: vec![12, 13],
                argv: Some(vec!["sleep".into(), "5".into()])
            }
        );
        assert_eq!(cfg.events[0].call_graph, CallGraph::FramePointer);
    }

    #[test]
    fn defaults_match_perf() {
        let cfg = config(&parse(&["--", "true"])).unwrap();
        assert_eq!(cfg.events[0].sampling, Sampling::Frequency(4000));
        assert_eq!(
            cfg.output,
            RecordOutput::File(std::path::PathBuf::from("rprof.data"))
        );
        assert!(matches!(cfg.target, Target::Launch { .. }));
    }

    #[test]
    fn extreme_values_are_errors_not_panics() {
        for flags in [
            &["--duration", "1e30", "--", "true"][..],
            &["--mmap-pages", "9223372036854775808", "--", "true"],
            &["-C", "0-4294967295"],
            &["-F", "lots", "--", "true"],
            &["-c", "18446744073709551615", "--", "true"],
            &["-c", "9223372036854775808", "--", "true"],
        ] {
            let err = config(&parse(flags)).unwrap_err().to_string();
            assert!(
                err.contains(flags[0]),
                "{flags:?}: the error should name the flag: {err}"
            );
        }
        // Representable but beyond any Instant: runs without a deadline.
        assert!(config(&parse(&["--duration", "1e19", "--", "true"])).is_ok());
        let cfg = config(&parse(&["-c", "9223372036854775807", "--", "true"])).unwrap();
        assert_eq!(cfg.events[0].sampling, Sampling::Period(MAX_PERIOD));
    }

    #[test]
    fn non_utf8_command_arguments_are_kept_byte_for_byte() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let arg = std::ffi::OsString::from_vec(vec![b'a', 0xff]);
        let argv = [
            std::ffi::OsStr::new("rprof"),
            "record".as_ref(),
            "--".as_ref(),
            "cat".as_ref(),
            &arg,
        ];
        let args = match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Record(args) => args,
            _ => unreachable!(),
        };
        let Target::Launch { argv } = config(&args).unwrap().target else {
            panic!("not a launch");
        };
        assert_eq!(argv[1].as_bytes(), b"a\xff");
    }

    #[test]
    fn no_target_is_an_error_that_says_what_to_give() {
        let err = config(&parse(&[])).unwrap_err().to_string();
        assert!(err.contains("-p PID"), "{err}");
    }

    #[test]
    fn dash_output_is_standard_output_unless_it_is_a_terminal() {
        assert_eq!(output(Path::new("-"), false).unwrap(), RecordOutput::Stdout);
        let err = output(Path::new("-"), true).unwrap_err().to_string();
        assert_eq!(
            err,
            "-o - writes binary data; redirect it to a file or pipe it into `rprof report -i -`"
        );
        // A file path is a file whatever standard output is.
        assert_eq!(
            output(Path::new("out.data"), true).unwrap(),
            RecordOutput::File("out.data".into())
        );
        assert_eq!(
            output(Path::new("./-"), true).unwrap(),
            RecordOutput::File("./-".into())
        );
    }

    #[test]
    fn push_needs_rotate_and_names_the_service_after_the_command() {
        let args = parse(&["--push", "http://127.0.0.1:1", "--", "/usr/bin/true"]);
        let mut cfg = config(&args).unwrap();
        let err = push_sink(&args, &mut cfg).err().unwrap().to_string();
        assert!(
            err.contains("--push sends one profile per interval: add --rotate"),
            "{err}"
        );
        assert_eq!(default_service_name(&cfg.target), "true");
        assert_eq!(
            default_service_name(&Target::SystemWide { argv: None }),
            "rprof"
        );
        let me = std::process::id();
        let comm = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        assert_eq!(
            default_service_name(&Target::Pids {
                pids: vec![me],
                argv: None
            }),
            comm.trim()
        );
    }

    #[test]
    fn push_sample_rate_is_the_frequency_or_the_cpu_clock_period_as_hz() {
        let cfg = config(&parse(&["-F", "19", "--", "true"])).unwrap();
        assert_eq!(sample_rate_hz(&cfg), 19);
        let cfg = config(&parse(&["-c", "10000000", "--", "true"])).unwrap();
        assert_eq!(sample_rate_hz(&cfg), 100);
        let cfg = config(&parse(&["-e", "page-faults", "-c", "10", "--", "true"])).unwrap();
        assert_eq!(sample_rate_hz(&cfg), 0);
    }

    #[test]
    fn label_cgroup_applies_to_every_event() {
        let cfg = config(&parse(&["-e", "cpu-clock,page-faults", "--", "true"])).unwrap();
        assert!(cfg.events.iter().all(|e| !e.cgroup));
        let cfg = config(&parse(&[
            "--label-cgroup",
            "-e",
            "cpu-clock,page-faults",
            "--",
            "true",
        ]))
        .unwrap();
        assert_eq!(cfg.events.len(), 2);
        assert!(cfg.events.iter().all(|e| e.cgroup));
    }

    #[test]
    fn off_cpu_samples_switches_and_wall_adds_cpu_clock() {
        let cfg = config(&parse(&["--off-cpu", "-g", "--", "true"])).unwrap();
        assert_eq!(cfg.events.len(), 1);
        let off = &cfg.events[0];
        assert_eq!((off.name.as_str(), off.context_switch), ("off-cpu", true));
        assert_eq!(off.sampling, Sampling::Frequency(DEFAULT_OFF_CPU_HZ));
        assert_eq!(off.call_graph, CallGraph::FramePointer);

        let cfg = config(&parse(&[
            "--wall",
            "-c",
            "1000000",
            "--off-cpu-every",
            "1",
            "--",
            "true",
        ]))
        .unwrap();
        let names: Vec<&str> = cfg.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["cpu-clock", "off-cpu"]);
        assert_eq!(cfg.events[0].sampling, Sampling::Period(1_000_000));
        assert_eq!(cfg.events[1].sampling, Sampling::Period(1));
        assert!(!cfg.events[0].context_switch);
    }

    #[test]
    fn off_cpu_flags_that_cannot_apply_are_refused() {
        for (flags, expected) in [
            (
                &["--off-cpu", "-F", "99", "--", "true"][..],
                "--off-cpu-freq",
            ),
            (
                &["--off-cpu-freq", "10", "--", "true"],
                "add --off-cpu or --wall",
            ),
            (
                &["--off-cpu", "--off-cpu-every", "0", "--", "true"],
                "--off-cpu-every 0",
            ),
            (
                &["--wall", "--off-cpu-freq", "0", "--", "true"],
                "--off-cpu-freq 0",
            ),
        ] {
            let err = config(&parse(flags)).unwrap_err().to_string();
            assert!(err.contains(expected), "{flags:?}: {err}");
        }
    }

    #[test]
    fn cpu_list_implies_system_wide() {
        let cfg = config(&parse(&["-C", "0"])).unwrap();
        assert_eq!(cfg.target, Target::SystemWide { argv: None });
        assert_eq!(cfg.cpus, Some(vec![0]));
    }
}
