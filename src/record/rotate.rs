//! Continuous recording (`record --rotate`): one self-contained recording
//! per interval, like perf's `--switch-output`.
//!
//! The record loop writes whole drains; after a drain that reaches the
//! interval's end (time or size) or a SIGHUP, [`Rotator`] opens the next
//! file, describes every live process in it (kernel map, COMM/MMAP from
//! /proc), then finishes the previous file exactly like a one-shot
//! recording (DWARF unwinding, embedded symbols, feature sections) under a
//! temporary name, renames it into place and tells the [`IntervalSink`].
//! A sample is in exactly one file: the one its drain was written to.
//!
//! Finishing runs on a worker thread ([`Finisher`]), one interval after
//! another, while the recording thread goes on draining into the next
//! file: a finish takes tens of milliseconds with a warm symbol cache and
//! far more for the first interval, and with `--call-graph dwarf` at the
//! default rate a 128-page ring fills in about 20 ms, so finishing on the
//! recording thread lost samples. The sink is still called on the
//! recording thread (after the next drain once a file is done), in order.

use std::collections::{HashMap, HashSet};
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::held::FileHolder;
use super::session::RecordSink;
use super::target::{Plan, Synth};
use super::{synth, unwind_stacks, with_symbols, RecordError};
use crate::perfdata::writer::{encode, AttrEntry, FeatureData, PerfDataWriter};
use crate::perfdata::{UnwoundStacks, WriteError};
use crate::progress::NoProgress;
use crate::symbolize::held::{use_held, HeldFiles};
use crate::symbolize::{CacheLimits, SymbolCache, SymbolizeOptions};
use crate::sys::DrainStats;

/// When one interval's file ends (`--rotate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// After this long (`60s`, `5m`, `500ms`).
    Every(Duration),
    /// Once this many bytes of records are in the file (`100M`, `1G`).
    Size(u64),
}

/// Shortest interval: each one pays for /proc synthesis and a finish.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Smallest size: a handful of drains.
pub const MIN_SIZE: u64 = 4096;

impl std::str::FromStr for Rotation {
    type Err = String;

    /// `DURATION` (humantime: `500ms`, `60s`, `5m`, `1h`) or `SIZE` with a
    /// binary unit `K`, `M`, `G` or `T` (an optional `B`/`iB` after it).
    fn from_str(text: &str) -> Result<Rotation, String> {
        let text = text.trim();
        let advice = "give a time such as 60s, 5m, 1h, 500ms, or a size such as 100M, 1G";
        if let Some(bytes) = parse_size(text) {
            let bytes = bytes.ok_or_else(|| format!("{text}: too large"))?;
            if bytes < MIN_SIZE {
                return Err(format!("{text}: at least {}K per file", MIN_SIZE / 1024));
            }
            return Ok(Rotation::Size(bytes));
        }
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{text}: missing unit; {advice}"));
        }
        let every =
            humantime::parse_duration(text).map_err(|e| format!("{text}: {e}; {advice}"))?;
        if every < MIN_INTERVAL {
            return Err(format!(
                "{text}: intervals must be at least {} ms",
                MIN_INTERVAL.as_millis()
            ));
        }
        Ok(Rotation::Every(every))
    }
}

/// `Some(None)` for a size that overflows; None when `text` is not a size.
fn parse_size(text: &str) -> Option<Option<u64>> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (number, unit) = text.split_at(digits);
    let unit = unit.trim_end_matches("iB").trim_end_matches('B');
    let shift = match unit {
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    Some(
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1 << shift)),
    )
}

/// One finished interval file, as given to [`IntervalSink::finished`].
#[derive(Debug, Clone)]
pub struct FinishedInterval {
    /// The file under its final name.
    pub path: PathBuf,
    pub start: SystemTime,
    pub end: SystemTime,
    pub samples: u64,
    pub lost: u64,
    /// 1 for the first file a directory gets, then counting up.
    pub sequence: u64,
}

/// Told about each interval once its file is finished and renamed. Called
/// on the recording thread, so it must stay cheap (queue the work).
pub trait IntervalSink {
    fn finished(&mut self, interval: &FinishedInterval);
}

/// A sink that does nothing (plain [`run`](super::run)).
pub struct NoSink;

impl IntervalSink for NoSink {
    fn finished(&mut self, _: &FinishedInterval) {}
}

/// Where interval files go: `DIR/PREFIX-YYYYmmddTHHMMSSZ-NNNN.data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLayout {
    pub dir: PathBuf,
    /// `rprof` unless `-o` named a file prefix.
    pub prefix: String,
}

/// The prefix of files in a directory given with `-o DIR/`.
const DEFAULT_PREFIX: &str = "rprof";

impl OutputLayout {
    /// `-o DIR/` or an existing directory: files in it; `-o PATH`: `PATH`
    /// is a prefix (`run.data` -> `run-...-0001.data`). The default
    /// `rprof.data` means the current directory.
    pub fn from_output(output: &Path) -> OutputLayout {
        let text = output.as_os_str().to_string_lossy();
        let directory = |dir: &Path| OutputLayout {
            dir: dir.to_path_buf(),
            prefix: DEFAULT_PREFIX.into(),
        };
        if text.ends_with('/') || output.is_dir() {
            return directory(output);
        }
        if output == Path::new(super::DEFAULT_OUTPUT) {
            return directory(Path::new("."));
        }
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = name.strip_suffix(".data").unwrap_or(&name);
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        OutputLayout {
            dir,
            prefix: if prefix.is_empty() {
                DEFAULT_PREFIX.into()
            } else {
                prefix.into()
            },
        }
    }

    /// Creates the directory (mode 0700) when it does not exist.
    pub fn prepare(&self) -> Result<(), RecordError> {
        match std::fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(RecordError::Other(format!(
                "{} is not a directory; --rotate writes its files into a directory (-o DIR/)",
                self.dir.display()
            ))),
            Err(_) => DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| {
                    RecordError::Other(format!(
                        "cannot create {}: {e} (choose a writable directory with -o DIR/)",
                        self.dir.display()
                    ))
                }),
        }
    }

    /// `PREFIX-YYYYmmddTHHMMSSZ-NNNN.data` for an interval that started at `start` (UTC).
    pub fn file_name(&self, start: SystemTime, sequence: u64) -> String {
        let stamp: String = humantime::format_rfc3339_seconds(start)
            .to_string()
            .chars()
            .filter(|c| !matches!(c, '-' | ':'))
            .collect();
        format!("{}-{stamp}-{sequence:04}.data", self.prefix)
    }

    /// The (timestamp, sequence) of an interval file's name; None for
    /// every other name (which `--keep` never touches).
    pub fn parse_name<'n>(&self, name: &'n str) -> Option<(&'n str, u64)> {
        let rest = name.strip_prefix(&self.prefix)?.strip_prefix('-')?;
        let rest = rest.strip_suffix(".data")?;
        let (stamp, sequence) = rest.split_once('-')?;
        let b = stamp.as_bytes();
        let stamp_ok = b.len() == 16
            && b[8] == b'T'
            && b[15] == b'Z'
            && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
        let seq_ok = !sequence.is_empty() && sequence.bytes().all(|c| c.is_ascii_digit());
        (stamp_ok && seq_ok).then_some((stamp, sequence.parse().ok()?))
    }

    /// The interval files in the directory, oldest first.
    pub fn existing(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<(String, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (stamp, sequence) = self.parse_name(&name)?;
                Some((stamp.to_string(), sequence, e.path()))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, _, path)| path).collect()
    }

    /// The sequence number after the highest one in the directory, so a
    /// restarted recorder never reuses a name.
    pub fn next_sequence(&self) -> u64 {
        self.existing()
            .iter()
            .filter_map(|p| self.parse_name(p.file_name()?.to_str()?).map(|(_, s)| s))
            .max()
            .map_or(1, |s| s + 1)
    }

    /// Deletes the oldest interval files beyond `keep`; returns them.
    pub fn prune(&self, keep: usize) -> Vec<PathBuf> {
        let files = self.existing();
        let excess = files.len().saturating_sub(keep);
        files
            .into_iter()
            .take(excess)
            .filter(|p| std::fs::remove_file(p).is_ok())
            .collect()
    }
}

/// Which processes a new interval file describes from /proc.
#[derive(Debug, Clone)]
enum Describe {
    /// The launched command's process tree (rooted at this pid).
    Tree(u32),
    Processes(Vec<u32>),
    All,
    Nothing,
}

impl Describe {
    fn pids(&self) -> Vec<u32> {
        match self {
            Describe::Tree(root) => synth::process_tree(*root),
            Describe::Processes(pids) => pids.clone(),
            Describe::All => synth::all_pids(),
            Describe::Nothing => Vec::new(),
        }
    }
}

/// What the rotation did, for the summary.
#[derive(Debug, Clone, Default)]
pub struct RotationSummary {
    pub dir: PathBuf,
    pub files: u64,
    /// Bytes of all finished files.
    pub bytes: u64,
    /// Samples in all finished files (equals the recording's total).
    pub samples: u64,
    pub lost: u64,
    /// Files deleted by `--keep`.
    pub deleted: u64,
    /// Longest and total time spent finishing an interval.
    pub max_finish: Duration,
    pub total_finish: Duration,
    /// Whether every file got its symbols.
    pub all_symbols_embedded: bool,
    /// DWARF mode: the stacks unwound over all files.
    pub unwound: Option<UnwoundStacks>,
}

/// The interval being written.
struct Current {
    writer: PerfDataWriter,
    temp: PathBuf,
    path: PathBuf,
    start: SystemTime,
    started: Instant,
    sequence: u64,
    samples: u64,
    lost: u64,
    bytes: u64,
}

/// What the record stream said about each process (its COMM and mapping
/// records since its last exec), replayed at the start of every file: a
/// process that exits right after a boundary has samples in the new file
/// but is gone from /proc by the time that file describes what runs.
/// Bounded: a process's records past [`StreamProcesses::MAX_BYTES`] are
/// dropped (it is then described by /proc alone), and an exited process
/// is forgotten.
#[derive(Debug, Default)]
struct StreamProcesses {
    by_pid: HashMap<u32, Vec<u8>>,
}

impl StreamProcesses {
    const MAX_BYTES: usize = 256 << 10;

    /// Walks whole records (a drain) by their 8-byte headers.
    fn scan(&mut self, mut bytes: &[u8]) {
        use crate::abi::{misc, record_type};
        let u32_at = |b: &[u8], at: usize| {
            b.get(at..at + 4)
                .map(|v| u32::from_ne_bytes(v.try_into().expect("4 bytes")))
        };
        while bytes.len() >= 8 {
            let kind = u32_at(bytes, 0).unwrap_or(0);
            let flags = u16::from_ne_bytes([bytes[4], bytes[5]]);
            let size = usize::from(u16::from_ne_bytes([bytes[6], bytes[7]]));
            if size < 8 || size > bytes.len() {
                return;
            }
            let record = &bytes[..size];
            bytes = &bytes[size..];
            let Some(pid) = u32_at(record, 8) else {
                continue;
            };
            match kind {
                record_type::COMM | record_type::MMAP | record_type::MMAP2 if pid != u32::MAX => {
                    let kept = self.by_pid.entry(pid).or_default();
                    if kind == record_type::COMM && flags & misc::COMM_EXEC != 0 {
                        kept.clear();
                    }
                    if kept.len() + size <= Self::MAX_BYTES {
                        kept.extend_from_slice(record);
                    }
                }
                // EXIT: pid, ppid, tid; the process ends with its main thread.
                record_type::EXIT if u32_at(record, 16) == Some(pid) => {
                    self.by_pid.remove(&pid);
                }
                _ => {}
            }
        }
    }

    /// Forgets processes no longer in /proc.
    fn forget_gone(&mut self) {
        self.by_pid
            .retain(|pid, _| Path::new(&format!("/proc/{pid}")).exists());
    }

    fn replay(&self, out: &mut Vec<u8>) {
        let mut pids: Vec<&u32> = self.by_pid.keys().collect();
        pids.sort_unstable();
        for pid in pids {
            out.extend_from_slice(&self.by_pid[pid]);
        }
    }
}

/// What a [`Rotator`] needs from the recording.
pub(crate) struct RotatorSetup<'a> {
    pub layout: OutputLayout,
    pub rotation: Rotation,
    pub keep: Option<usize>,
    pub entries: Vec<AttrEntry>,
    pub host: FeatureData,
    pub embed_symbols: bool,
    pub sample_type: u64,
    pub data_mappings: bool,
    /// Describe the existing cgroups at the start of each file
    /// (`--label-cgroup`).
    pub cgroups: bool,
    pub plan: &'a Plan,
}

/// Writes the recording into one file per interval (see module docs).
pub(crate) struct Rotator<'s> {
    layout: OutputLayout,
    rotation: Rotation,
    entries: Vec<AttrEntry>,
    sample_type: u64,
    data_mappings: bool,
    cgroups: bool,
    /// What the first file describes, and what every later one does.
    first: Describe,
    later: Describe,
    stream: StreamProcesses,
    /// Module files of sampled processes, for their interval's finish.
    held: FileHolder,
    finisher: Finisher,
    sink: &'s mut dyn IntervalSink,
    current: Option<Current>,
    next_sequence: u64,
    summary: RotationSummary,
    warnings: Vec<String>,
    seen_warnings: HashSet<String>,
}

impl<'s> Rotator<'s> {
    /// Creates the directory and the first file (before the target runs,
    /// so a bad `-o` stops the recording before it starts).
    pub fn new(
        setup: RotatorSetup<'_>,
        sink: &'s mut dyn IntervalSink,
    ) -> Result<Rotator<'s>, RecordError> {
        setup.layout.prepare()?;
        let first = match &setup.plan.synth {
            Synth::Nothing => Describe::Nothing,
            Synth::Processes(pids) => Describe::Processes(pids.clone()),
            Synth::All => Describe::All,
        };
        // A launched command is described by the kernel at its exec; later
        // files need its tree from /proc.
        let later = match (&first, &setup.plan.child) {
            (Describe::Nothing, Some(child)) if setup.plan.child_is_target => {
                Describe::Tree(child.pid())
            }
            _ => first.clone(),
        };
        let held = FileHolder::new(&setup.entries);
        let mut rotator = Rotator {
            next_sequence: setup.layout.next_sequence(),
            summary: RotationSummary {
                dir: setup.layout.dir.clone(),
                all_symbols_embedded: true,
                ..RotationSummary::default()
            },
            finisher: Finisher::start(FinishContext {
                layout: setup.layout.clone(),
                keep: setup.keep,
                entries: setup.entries.clone(),
                host: setup.host,
                embed_symbols: setup.embed_symbols,
                symbols: SymbolCache::new(SymbolizeOptions::default(), CacheLimits::default()),
            })?,
            layout: setup.layout,
            rotation: setup.rotation,
            entries: setup.entries,
            sample_type: setup.sample_type,
            data_mappings: setup.data_mappings,
            cgroups: setup.cgroups,
            first,
            later,
            stream: StreamProcesses::default(),
            held,
            sink,
            current: None,
            warnings: Vec::new(),
            seen_warnings: HashSet::new(),
        };
        rotator.open_next()?;
        Ok(rotator)
    }

    /// Starts the next interval's file under its temporary name.
    fn open_next(&mut self) -> Result<(), RecordError> {
        let start = SystemTime::now();
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let name = self.layout.file_name(start, sequence);
        let path = self.layout.dir.join(&name);
        // Hidden and not matching the pattern: readers and --keep skip it.
        let temp = self.layout.dir.join(format!(".{name}.tmp"));
        // A leftover of a killed recorder would be kept as `.old` otherwise.
        if std::fs::symlink_metadata(&temp).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&temp);
        }
        let writer = PerfDataWriter::create(&temp, &self.entries)?;
        self.current = Some(Current {
            writer,
            temp,
            path,
            start,
            started: Instant::now(),
            sequence,
            samples: 0,
            lost: 0,
            bytes: 0,
        });
        Ok(())
    }

    /// The kernel map and the live processes, at the start of a file.
    pub fn describe_processes(&mut self, first: bool) -> Result<(), RecordError> {
        let describe = if first { &self.first } else { &self.later };
        let mut buf = synth::kernel_mmap(self.sample_type);
        if self.cgroups {
            // Each file names the cgroups its samples may carry.
            let mut warnings = Vec::new();
            super::synthesize_cgroups(self.sample_type, &mut buf, &mut warnings);
            for warning in warnings {
                if self.seen_warnings.insert(warning.clone()) {
                    self.warnings.push(warning);
                }
            }
        }
        self.stream.replay(&mut buf);
        // Replayed once after it went: enough for its last samples. Also
        // bounds the map when an EXIT record was lost.
        self.stream.forget_gone();
        for pid in describe.pids() {
            synth::synthesize_process(self.sample_type, pid, self.data_mappings, &mut buf);
        }
        buf.extend(encode::finished_round());
        self.held.scan_described(&buf);
        self.current_mut()?.writer.write_raw(&buf)?;
        Ok(())
    }

    fn current_mut(&mut self) -> Result<&mut Current, RecordError> {
        self.current
            .as_mut()
            .ok_or_else(|| RecordError::Other("no interval file is open".into()))
    }

    fn boundary_reached(&self, current: &Current) -> bool {
        match self.rotation {
            Rotation::Every(every) => current.started.elapsed() >= every,
            Rotation::Size(bytes) => current.bytes >= bytes,
        }
    }

    /// Opens the next file, then hands the previous one to the finisher.
    fn rotate(&mut self) -> Result<(), RecordError> {
        let end = SystemTime::now();
        let previous = self.current.take();
        let held = self.held.take_interval();
        self.open_next()?;
        self.describe_processes(false)?;
        if let Some(previous) = previous {
            self.finisher.send(previous, end, held)?;
        }
        Ok(())
    }

    /// Takes in what the finisher finished (all of it, when `wait`):
    /// counts it and tells the sink, in order.
    fn collect(&mut self, wait: bool) -> Result<(), RecordError> {
        while let Some(done) = self.finisher.next(wait)? {
            let summary = &mut self.summary;
            summary.files += 1;
            summary.bytes += done.size;
            summary.samples += done.interval.samples;
            summary.lost += done.interval.lost;
            summary.deleted += done.deleted;
            summary.max_finish = summary.max_finish.max(done.took);
            summary.total_finish += done.took;
            summary.all_symbols_embedded &= done.symbols_embedded;
            if let Some(u) = done.unwound {
                let total = summary.unwound.get_or_insert_with(UnwoundStacks::default);
                total.unwound += u.unwound;
                total.truncated += u.truncated;
                total.stack_bytes += u.stack_bytes;
                total.dropped_bytes += u.dropped_bytes;
                total.kept_bytes += u.kept_bytes;
            }
            // Every interval would repeat the same symbol problems.
            for warning in done.warnings {
                if self.seen_warnings.insert(warning.clone()) {
                    self.warnings.push(warning);
                }
            }
            self.sink.finished(&done.interval);
        }
        Ok(())
    }

    /// Finishes the last file and waits for every file to be finished:
    /// the recording is over.
    pub fn finish_last(mut self) -> Result<(RotationSummary, Vec<String>), RecordError> {
        if let Some(current) = self.current.take() {
            let held = self.held.take_interval();
            self.finisher.send(current, SystemTime::now(), held)?;
        }
        self.finisher.close();
        self.collect(true)?;
        self.warnings.extend(self.held.limit_warning());
        Ok((self.summary, self.warnings))
    }

    /// Flushes and marks the current file's data complete (before the
    /// last finish, and before a second signal may exit at once).
    pub fn mark_data_complete(&mut self) -> Result<(), RecordError> {
        self.current_mut()?.writer.mark_data_complete()?;
        Ok(())
    }

    /// A recording that never started: removes the open file.
    pub fn discard(mut self) {
        if let Some(current) = self.current.take() {
            drop(current.writer);
            let _ = std::fs::remove_file(&current.temp);
        }
    }
}

/// What finishing a file needs; owned by the finisher's thread.
struct FinishContext {
    layout: OutputLayout,
    keep: Option<usize>,
    entries: Vec<AttrEntry>,
    host: FeatureData,
    embed_symbols: bool,
    /// Kept across intervals: each resolves only addresses not seen before.
    symbols: SymbolCache,
}

/// One finished file, reported back to the recording thread.
struct Done {
    interval: FinishedInterval,
    size: u64,
    took: Duration,
    deleted: u64,
    symbols_embedded: bool,
    unwound: Option<UnwoundStacks>,
    warnings: Vec<String>,
}

impl FinishContext {
    /// Finishes a file like a one-shot recording, renames it into place
    /// and applies `--keep`.
    fn finish(
        &mut self,
        mut current: Current,
        end: SystemTime,
        held: HeldFiles,
    ) -> Result<Done, RecordError> {
        let started = Instant::now();
        // Closed when this returns: the interval no longer needs them.
        let _held = use_held(held);
        let mut warnings = Vec::new();
        current.writer.mark_data_complete()?;
        let (mut writer, rewritten) = unwind_stacks(
            Some(&current.temp),
            &self.entries,
            Box::new(current.writer),
            &NoProgress,
            &mut warnings,
        );
        let symbols = &mut self.symbols;
        let mut features = with_symbols(
            self.embed_symbols,
            self.host.clone(),
            &mut *writer,
            &NoProgress,
            &mut warnings,
            &mut |requests| symbols.symbolize(requests, &NoProgress),
        );
        let unwound = rewritten.as_ref().map(|r| r.stats);
        features.rprof_unwound = unwound;
        let symbols_embedded = !self.embed_symbols || features.rprof_symbols.is_some();
        let size = writer.finish(&features);
        let size = match rewritten {
            Some(rewritten) => rewritten.replace_output(size)?,
            None => size?,
        };
        std::fs::rename(&current.temp, &current.path).map_err(|source| {
            RecordError::Write(WriteError::Io {
                path: current.path.clone(),
                source,
            })
        })?;
        let deleted = self
            .keep
            .map_or(0, |keep| self.layout.prune(keep).len() as u64);
        Ok(Done {
            interval: FinishedInterval {
                path: current.path,
                start: current.start,
                end,
                samples: current.samples,
                lost: current.lost,
                sequence: current.sequence,
            },
            size,
            took: started.elapsed(),
            deleted,
            symbols_embedded,
            unwound,
            warnings,
        })
    }
}

/// An interval to finish: its file, its end, the module files it needs.
type Job = (Current, SystemTime, HeldFiles);

/// The worker thread that finishes interval files, one after another.
struct Finisher {
    jobs: Option<Sender<Job>>,
    done: Receiver<Result<Done, RecordError>>,
    thread: Option<JoinHandle<()>>,
    /// Files sent and not yet reported back.
    pending: usize,
}

impl Finisher {
    fn start(mut context: FinishContext) -> Result<Finisher, RecordError> {
        let (jobs, inbox) = channel::<Job>();
        let (outbox, done) = channel();
        let thread = std::thread::Builder::new()
            .name("rprof-finish".into())
            .spawn(move || {
                for (current, end, held) in inbox {
                    let finished = context.finish(current, end, held);
                    crate::sys::release_free_memory();
                    if outbox.send(finished).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| RecordError::Other(format!("cannot start a thread: {e}")))?;
        Ok(Finisher {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            pending: 0,
        })
    }

    fn send(
        &mut self,
        current: Current,
        end: SystemTime,
        held: HeldFiles,
    ) -> Result<(), RecordError> {
        let gone = || RecordError::Other("the interval finisher stopped".into());
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send((current, end, held))
            .map_err(|_| gone())?;
        self.pending += 1;
        Ok(())
    }

    /// No more files: the thread ends once it finished the last one.
    fn close(&mut self) {
        self.jobs = None;
    }

    /// The next finished file: waiting for it with `wait`, else only if
    /// one is ready. None when nothing is (or, waiting, nothing is pending).
    fn next(&mut self, wait: bool) -> Result<Option<Done>, RecordError> {
        if self.pending == 0 {
            return Ok(None);
        }
        let received = if wait {
            self.done.recv().ok()
        } else {
            self.done.try_recv().ok()
        };
        match received {
            Some(done) => {
                self.pending -= 1;
                done.map(Some)
            }
            None if wait => Err(RecordError::Other(
                "the interval finisher stopped (a panic?)".into(),
            )),
            None => Ok(None),
        }
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl RecordSink for Rotator<'_> {
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        self.stream.scan(bytes);
        self.held.scan(bytes);
        let current = self.current_mut()?;
        current.bytes += bytes.len() as u64;
        current.writer.write_raw(bytes)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RecordError> {
        self.current_mut()?.writer.flush()?;
        Ok(())
    }

    fn drained(&mut self, stats: DrainStats) {
        if let Some(current) = self.current.as_mut() {
            current.samples += stats.samples;
            current.lost += stats.lost;
        }
    }

    fn between_drains(&mut self, switch: bool) -> Result<(), RecordError> {
        self.collect(false)?;
        let due = switch
            || self
                .current
                .as_ref()
                .is_some_and(|c| self.boundary_reached(c));
        if due {
            self.rotate()?;
        }
        Ok(())
    }

    fn wake_at(&self) -> Option<Instant> {
        match (self.rotation, &self.current) {
            (Rotation::Every(every), Some(current)) => current.started.checked_add(every),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_values_parse_as_times_or_sizes() {
        let ok = |s: &str| s.parse::<Rotation>().unwrap();
        assert_eq!(ok("60s"), Rotation::Every(Duration::from_secs(60)));
        assert_eq!(ok("5m"), Rotation::Every(Duration::from_secs(300)));
        assert_eq!(ok("1h"), Rotation::Every(Duration::from_secs(3600)));
        assert_eq!(ok("500ms"), Rotation::Every(Duration::from_millis(500)));
        assert_eq!(ok("100M"), Rotation::Size(100 << 20));
        assert_eq!(ok("1G"), Rotation::Size(1 << 30));
        assert_eq!(ok("100K"), Rotation::Size(100 << 10));
        assert_eq!(ok("2GiB"), Rotation::Size(2 << 30));
        assert_eq!(ok("64KB"), Rotation::Size(64 << 10));
        let err = |s: &str| s.parse::<Rotation>().unwrap_err();
        assert!(err("60").contains("missing unit"), "{}", err("60"));
        assert!(err("10ms").contains("at least 100 ms"));
        assert!(err("1K").contains("at least 4K"));
        assert!(err("soon").contains("60s"));
        assert!(err("99999999999T").contains("too large"));
        assert!(err("").contains("60s"));
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn files_are_named_by_utc_start_and_sequence() {
        let layout = OutputLayout::from_output(Path::new("/var/lib/rprof/"));
        assert_eq!(layout.dir, Path::new("/var/lib/rprof/"));
        assert_eq!(layout.prefix, "rprof");
        // 2024-03-05 06:07:08 UTC
        let name = layout.file_name(at(1_709_618_828), 7);
        assert_eq!(name, "rprof-20240305T060708Z-0007.data");
        assert_eq!(layout.parse_name(&name), Some(("20240305T060708Z", 7)));
        assert_eq!(
            layout.parse_name("rprof-20240305T060708Z-12345.data"),
            Some(("20240305T060708Z", 12345))
        );
        for other in [
            "rprof.data",
            ".rprof-20240305T060708Z-0007.data.tmp",
            "rprof-20240305T060708Z-0007.data.old",
            "rprof-2024030XT060708Z-0007.data",
            "rprof-20240305T060708Z-.data",
            "other-20240305T060708Z-0001.data",
        ] {
            assert_eq!(layout.parse_name(other), None, "{other}");
        }
        let prefix = OutputLayout::from_output(Path::new("out/run.data"));
        assert_eq!(
            (prefix.dir.as_path(), prefix.prefix.as_str()),
            (Path::new("out"), "run")
        );
        assert_eq!(prefix.file_name(at(0), 1), "run-19700101T000000Z-0001.data");
        let default = OutputLayout::from_output(Path::new(super::super::DEFAULT_OUTPUT));
        assert_eq!(
            (default.dir.as_path(), default.prefix.as_str()),
            (Path::new("."), "rprof")
        );
    }

    #[test]
    fn keep_deletes_only_the_oldest_interval_files() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OutputLayout::from_output(&dir.path().join("sub/"));
        layout.prepare().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&layout.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(layout.next_sequence(), 1);
        let names = [
            layout.file_name(at(100), 3),
            layout.file_name(at(100), 10_000),
            layout.file_name(at(50), 20),
            layout.file_name(at(200), 4),
        ];
        for name in &names {
            std::fs::write(layout.dir.join(name), b"x").unwrap();
        }
        for other in ["notes.txt", ".rprof-19700101T000001Z-0001.data.tmp"] {
            std::fs::write(layout.dir.join(other), b"x").unwrap();
        }
        // A directory with a matching name is not a file: never removed.
        std::fs::create_dir(layout.dir.join(layout.file_name(at(1), 1))).unwrap();
        assert_eq!(layout.next_sequence(), 10_001);
        let removed = layout.prune(2);
        let removed: Vec<String> = removed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // Oldest by time, then by sequence (numerically).
        assert_eq!(removed, vec![names[2].clone(), names[0].clone()]);
        let mut left: Vec<String> = std::fs::read_dir(&layout.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left.len(), 5, "{left:?}");
        assert!(left.contains(&names[1]) && left.contains(&names[3]));
        assert!(left.contains(&"notes.txt".to_string()));
    }

    #[test]
    fn the_stream_s_processes_are_replayed_until_they_exit_or_exec() {
        let record = |kind: u32, flags: u16, words: &[u32]| {
            let mut r = kind.to_ne_bytes().to_vec();
            r.extend(flags.to_ne_bytes());
            r.extend(((8 + 4 * words.len()) as u16).to_ne_bytes());
            words.iter().for_each(|w| r.extend(w.to_ne_bytes()));
            r
        };
        use crate::abi::{misc, record_type};
        let comm = record(record_type::COMM, 0, &[7, 7, 0x6b726f77, 0]);
        let map = record(record_type::MMAP2, 0, &[7, 7, 1, 2]);
        let kernel = record(record_type::MMAP, 0, &[u32::MAX, 0, 1, 2]);
        let other = record(record_type::MMAP2, 0, &[9, 9, 1, 2]);
        let sample = record(record_type::SAMPLE, 0, &[7, 7]);
        let mut stream = StreamProcesses::default();
        stream.scan(
            &[
                comm.clone(),
                sample.clone(),
                map.clone(),
                kernel,
                other.clone(),
            ]
            .concat(),
        );
        let mut out = Vec::new();
        stream.replay(&mut out);
        assert_eq!(out, [comm.clone(), map.clone(), other.clone()].concat());
        // exec: what came before is no longer mapped.
        let exec = record(record_type::COMM, misc::COMM_EXEC, &[7, 7, 0x6e657771, 0]);
        // A thread's exit is not the process's.
        let thread_exit = record(record_type::EXIT, 0, &[9, 1, 10, 1]);
        stream.scan(&[exec.clone(), thread_exit].concat());
        let mut out = Vec::new();
        stream.replay(&mut out);
        assert_eq!(out, [exec, other].concat());
        let exit = record(record_type::EXIT, 0, &[9, 1, 9, 1]);
        // A torn tail is ignored.
        stream.scan(&[exit, map[..6].to_vec()].concat());
        assert_eq!(stream.by_pid.len(), 1);
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let layout = OutputLayout {
            dir: file,
            prefix: "rprof".into(),
        };
        let err = layout.prepare().unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }
}
