//! `rprof record`: opens the events, launches or attaches to the target,
//! drains the per-CPU rings into a perf.data file, and before exiting embeds
//! the symbols of every sampled address so the file is self-contained.

mod compact;
mod held;
pub mod rotate;
mod session;
mod synth;
pub(crate) mod target;

pub use rotate::{FinishedInterval, IntervalSink, NoSink, Rotation, RotationSummary};

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::abi::flag;
use crate::event::{EventSpec, Sampling};
use crate::perfdata::pipe::{unlinked_temp_file, PipeWriter};
use crate::perfdata::writer::{encode, AttrEntry, DataSink, FeatureData, PerfDataWriter};
use crate::perfdata::{PerfFile, WriteError};
use crate::progress::Progress;
use crate::symbolize::{
    ModuleRef, ModuleReport, ModuleRequest, SymbolTable, SymbolizeOptions, Symbolizer,
};
use crate::sys::{self, ChildStdout, HeldChild};

use rotate::{OutputLayout, Rotator, RotatorSetup};
use session::{RecordSink, Session, StopSignals};
use target::{Plan, Synth};

/// Who to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Launch `argv` (bytes, not necessarily UTF-8); events are enabled at its exec.
    Launch { argv: Vec<OsString> },
    /// Attach to these processes (all their threads, and threads they create).
    /// With `argv`, the command's lifetime is the recording window.
    Pids {
        pids: Vec<u32>,
        argv: Option<Vec<OsString>>,
    },
    /// Only these threads.
    Tids {
        tids: Vec<u32>,
        argv: Option<Vec<OsString>>,
    },
    /// Every process on the given CPUs (all online CPUs when `cpus` is None).
    SystemWide { argv: Option<Vec<OsString>> },
}

/// Where a recording goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutput {
    /// A perf.data file (`-o FILE`); an existing one is kept as `FILE.old`.
    File(PathBuf),
    /// A pipe-mode stream on standard output (`-o -`). A command rprof
    /// launches gets rprof's standard error as its standard output.
    Stdout,
}

impl RecordOutput {
    /// How messages name it.
    pub fn describe(&self) -> String {
        match self {
            RecordOutput::File(path) => path.display().to_string(),
            RecordOutput::Stdout => STDOUT_NAME.to_string(),
        }
    }
}

/// `-o`'s default.
pub const DEFAULT_OUTPUT: &str = "rprof.data";

/// How messages name standard output.
const STDOUT_NAME: &str = "standard output";

/// Validated `record` configuration (built from the CLI flags by `cli`).
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// What to sample, in order (at least one; `-e` will fill it).
    pub events: Vec<EventSpec>,
    pub target: Target,
    /// Restrict to these CPUs (`-C`); None = all online CPUs.
    pub cpus: Option<Vec<u32>>,
    /// Stop after this long (`--duration`).
    pub duration: Option<Duration>,
    /// Output file (default `rprof.data`), or standard output.
    pub output: RecordOutput,
    /// Ring buffer size per CPU in pages (power of two; default 128 + 1 header page).
    pub mmap_pages: usize,
    /// Embed symbols at the end (default true; `--no-embed-symbols` for speed tests).
    pub embed_symbols: bool,
    /// The command line that started rprof, stored in the file (HEADER_CMDLINE).
    pub cmdline: Vec<String>,
    /// One file per interval (`--rotate`); `output` then names the
    /// directory or file prefix ([`OutputLayout`]). Default None.
    pub rotate: Option<Rotation>,
    /// With `rotate`: keep only the newest N interval files (`--keep`).
    /// Default None (keep all).
    pub keep: Option<usize>,
}

/// What a finished recording reports in its one-line summary.
#[derive(Debug, Clone, Default)]
pub struct RecordOutcome {
    pub samples: u64,
    /// Samples lost to ring overflow (PERF_RECORD_LOST) or LOST_SAMPLES.
    pub lost: u64,
    pub throttle_events: u64,
    pub duration: Duration,
    pub file_size: u64,
    /// rprof's own CPU time (user + system) until the recording stopped:
    /// setup, the drain loop, /proc synthesis; not the symbolization after.
    pub profiler_cpu: Duration,
    /// Wall time after the recording stopped: symbolizing every sampled
    /// address and writing the feature sections.
    pub finish_time: Duration,
    /// Whether the symbol table was embedded (not with `--no-embed-symbols`,
    /// nor when symbolization failed).
    pub symbols_embedded: bool,
    /// DWARF mode: what unwinding the stack copies at the end did (None
    /// when the file keeps them: pipe mode, or the rewrite failed).
    pub unwound: Option<crate::perfdata::UnwoundStacks>,
    /// Exit code of the launched command when it ended by itself (128+signal
    /// if a signal killed it); None when rprof stopped it or launched nothing.
    pub child_exit_code: Option<i32>,
    /// Warnings to print after the summary (clamped rate, threads that
    /// vanished, symbols that could not be read, ...).
    pub warnings: Vec<String>,
    /// With `--rotate`: the files written (`file_size` is their total).
    pub rotation: Option<RotationSummary>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    #[error(transparent)]
    Write(#[from] crate::perfdata::WriteError),
    #[error(transparent)]
    Read(#[from] crate::perfdata::ReadError),
    #[error("no such process: {0} (check the PID with `ps -p {0}`)")]
    NoSuchProcess(u32),
    #[error("cannot run {program}: {reason}")]
    Exec { program: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// Runs a whole recording. Blocks until the target exits, the duration
/// elapses, or SIGINT/SIGTERM arrives; always finishes a valid file.
///
/// The steps: resolve the target (fork the held command, list threads) ->
/// open events and rings -> create the file -> enable / release the command
/// -> describe what already runs (/proc) -> drain until done -> reap the
/// command -> embed symbols and feature sections.
pub fn run(config: &RecordConfig, progress: &dyn Progress) -> Result<RecordOutcome, RecordError> {
    run_with_sink(config, progress, &mut NoSink)
}

/// Where the loop writes: one file, or one per interval.
enum Output<'s> {
    Single {
        writer: Box<dyn DataSink>,
        existed: bool,
    },
    Rotating(Box<Rotator<'s>>),
}

impl Output<'_> {
    fn sink(&mut self) -> &mut dyn RecordSink {
        match self {
            Output::Single { writer, .. } => writer,
            Output::Rotating(rotator) => &mut **rotator,
        }
    }

    /// Removes what a recording that never started wrote.
    fn discard(self, config: &RecordConfig) {
        match self {
            Output::Single { writer, existed } => {
                drop(writer);
                if let RecordOutput::File(path) = &config.output {
                    discard_output(path, existed);
                }
            }
            Output::Rotating(rotator) => (*rotator).discard(),
        }
    }
}

/// [`run`], telling `sink` about each interval file as it is finished
/// (with `config.rotate`; never called without).
pub fn run_with_sink(
    config: &RecordConfig,
    progress: &dyn Progress,
    sink: &mut dyn IntervalSink,
) -> Result<RecordOutcome, RecordError> {
    let mut warnings = Vec::new();
    if config.events.is_empty() {
        return Err(RecordError::Other("no event to record".into()));
    }
    if config.rotate.is_some() && config.output == RecordOutput::Stdout {
        return Err(RecordError::Other(
            "--rotate writes one file per interval and cannot write to standard output; \
             give a directory with -o DIR/"
                .into(),
        ));
    }
    let mut events = config.events.clone();
    let max_rate = sys::max_sample_rate();
    for event in &mut events {
        warnings.extend(clamp_frequency(event, max_rate));
        // A file is rewritten without the kernel's user chains once the
        // stacks are unwound (a pipe-mode stream keeps what perf expects).
        event.kernel_user_chain = matches!(config.output, RecordOutput::File(_));
    }
    let cpus = select_cpus(config.cpus.as_deref(), &sys::online_cpus()?)?;

    let child_stdout = match config.output {
        RecordOutput::File(_) => ChildStdout::Inherit,
        RecordOutput::Stdout => ChildStdout::Stderr,
    };
    let mut plan = target::prepare(&config.target, child_stdout)?;
    let mut session = Session::open(&events, &plan, &cpus, config.mmap_pages, &mut warnings)?;
    // Synthesized records take the first event's layout (it asks for them).
    let sample_type = session.attrs[0].sample_type;
    let data_mappings = session.attrs[0].has_flag(flag::MMAP_DATA);

    let entries: Vec<AttrEntry> = session
        .attrs
        .iter()
        .zip(session.ids()?)
        .map(|(&attr, ids)| AttrEntry { attr, ids })
        .collect();
    let host = host_features(config, &events);
    let mut output = match (config.rotate, &config.output) {
        (Some(rotation), RecordOutput::File(path)) => {
            let setup = RotatorSetup {
                layout: OutputLayout::from_output(path),
                rotation,
                keep: config.keep,
                entries: entries.clone(),
                host: host.clone(),
                embed_symbols: config.embed_symbols,
                sample_type,
                data_mappings,
                cgroups: session.attrs[0].has_flag(flag::CGROUP),
                plan: &plan,
            };
            Output::Rotating(Box::new(Rotator::new(setup, sink)?))
        }
        _ => {
            let (writer, existed) = open_output(config, &entries, &host, &mut warnings)?;
            Output::Single { writer, existed }
        }
    };
    let mut stop = StopSignals::install(config.rotate.is_some())?;

    // Start: events on a launched command enable themselves at its exec.
    let started = Instant::now();
    if !plan.child_is_target {
        session.enable()?;
    }
    if let Some(child) = plan.child.as_mut() {
        if let Err(failure) = child.release() {
            output.discard(config);
            return Err(RecordError::Exec {
                program: plan_program(&config.target),
                reason: failure.reason,
            });
        }
    }
    let cgroups = session.attrs[0].has_flag(flag::CGROUP);
    let initial = InitialRecords {
        data_mappings,
        cgroups,
    };
    match &mut output {
        Output::Single { writer, .. } => {
            write_initial_records(&mut **writer, &plan, sample_type, initial, &mut warnings)?
        }
        Output::Rotating(rotator) => rotator.describe_processes(true)?,
    }

    // A duration too long to represent is no deadline at all.
    let deadline = config.duration.and_then(|d| started.checked_add(d));
    let stats = match session.record_loop(output.sink(), &mut plan.watch, &mut stop, deadline) {
        Ok(stats) => stats,
        Err(err @ RecordError::Write(WriteError::OutputClosed { .. })) => {
            // The reader went away: nobody gets this recording. Stop the
            // command as at the end of a recording, not with SIGKILL.
            drop(session);
            if let Some(child) = plan.child.as_mut() {
                reap(child);
            }
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    let duration = started.elapsed();
    // The recording's own cost, before the end-of-run symbolization.
    let profiler_cpu = sys::getrusage_self();
    let child_exit_code = plan.child.as_mut().and_then(reap);
    drop(session);

    if stats.malformed_bytes > 0 {
        warnings.push(format!(
            "{} bytes of malformed ring data were dropped",
            stats.malformed_bytes
        ));
    }
    let outcome = RecordOutcome {
        samples: stats.samples,
        lost: stats.lost,
        throttle_events: stats.throttles,
        duration,
        profiler_cpu,
        child_exit_code,
        ..RecordOutcome::default()
    };
    match output {
        Output::Single { writer, .. } => finish_single(
            config, writer, &entries, host, &stop, progress, outcome, warnings,
        ),
        Output::Rotating(mut rotator) => {
            rotator.mark_data_complete()?;
            stop.exit_on_next();
            let finish_started = Instant::now();
            let (summary, more) = rotator.finish_last()?;
            warnings.extend(more);
            Ok(RecordOutcome {
                file_size: summary.bytes,
                finish_time: finish_started.elapsed(),
                symbols_embedded: config.embed_symbols && summary.all_symbols_embedded,
                unwound: summary.unwound,
                rotation: Some(summary),
                warnings,
                ..outcome
            })
        }
    }
}

/// The end of a one-file recording: DWARF unwinding, symbols, features.
#[allow(clippy::too_many_arguments)]
fn finish_single(
    config: &RecordConfig,
    mut writer: Box<dyn DataSink>,
    entries: &[AttrEntry],
    host: FeatureData,
    stop: &StopSignals,
    progress: &dyn Progress,
    outcome: RecordOutcome,
    mut warnings: Vec<String>,
) -> Result<RecordOutcome, RecordError> {
    writer.mark_data_complete()?;
    // From here a further Ctrl-C may exit at once: the data is written.
    stop.exit_on_next();
    let embed_started = Instant::now();
    let output = match &config.output {
        RecordOutput::File(path) => Some(path.as_path()),
        RecordOutput::Stdout => None,
    };
    let (mut writer, rewritten) = unwind_stacks(output, entries, writer, progress, &mut warnings);
    let symbolizer = Symbolizer::new(SymbolizeOptions::default());
    let mut features = with_symbols(
        config.embed_symbols,
        host,
        &mut *writer,
        progress,
        &mut warnings,
        &mut |requests| symbolizer.symbolize_with_progress(requests, progress),
    );
    let unwound = rewritten.as_ref().map(|r| r.stats);
    features.rprof_unwound = unwound;
    let symbols_embedded = features.rprof_symbols.is_some();
    let file_size = writer.finish(&features);
    let file_size = match rewritten {
        Some(rewritten) => rewritten.replace_output(file_size)?,
        None => file_size?,
    };
    Ok(RecordOutcome {
        file_size,
        finish_time: embed_started.elapsed(),
        symbols_embedded,
        unwound,
        warnings,
        ..outcome
    })
}

/// A DWARF recording rewritten with its stacks unwound, in a temporary
/// file that replaces the output once finished.
struct Rewritten {
    temp: PathBuf,
    output: PathBuf,
    stats: crate::perfdata::UnwoundStacks,
}

impl Rewritten {
    /// Moves the finished rewrite over the output (which holds the stack
    /// copies until then); `finished` is the rewrite's `finish`.
    fn replace_output(self, finished: Result<u64, WriteError>) -> Result<u64, RecordError> {
        let size = finished.inspect_err(|_| {
            let _ = std::fs::remove_file(&self.temp);
        })?;
        std::fs::rename(&self.temp, &self.output).map_err(|e| {
            let _ = std::fs::remove_file(&self.temp);
            RecordError::Other(format!(
                "cannot move the unwound recording over {} ({e}); it keeps the stack copies",
                self.output.display()
            ))
        })?;
        Ok(size)
    }
}

/// DWARF mode into a file (`output`; None for pipe mode): the stack
/// copies are unwound now and replaced by call chains ([`compact`]).
/// Returns the writer to finish: the rewrite's, or `writer` itself for
/// other recordings, pipe mode (a stream cannot be rewritten) and a rewrite
/// that failed (a warning says why).
fn unwind_stacks(
    output: Option<&Path>,
    entries: &[AttrEntry],
    mut writer: Box<dyn DataSink>,
    progress: &dyn Progress,
    warnings: &mut Vec<String>,
) -> (Box<dyn DataSink>, Option<Rewritten>) {
    let Some(output) = output else {
        return (writer, None);
    };
    if !compact::wanted(entries) {
        return (writer, None);
    }
    let temp = compact::temp_path(output);
    let rewritten = writer
        .read_back()
        .map_err(RecordError::from)
        .and_then(|raw| compact::rewrite(&raw, entries, &temp, progress, warnings));
    match rewritten {
        Ok((compact, stats)) => {
            drop(writer);
            let rewritten = Rewritten {
                temp,
                output: output.to_path_buf(),
                stats,
            };
            (Box::new(compact), Some(rewritten))
        }
        Err(e) => {
            warnings.push(format!(
                "the stack copies were kept ({e}); `rprof report` unwinds them when it reads the file"
            ));
            (writer, None)
        }
    }
}

/// Opens where the recording goes; also says whether `-o FILE` existed
/// before (it was moved to `FILE.old`).
fn open_output(
    config: &RecordConfig,
    entries: &[AttrEntry],
    host: &FeatureData,
    warnings: &mut Vec<String>,
) -> Result<(Box<dyn DataSink>, bool), RecordError> {
    match &config.output {
        RecordOutput::File(path) => {
            let existed = path.symlink_metadata().is_ok_and(|m| m.is_file());
            Ok((Box::new(PerfDataWriter::create(path, entries)?), existed))
        }
        RecordOutput::Stdout => {
            let stdout = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| RecordError::Other(format!("cannot use standard output: {e}")))?;
            // Symbols are embedded from a copy of the stream (see PipeWriter).
            let copy = if config.embed_symbols {
                let dir = std::env::temp_dir();
                match unlinked_temp_file(&dir) {
                    Ok(file) => Some(file),
                    Err(e) => {
                        warnings.push(format!(
                            "cannot create a temporary file in {} ({e}), so symbols will not \
                             be embedded; set TMPDIR to a writable directory",
                            dir.display()
                        ));
                        None
                    }
                }
            } else {
                None
            };
            let writer = PipeWriter::new(File::from(stdout), STDOUT_NAME, copy, entries, host)?;
            Ok((Box::new(writer), false))
        }
    }
}

/// The CPUs to open events on: `-C` (each must be online) or all online ones.
fn select_cpus(requested: Option<&[u32]>, online: &[u32]) -> Result<Vec<u32>, RecordError> {
    let cpus = match requested {
        Some(cpus) => {
            if let Some(bad) = cpus.iter().find(|c| !online.contains(c)) {
                let list: Vec<String> = online.iter().map(u32::to_string).collect();
                return Err(RecordError::Other(format!(
                    "CPU {bad} is not online (online CPUs: {})",
                    list.join(",")
                )));
            }
            cpus.to_vec()
        }
        None => online.to_vec(),
    };
    if cpus.is_empty() {
        return Err(RecordError::Other("no CPUs to record on".into()));
    }
    Ok(cpus)
}

/// Clamps `-F` to `kernel.perf_event_max_sample_rate` as perf does; returns
/// the warning to show when it did.
fn clamp_frequency(event: &mut EventSpec, max_rate: Option<u64>) -> Option<String> {
    match (event.sampling, max_rate) {
        (Sampling::Frequency(hz), Some(max)) if max > 0 && hz > max => {
            event.sampling = Sampling::Frequency(max);
            Some(format!(
                "-F {hz} is above kernel.perf_event_max_sample_rate ({max}); sampling at {max} Hz \
                 (raise it with `sudo sysctl kernel.perf_event_max_sample_rate={hz}`)"
            ))
        }
        _ => None,
    }
}

/// What the records written at the start describe besides the kernel map.
#[derive(Debug, Clone, Copy)]
struct InitialRecords {
    /// Data mappings too (the events ask the kernel for them: DWARF mode).
    data_mappings: bool,
    /// The existing cgroups (`--label-cgroup`: the events ask for new ones).
    cgroups: bool,
}

/// The kernel map, then (attach modes) what already runs, and the cgroups
/// that exist.
fn write_initial_records(
    writer: &mut dyn DataSink,
    plan: &Plan,
    sample_type: u64,
    what: InitialRecords,
    warnings: &mut Vec<String>,
) -> Result<(), RecordError> {
    let mut buf = synth::kernel_mmap(sample_type);
    if what.cgroups {
        synthesize_cgroups(sample_type, &mut buf, warnings);
    }
    let pids = match &plan.synth {
        Synth::Nothing => Vec::new(),
        Synth::Processes(pids) => pids.clone(),
        Synth::All => synth::all_pids(),
    };
    for pid in pids {
        let alive = synth::synthesize_process(sample_type, pid, what.data_mappings, &mut buf);
        if !alive && plan.synth != Synth::All {
            warnings.push(format!(
                "process {pid} exited before its mappings could be read"
            ));
        }
    }
    buf.extend(encode::finished_round());
    writer.write_raw(&buf)?;
    Ok(())
}

/// CGROUP records for the cgroups of the perf_event hierarchy; what fails
/// becomes a warning (samples then carry ids without paths).
pub(crate) fn synthesize_cgroups(sample_type: u64, buf: &mut Vec<u8>, warnings: &mut Vec<String>) {
    let mount = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|info| crate::procfs::perf_event_cgroup_mount(&info));
    let Some(mount) = mount else {
        warnings.push(
            "--label-cgroup: no cgroup file system is mounted, so existing cgroups are \
             labelled by id (`cgroup_id`), not path"
                .into(),
        );
        return;
    };
    let walk = synth::synthesize_cgroups(
        sample_type,
        &mount.mountpoint,
        &mount.root,
        synth::MAX_CGROUPS,
        buf,
    );
    warnings.extend(walk.warnings(&mount.mountpoint));
}

fn plan_program(target: &Target) -> String {
    let argv = match target {
        Target::Launch { argv } => Some(argv),
        Target::Pids { argv, .. } | Target::Tids { argv, .. } | Target::SystemWide { argv } => {
            argv.as_ref()
        }
    };
    argv.and_then(|a| a.first())
        .map(|program| program.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes the file of a recording that never started; puts back the
/// previous file the writer moved to `FILE.old`.
fn discard_output(output: &Path, existed_before: bool) {
    let _ = std::fs::remove_file(output);
    if existed_before {
        let mut old = output.as_os_str().to_os_string();
        old.push(".old");
        let _ = std::fs::rename(&old, output);
    }
}

/// Exit code of a command that ended by itself. One still running when
/// recording stops (duration, signal to rprof only) gets SIGTERM, as with
/// perf; its exit code then says nothing about the recording, so None.
fn reap(child: &mut HeldChild) -> Option<i32> {
    match child.try_wait() {
        Some(code) => Some(code),
        None => {
            child.terminate(Duration::from_secs(2));
            None
        }
    }
}

/// Host facts for the feature sections (known before the recording
/// starts: a pipe-mode stream writes them first).
fn host_features(config: &RecordConfig, events: &[EventSpec]) -> FeatureData {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let online = sys::online_cpus().map(|c| c.len() as u32).unwrap_or(0);
    let present = sys::present_cpus()
        .map(|c| c.len() as u32)
        .unwrap_or(online);
    FeatureData {
        hostname: read("/proc/sys/kernel/hostname"),
        osrelease: read("/proc/sys/kernel/osrelease"),
        version: Some(format!("rprof {}", env!("CARGO_PKG_VERSION"))),
        arch: Some(std::env::consts::ARCH.to_string()),
        nrcpus: Some((online, present.max(online))),
        cmdline: config.cmdline.clone(),
        event_names: events.iter().map(|e| e.name.clone()).collect(),
        build_ids: Vec::new(),
        rprof_symbols: None,
        rprof_unwound: None,
        trace_formats: events
            .iter()
            .filter_map(|e| e.trace_format.clone())
            .collect(),
        perf_tracing_data: perf_tracing_data(events),
    }
}

/// HEADER_TRACING_DATA for the tracepoints among `events`, so Linux perf
/// opens the file; `None` without tracepoints (or tracefs).
fn perf_tracing_data(events: &[EventSpec]) -> Option<Vec<u8>> {
    // A tracepoint is named `subsys:name[:modifiers]`.
    let formats: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| {
            let subsys = e.name.split(':').next()?;
            Some((subsys.to_string(), e.trace_format.clone()?))
        })
        .collect();
    if formats.is_empty() {
        return None;
    }
    let root = crate::event::EventSources::system().tracefs?;
    crate::event::tracepoint::perf_tracing_data(&root, &formats)
}

/// Resolves symbol requests: a fresh [`Symbolizer`], or (rotation) the
/// [`SymbolCache`](crate::symbolize::SymbolCache) kept across intervals.
type Symbolize<'a> =
    dyn FnMut(Vec<ModuleRequest>) -> (SymbolTable, HashMap<ModuleRef, ModuleReport>) + 'a;

/// `features` plus (if `embed`) the symbols of every sampled address,
/// read back from what `writer` wrote. Symbolization problems become
/// warnings; the recording itself is never lost over them.
fn with_symbols(
    embed: bool,
    mut features: FeatureData,
    writer: &mut dyn DataSink,
    progress: &dyn Progress,
    warnings: &mut Vec<String>,
    symbolize: &mut Symbolize<'_>,
) -> FeatureData {
    if embed {
        let embedded = writer
            .read_back()
            .map_err(RecordError::from)
            .and_then(|file| embed_symbols(&file, progress, warnings, symbolize));
        match embedded {
            Ok((table, build_ids)) => {
                features.rprof_symbols = Some(table);
                features.build_ids = build_ids;
            }
            Err(e) => warnings.push(format!(
                "symbols were not embedded ({e}); `rprof report` will read the binaries on this host instead"
            )),
        }
    }
    features
}

type BuildIds = Vec<(i32, Vec<u8>, String)>;

/// Reads the finished data back, symbolizes every sampled address, and
/// returns the encoded table and the modules' build ids.
fn embed_symbols(
    file: &PerfFile,
    progress: &dyn Progress,
    warnings: &mut Vec<String>,
    symbolize: &mut Symbolize<'_>,
) -> Result<(Vec<u8>, BuildIds), RecordError> {
    let requests = crate::aggregate::symbol_requests(file, progress);
    let (table, reports) = symbolize(requests);
    let mut reports: Vec<_> = reports.into_iter().collect();
    reports.sort_by(|a, b| a.0.cmp(&b.0));
    let mut build_ids = Vec::new();
    let mut problems = Vec::new();
    for (module, report) in reports {
        if let Some(id) = report.build_id.or(module.build_id.clone()) {
            // perf files every host module under the host machine's pid, -1.
            build_ids.push((-1, id, module.path.clone()));
        }
        if let Some(problem) = report.problem {
            problems.push(format!("{}: {problem}", module.path));
        }
    }
    const SHOWN: usize = 5;
    let more = problems.len().saturating_sub(SHOWN);
    warnings.extend(
        problems
            .into_iter()
            .take(SHOWN)
            .map(|p| format!("symbols: {p}")),
    );
    if more > 0 {
        warnings.push(format!(
            "symbols: ... and {more} more modules with problems"
        ));
    }
    Ok((table.encode(), build_ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::CallGraph;

    #[test]
    fn frequency_above_the_kernel_maximum_is_clamped_with_a_warning() {
        let mut ev = EventSpec::cpu_clock(Sampling::Frequency(100_000), CallGraph::None);
        let warning = clamp_frequency(&mut ev, Some(25_000)).unwrap();
        assert_eq!(ev.sampling, Sampling::Frequency(25_000));
        assert!(
            warning.contains("perf_event_max_sample_rate (25000)"),
            "{warning}"
        );
        let mut ev = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::None);
        assert_eq!(clamp_frequency(&mut ev, Some(25_000)), None);
        let mut ev = EventSpec::cpu_clock(Sampling::Period(10_000_000), CallGraph::None);
        assert_eq!(clamp_frequency(&mut ev, Some(1)), None);
        assert_eq!(clamp_frequency(&mut ev, None), None);
    }

    #[test]
    fn cpu_selection_checks_online_cpus() {
        assert_eq!(select_cpus(None, &[0, 1]).unwrap(), vec![0, 1]);
        assert_eq!(select_cpus(Some(&[1]), &[0, 1]).unwrap(), vec![1]);
        let err = select_cpus(Some(&[0, 4]), &[0, 1]).unwrap_err().to_string();
        assert!(
            err.contains("CPU 4 is not online (online CPUs: 0,1)"),
            "{err}"
        );
        assert!(select_cpus(Some(&[]), &[0, 1]).is_err());
    }

    #[test]
    fn program_name_comes_from_argv() {
        let t = Target::Launch {
            argv: vec!["./app".into(), "x".into()],
        };
        assert_eq!(plan_program(&t), "./app");
        assert_eq!(plan_program(&Target::SystemWide { argv: None }), "");
    }

    #[test]
    fn discard_output_restores_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("rprof.data");
        std::fs::write(dir.path().join("rprof.data.old"), b"previous").unwrap();
        std::fs::write(&out, b"new, useless").unwrap();
        discard_output(&out, true);
        assert_eq!(std::fs::read(&out).unwrap(), b"previous");
        discard_output(&out, false);
        assert!(!out.exists());
    }
}
