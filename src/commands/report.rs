//! `rprof report`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use super::parse_number_list;
use super::progress::TerminalProgress;
use crate::abi::flag;
use crate::aggregate::{self, EventId, Profile, ProfileOptions, SampleFilter};
use crate::cli::args::{self, ReportArgs, ReportFormat};
use crate::event::{is_off_cpu, Sampling, Unit};
use crate::output::pprof::{Pprof, StartTimeSource};
use crate::output::script::{write_script, ScriptEvents};
use crate::output::{offcpu, text};
use crate::output::{
    Fit, FlameGraphHtml, FlameGraphSvg, FlameOptions, Folded, MinWidth, Output, SortKey, Top,
    TopOptions, TreeOptions, TreeOrder,
};
use crate::perfdata::format::feature;
use crate::perfdata::{PerfFile, ReadError};
use crate::progress::{NoProgress, Progress};
use crate::symbolize::{SymbolTable, SymbolizeOptions, Symbolizer};

/// Recordings from this size on show a progress bar while read (on a terminal).
const PROGRESS_MIN_BYTES: usize = 32 << 20;

/// At most this many "could not read symbols" lines in a report header.
const MAX_MODULE_WARNINGS: usize = 8;

fn filter(args: &ReportArgs) -> Result<SampleFilter> {
    Ok(SampleFilter {
        pids: args
            .pid
            .as_deref()
            .map(|p| parse_number_list("--pid", p))
            .transpose()?
            .unwrap_or_default(),
        comms: args
            .comm
            .as_deref()
            .map(|c| {
                c.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Reads a recording and names its stacks: the embedded symbol table first,
/// this machine's files for anything it lacks (e.g. files from Linux perf).
pub fn load_profile(file: &PerfFile, filter: &SampleFilter, progress: &dyn Progress) -> Profile {
    let options = ProfileOptions {
        filter: filter.clone(),
        ..ProfileOptions::default()
    };
    load_profile_with(file, &options, progress)
}

/// The file's embedded symbol table (empty when it has none, or an
/// unreadable one, which `warnings` then names).
fn embedded_symbols(file: &PerfFile, warnings: &mut Vec<String>) -> SymbolTable {
    match file
        .feature(feature::RPROF_SYMBOLS)
        .map(SymbolTable::decode)
    {
        Some(Ok(table)) => table,
        Some(Err(err)) => {
            warnings.push(format!(
                "embedded symbols unreadable ({err}); using this machine's binaries"
            ));
            SymbolTable::new()
        }
        None => SymbolTable::new(),
    }
}

/// [`load_profile`] with any profile options (`diff` asks for fine time buckets).
pub fn load_profile_with(
    file: &PerfFile,
    options: &ProfileOptions,
    progress: &dyn Progress,
) -> Profile {
    let mut profile = aggregate::profile_file_with_progress(file, options, progress);
    let mut warnings = Vec::new();
    let mut table = embedded_symbols(file, &mut warnings);
    let missing = aggregate::missing_from(&table, profile.symbol_requests());
    if !missing.is_empty() {
        let (found, reports) =
            Symbolizer::new(SymbolizeOptions::default()).symbolize_with_progress(missing, progress);
        table.merge(found);
        let mut problems: Vec<String> = reports
            .into_iter()
            .filter_map(|(module, report)| {
                report
                    .problem
                    .map(|p| format!("no symbols for {}: {p}", module.path))
            })
            .collect();
        problems.sort();
        let extra = problems.len().saturating_sub(MAX_MODULE_WARNINGS);
        warnings.extend(problems.into_iter().take(MAX_MODULE_WARNINGS));
        if extra > 0 {
            warnings.push(format!("... and {extra} more modules without symbols"));
        }
    }
    profile.name_locations(&table);
    profile.warnings.extend(warnings);
    profile
}

/// The event `--event` names, or None (all events) when not given.
fn selected_event(args: &ReportArgs, input: &Path, profile: &Profile) -> Result<Option<EventId>> {
    let Some(name) = args.event.as_deref() else {
        return Ok(None);
    };
    match profile.find_event(name) {
        Some(event) => Ok(Some(event)),
        None => {
            let names: Vec<&str> = profile.events.iter().map(|e| e.name.as_str()).collect();
            bail!(
                "--event {name}: {} has no such event (it has: {})",
                input_name(input),
                names.join(", ")
            )
        }
    }
}

/// Folded stacks and flame graphs show one event: the chosen one or the
/// first. Say which when the file has more, so units are never mixed unseen.
fn single_event(input: &Path, profile: &Profile, chosen: Option<EventId>) -> EventId {
    let event = chosen.unwrap_or(0);
    if let (Some(off_cpu), Some(shown)) =
        (&profile.stats.off_cpu, profile.events.get(event as usize))
    {
        // Off-CPU weights are not CPU time: say what the counts are.
        eprintln!(
            "rprof: counts are {} ({})",
            shown.unit,
            offcpu::sampling_statement(off_cpu)
        );
    }
    if chosen.is_none() && profile.events.len() > 1 {
        let others: Vec<&str> = profile.events[1..]
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        eprintln!(
            "rprof: showing event {} ({}); {} also has {}: pick one with --event NAME",
            profile.events[0].name,
            profile.events[0].unit,
            input_name(input),
            others.join(", ")
        );
    }
    event
}

/// The recording to read: `-i FILE`, or `rprof.data` here.
fn input_path(args: &ReportArgs) -> PathBuf {
    args.input
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_INPUT))
}

const DEFAULT_INPUT: &str = "rprof.data";

/// How messages name the input: its path, or "standard input" for `-i -`.
fn input_name(input: &Path) -> String {
    if input == Path::new("-") {
        "standard input".to_string()
    } else {
        input.display().to_string()
    }
}

/// `-i -` reads standard input, unless it is a terminal (nothing to read).
fn check_stdin_input(stdin_is_terminal: bool) -> Result<()> {
    if stdin_is_terminal {
        bail!("-i -: standard input is a terminal; pipe a recording into it");
    }
    Ok(())
}

/// Opens the recording: `-i FILE`, standard input for `-i -` (a pipe is
/// read to its end; a redirected file is mapped like any file), or
/// `rprof.data`; with no `-i` and no `rprof.data`, says what to run.
fn open_input(args: &ReportArgs, input: &Path) -> Result<PerfFile> {
    if input == Path::new("-") {
        let stdin = io::stdin();
        check_stdin_input(stdin.is_terminal())?;
        let fd = stdin
            .as_fd()
            .try_clone_to_owned()
            .context("cannot use standard input")?;
        let file = File::from(fd);
        let piped = file.metadata().is_ok_and(|m| !m.is_file());
        let _first_ctrl_c = if piped {
            RecorderStopsFirst::install()
        } else {
            None
        };
        return Ok(PerfFile::from_file(file, Path::new("standard input"))?);
    }
    match PerfFile::open(input) {
        Err(ReadError::Open { source, .. })
            if args.input.is_none() && source.kind() == io::ErrorKind::NotFound =>
        {
            let perf_hint = if Path::new("perf.data").exists() {
                " (or read Linux perf's recording here with `rprof report -i perf.data`)"
            } else {
                ""
            };
            bail!(
                "no {DEFAULT_INPUT} in this directory: record one first, e.g. \
                 `rprof record -g ./app` or `rprof record -p PID -g --duration 10`, \
                 or name a recording with -i FILE{perf_hint}"
            )
        }
        other => Ok(other?),
    }
}

/// While a pipe is read, the first Ctrl-C is left to the recorder at its
/// other end: in `rprof record -o - | rprof report -i -` both get the
/// terminal's SIGINT, the recording then finishes its stream, and the
/// report shows all of it. A second Ctrl-C quits at once (exit 130), and so
/// does any Ctrl-C once the input is read (on drop).
struct RecorderStopsFirst {
    pressed: Arc<AtomicBool>,
}

impl RecorderStopsFirst {
    fn install() -> Option<RecorderStopsFirst> {
        let pressed = Arc::new(AtomicBool::new(false));
        let sigint = signal_hook::consts::SIGINT;
        // The check runs before the flag is set: the second press exits.
        signal_hook::flag::register_conditional_shutdown(sigint, 130, pressed.clone()).ok()?;
        let guard = RecorderStopsFirst { pressed };
        // Without the note, the first press must quit (armed on drop).
        signal_hook::flag::register(sigint, guard.pressed.clone()).ok()?;
        Some(guard)
    }
}

impl Drop for RecorderStopsFirst {
    /// signal-hook cannot give SIGINT its default action back; arming the
    /// exit does the same.
    fn drop(&mut self) {
        self.pressed.store(true, Ordering::Relaxed);
    }
}

/// Rows a screen shows by default (`top`; `tree` shows fewer, each row
/// comes with its tree).
const TERMINAL_ROWS: usize = 40;
const TERMINAL_TREE_ROWS: usize = 10;

/// The format asked for: `--format`, or perf's `-g` for the tree.
fn effective_format(args: &ReportArgs) -> Result<ReportFormat> {
    match (args.perf_call_graph, args.format) {
        (None, format) => Ok(format),
        (Some(_), ReportFormat::Top | ReportFormat::Tree) => Ok(ReportFormat::Tree),
        (Some(_), _) => bail!("-g shows call trees: use it with the top or tree format"),
    }
}

/// What the table may use: on a terminal its width and a screenful of rows;
/// in a pipe or a file everything, names whole. COLUMNS, when set, gives the
/// width anywhere (as for `ls`), so scripts can ask for a narrow table.
fn fit(args: &ReportArgs) -> Result<Fit> {
    let terminal = args.output.is_none() && io::stdout().is_terminal();
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    let width = columns.or_else(|| {
        terminal
            .then(|| console::Term::stdout().size_checked())
            .flatten()
            .map(|(_rows, cols)| cols as usize)
    });
    let screen_rows = if effective_format(args)? == ReportFormat::Tree {
        TERMINAL_TREE_ROWS
    } else {
        TERMINAL_ROWS
    };
    let rows = match args.rows {
        Some(0) => None,
        Some(n) => Some(n),
        None => terminal.then_some(screen_rows),
    };
    Ok(Fit {
        width,
        rows,
        full_names: args.full_names,
    })
}

/// The command a recording profiled: what followed `rprof record`'s
/// options (program by file name, then its arguments), or None when the
/// file was not written by `rprof record CMD` (attached with -p, -a, or
/// written by Linux perf).
fn profiled_command(cmdline: &[String]) -> Option<String> {
    let parsed = crate::cli::args::Cli::try_parse_ordered_from(cmdline).ok()?;
    let crate::cli::args::Command::Record(record) = parsed.command else {
        return None;
    };
    let (program, rest) = record.command.split_first()?;
    let program = Path::new(program)
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned();
    let words: Vec<String> = std::iter::once(program)
        .chain(rest.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect();
    Some(words.join(" "))
}

/// The name of the threads with the most weight in an event (`nginx`).
fn busiest_comm(profile: &Profile, event: EventId) -> Option<&str> {
    let mut by_comm: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for sample in profile.samples_of(event) {
        let weight = by_comm
            .entry(profile.thread(sample.thread).comm.as_str())
            .or_insert(0);
        *weight = weight.saturating_add(sample.weight);
    }
    by_comm
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(comm, _)| comm)
}

/// The flame graph's title and subtitle. The title is the profiled command
/// (`work split 2`); without one, the recording's command line
/// (`rprof record -p 1234 -g`) and the busiest thread name. The subtitle:
/// event, samples, duration, unit, wall split, date.
fn flame_graph_titles(
    input: &Path,
    file: &PerfFile,
    profile: &Profile,
    event: EventId,
) -> (String, String) {
    let cmdline = &file.metadata().cmdline;
    let title = match profiled_command(cmdline) {
        Some(command) => command,
        None => {
            let recorded = match cmdline.split_first() {
                Some((program, rest)) => {
                    let program = Path::new(program)
                        .file_name()
                        .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned());
                    std::iter::once(program)
                        .chain(rest.iter().cloned())
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                None => input_name(input),
            };
            match busiest_comm(profile, event) {
                Some(comm) => format!("{recorded} ({comm})"),
                None => recorded,
            }
        }
    };
    let stats = profile.event(event);
    let mut details = vec![
        stats.name.clone(),
        format!("{} samples", text::thousands(stats.samples)),
        format!("{} recorded", text::duration(profile.stats.duration_ns())),
    ];
    if stats.unit != Unit::Events {
        details.push(format!("weights in {}", stats.unit));
    }
    if let Some(split) = profile.stats.off_cpu.as_ref().and_then(offcpu::wall_split) {
        details.push(split);
    }
    // The file's time: when the recording was finished (a stream has none).
    let modified = (input != Path::new("-"))
        .then(|| std::fs::metadata(input).and_then(|m| m.modified()).ok())
        .flatten();
    if let Some(when) = modified.filter(|t| *t > SystemTime::UNIX_EPOCH) {
        details.push(format!("{}", humantime::format_rfc3339_seconds(when)));
    }
    (title, details.join(" · "))
}

/// How each event of the profile was sampled (by event id), from the
/// first attr of the event; for a wall profile, the cpu-clock attr.
fn event_sampling(file: &PerfFile, profile: &Profile) -> Vec<Option<Sampling>> {
    let (_, attr_event) = aggregate::file_events(file.attrs(), file.metadata());
    (0..profile.events.len() as EventId)
        .map(|event| {
            let mut attrs = file
                .attrs()
                .iter()
                .zip(&attr_event)
                .filter(|(_, &e)| e == event)
                .map(|(attr, _)| attr);
            let attr = if profile.events[event as usize].name == aggregate::WALL_EVENT {
                attrs.find(|a| !is_off_cpu(a))
            } else {
                attrs.next()
            }?;
            Some(if attr.is_freq() {
                Sampling::Frequency(attr.sample_period_or_freq)
            } else {
                Sampling::Period(attr.sample_period_or_freq)
            })
        })
        .collect()
}

/// The sample clock's reading at a known wall-clock time, from perf's
/// HEADER_CLOCK_DATA, when the samples were timed by that clock:
/// (wall-clock ns, clock ns).
fn clock_data(file: &PerfFile) -> Option<(u64, u64)> {
    let raw = file.feature(feature::CLOCK_DATA)?;
    let u32_at = |at: usize| Some(u32::from_ne_bytes(raw.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_ne_bytes(raw.get(at..at + 8)?.try_into().ok()?));
    let clockid = u32_at(4)?;
    let timed_by_it = file
        .attrs()
        .iter()
        .all(|a| a.has_flag(flag::USE_CLOCKID) && u32::try_from(a.clockid).ok() == Some(clockid));
    (u32_at(0)? >= 1 && timed_by_it && !file.attrs().is_empty())
        .then_some((u64_at(8)?, u64_at(16)?))
}

/// When the recording started (wall clock, ns since the epoch) and how
/// that is known: perf's clock data when the file has it; else the file's
/// modification time (or, for a stream, now) minus the recording's length.
fn start_time(input: &Path, file: &PerfFile, profile: &Profile) -> Option<(i64, StartTimeSource)> {
    let first = profile.stats.first_time?;
    if let Some((wall, clock)) = clock_data(file) {
        let start = i128::from(wall) + i128::from(first) - i128::from(clock);
        return Some((i64::try_from(start).ok()?, StartTimeSource::ClockData));
    }
    let (end, source) = if input == Path::new("-") {
        (SystemTime::now(), StartTimeSource::ReportTime)
    } else {
        let modified = std::fs::metadata(input).and_then(|m| m.modified()).ok()?;
        (modified, StartTimeSource::FileTime)
    };
    let end = end.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos();
    let start = end.checked_sub(u128::from(profile.stats.duration_ns()))?;
    Some((i64::try_from(start).ok()?, source))
}

/// pprof output: every event unless `--event` picks one.
fn pprof_output(input: &Path, file: &PerfFile, profile: &Profile, event: Option<EventId>) -> Pprof {
    let mut comments = Vec::new();
    if !file.metadata().cmdline.is_empty() {
        comments.push(format!("command: {}", file.metadata().cmdline.join(" ")));
    }
    if let Some(host) = &file.metadata().hostname {
        comments.push(format!("host: {host}"));
    }
    if let Some(off_cpu) = &profile.stats.off_cpu {
        comments.push(format!("off-CPU: {}", offcpu::sampling_statement(off_cpu)));
    }
    Pprof {
        event,
        sampling: event_sampling(file, profile),
        start: start_time(input, file, profile),
        comments,
    }
}

/// A recording as gzipped pprof, as `--format pprof` writes it, timed from
/// `start` (wall clock): continuous mode turns each interval into the
/// profile it pushes.
pub fn pprof_of_recording(path: &Path, start: SystemTime) -> Result<Vec<u8>> {
    let file = PerfFile::open(path)?;
    // Only the embedded table: the recorder symbolized every address as it
    // finished the interval, and what it could not name this host cannot
    // either; trying again would reread those binaries every interval.
    let mut profile =
        aggregate::profile_file_with_progress(&file, &ProfileOptions::default(), &NoProgress);
    profile.name_locations(&embedded_symbols(&file, &mut Vec::new()));
    let mut pprof = pprof_output(path, &file, &profile, None);
    let start_ns = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
    if let Some(ns) = start_ns {
        pprof.start = Some((ns, StartTimeSource::IntervalStart));
    }
    let mut out = Vec::new();
    pprof.write(&profile, &mut out)?;
    Ok(out)
}

/// Binary formats are not written to a terminal.
fn check_binary_output(args: &ReportArgs, stdout_is_terminal: bool) -> Result<()> {
    if effective_format(args)? == ReportFormat::Pprof && args.output.is_none() && stdout_is_terminal
    {
        bail!(
            "--format pprof writes a gzip-compressed binary profile, not for a terminal: \
             name a file with -o FILE (e.g. -o profile.pb.gz), or pipe it into another \
             command or a file"
        );
    }
    Ok(())
}

/// The flame graph options (svg, html) from the flags and the recording.
fn flame_options(
    args: &ReportArgs,
    input: &Path,
    file: &PerfFile,
    profile: &Profile,
    chosen: Option<EventId>,
) -> Result<FlameOptions> {
    let min_width = match &args.min_width {
        Some(text) => MinWidth::parse(text).map_err(anyhow::Error::msg)?,
        None => MinWidth::default(),
    };
    let event = single_event(input, profile, chosen);
    let (title, subtitle) = flame_graph_titles(input, file, profile, event);
    Ok(FlameOptions {
        title,
        subtitle: Some(subtitle),
        event,
        inverted: args.inverted,
        min_width,
    })
}

/// Flags that only flame graphs use are refused elsewhere, as -g is
/// outside top and tree: a flag that changes nothing would mislead.
fn check_flame_flags(args: &ReportArgs, format: ReportFormat) -> Result<()> {
    if matches!(format, ReportFormat::Svg | ReportFormat::Html) {
        if let Some(text) = &args.min_width {
            MinWidth::parse(text).map_err(anyhow::Error::msg)?;
        }
        return Ok(());
    }
    let flag = if args.inverted {
        "--inverted"
    } else if args.min_width.is_some() {
        "--min-width"
    } else {
        return Ok(());
    };
    let name = format
        .to_possible_value()
        .map_or_else(|| format!("{format:?}"), |v| v.get_name().to_string());
    bail!("{flag} shapes a flame graph: use it with --format svg or html, not {name}")
}

fn output_for(
    args: &ReportArgs,
    input: &Path,
    file: &PerfFile,
    profile: &Profile,
) -> Result<Box<dyn Output>> {
    let chosen = selected_event(args, input, profile)?;
    let format = effective_format(args)?;
    Ok(match format {
        ReportFormat::Script => {
            bail!("the script format is written from the records, not a profile")
        }
        ReportFormat::Pprof => Box::new(pprof_output(input, file, profile, chosen)),
        ReportFormat::Folded => Box::new(Folded {
            event: single_event(input, profile, chosen),
        }),
        ReportFormat::Svg => Box::new(FlameGraphSvg {
            flame: flame_options(args, input, file, profile, chosen)?,
        }),
        ReportFormat::Html => Box::new(FlameGraphHtml {
            flame: flame_options(args, input, file, profile, chosen)?,
        }),
        ReportFormat::Top | ReportFormat::Tree => {
            let sort = SortKey::parse_list(&args.sort).map_err(anyhow::Error::msg)?;
            for (flag, value) in [
                ("--percent-limit", args.percent_limit),
                ("--branch-limit", args.branch_limit),
            ] {
                if !(0.0..=100.0).contains(&value) {
                    bail!("{flag} {value}: expected a percentage between 0 and 100");
                }
            }
            let children = if args.no_children {
                false
            } else {
                args.children || profile.stats.has_callchains
            };
            let order = match args.perf_call_graph.unwrap_or(args.order) {
                args::TreeOrder::Callee => TreeOrder::Callee,
                args::TreeOrder::Caller => TreeOrder::Caller,
            };
            let tree = (format == ReportFormat::Tree).then_some(TreeOptions {
                order,
                max_depth: args.max_stack,
                branch_limit: args.branch_limit,
            });
            Box::new(Top::new(TopOptions {
                sort,
                children,
                percent_limit: args.percent_limit,
                source: input_name(input),
                event: chosen,
                fit: fit(args)?,
                tree,
            }))
        }
    })
}

pub fn run(args: &ReportArgs) -> Result<()> {
    check_flame_flags(args, effective_format(args)?)?;
    let filter = filter(args)?;
    let input = input_path(args);
    check_binary_output(args, io::stdout().is_terminal())?;
    let file = open_input(args, &input)?;
    if effective_format(args)? == ReportFormat::Script {
        return script(args, &file);
    }
    // Small files are read in a blink: a bar would only flicker.
    let profile = if file.len() >= PROGRESS_MIN_BYTES {
        load_profile(&file, &filter, &TerminalProgress::on_stderr())
    } else {
        load_profile(&file, &filter, &NoProgress)
    };
    let output = output_for(args, &input, &file, &profile)?;
    if !matches!(
        effective_format(args)?,
        ReportFormat::Top | ReportFormat::Tree
    ) {
        for warning in &profile.warnings {
            eprintln!("rprof: warning: {warning}");
        }
    }
    if profile.total_samples() == 0 {
        eprintln!(
            "rprof: warning: {} holds no samples{}",
            input_name(&input),
            if profile.stats.filtered_out > 0 {
                " that match the filter"
            } else {
                ""
            }
        );
    }
    match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            output
                .write(&profile, &mut out)
                .and_then(|_| out.flush())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            output.write(&profile, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

/// `--format script`: every sample, in time order.
fn script(args: &ReportArgs, file: &PerfFile) -> Result<()> {
    let events = ScriptEvents::of_file(file);
    let write = |out: &mut dyn Write| -> Result<()> {
        write_script(file.ordered(), &events, out)?;
        out.flush()?;
        Ok(())
    };
    match &args.output {
        Some(path) => {
            let created =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            write(&mut BufWriter::new(created))
                .with_context(|| format!("writing {}", path.display()))
        }
        None => write(&mut BufWriter::new(io::stdout().lock())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flame_graph_title_is_the_profiled_command() {
        let cases = [
            (
                "/usr/bin/rprof record -g -o x.data -- ./work split 2",
                Some("work split 2"),
            ),
            ("rprof record -F 99 /bin/sleep 1", Some("sleep 1")),
            ("perf record -g ./app --fast", Some("app --fast")),
            ("rprof record -p 1234 -g", None),
            ("rprof record -a --duration 5", None),
            ("", None),
        ];
        for (cmdline, want) in cases {
            assert_eq!(
                profiled_command(&words(cmdline)).as_deref(),
                want,
                "{cmdline}"
            );
        }
    }

    #[test]
    fn flame_flags_are_refused_outside_flame_graphs() {
        use clap::Parser;
        let args = |line: &str| match crate::cli::args::Cli::parse_from(words(line)).command {
            crate::cli::args::Command::Report(args) => args,
            _ => unreachable!(),
        };
        for ok in [
            "rprof report --format svg --inverted",
            "rprof report --format html --min-width 1%",
        ] {
            let a = args(ok);
            assert!(check_flame_flags(&a, a.format).is_ok(), "{ok}");
        }
        let a = args("rprof report --format folded --inverted");
        assert_eq!(
            check_flame_flags(&a, a.format).unwrap_err().to_string(),
            "--inverted shapes a flame graph: use it with --format svg or html, not folded"
        );
        let a = args("rprof report --min-width 3");
        assert!(check_flame_flags(&a, a.format)
            .unwrap_err()
            .to_string()
            .starts_with("--min-width shapes a flame graph"));
    }

    #[test]
    fn dash_input_from_a_terminal_is_refused() {
        let err = check_stdin_input(true).unwrap_err().to_string();
        assert_eq!(
            err,
            "-i -: standard input is a terminal; pipe a recording into it"
        );
        assert!(check_stdin_input(false).is_ok());
    }

    #[test]
    fn pprof_to_a_terminal_is_refused_but_a_file_or_pipe_is_not() {
        use clap::Parser;
        let args = |extra: &[&str]| {
            let cli = crate::cli::args::Cli::try_parse_from(
                ["rprof", "report", "--format", "pprof"].iter().chain(extra),
            )
            .unwrap();
            match cli.command {
                crate::cli::args::Command::Report(args) => args,
                _ => unreachable!(),
            }
        };
        let err = check_binary_output(&args(&[]), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("-o FILE") && err.contains("pipe"), "{err}");
        assert!(check_binary_output(&args(&[]), false).is_ok());
        assert!(check_binary_output(&args(&["-o", "x.pb.gz"]), true).is_ok());
    }
}
