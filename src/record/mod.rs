//! `rprof record`: opens the events, launches or attaches to the target,
//! drains the per-CPU rings into a perf.data file, and before exiting embeds
//! the symbols of every sampled address so the file is self-contained.

use std::path::PathBuf;
use std::time::Duration;

use crate::event::EventSpec;

/// Who to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Launch `argv`; events are enabled at its exec.
    Launch { argv: Vec<String> },
    /// Attach to these processes (all their threads, and threads they create).
    /// With `argv`, the command's lifetime is the recording window.
    Pids { pids: Vec<u32>, argv: Option<Vec<String>> },
    /// Only these threads.
    Tids { tids: Vec<u32>, argv: Option<Vec<String>> },
    /// Every process on the given CPUs (all online CPUs when `cpus` is None).
    SystemWide { argv: Option<Vec<String>> },
}

/// Validated `record` configuration (built from the CLI flags by `cli`).
#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub event: EventSpec,
    pub target: Target,
    /// Restrict to these CPUs (`-C`); None = all online CPUs.
    pub cpus: Option<Vec<u32>>,
    /// Stop after this long (`--duration`).
    pub duration: Option<Duration>,
    /// Output file (default `rprof.data`).
    pub output: PathBuf,
    /// Ring buffer size per CPU in pages (power of two; default 128 + 1 header page).
    pub mmap_pages: usize,
    /// Embed symbols at the end (default true; `--no-embed-symbols` for speed tests).
    pub embed_symbols: bool,
    /// The command line that started rprof, stored in the file (HEADER_CMDLINE).
    pub cmdline: Vec<String>,
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
    /// rprof's own CPU time (user + system) during the recording.
    pub profiler_cpu: Duration,
    /// Exit code of the launched command, when there was one (128+signal if killed).
    pub child_exit_code: Option<i32>,
    /// Warnings to print after the summary (clamped rate, threads that
    /// vanished, symbols that could not be read, ...).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
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
pub fn run(config: &RecordConfig) -> Result<RecordOutcome, RecordError> {
    let _ = config;
    todo!("record helper")
}
