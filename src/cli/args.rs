//! Raw flags, as clap parses them. Validation lives in `commands`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A Linux sampling profiler: record on-CPU stacks with perf_event_open,
/// report them as tables, folded stacks and flame graphs.
#[derive(Debug, Parser)]
#[command(name = "rprof", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record samples of a command, processes, threads or the whole system.
    Record(RecordArgs),
    /// Turn a recording (rprof's or Linux perf's) into a table, folded stacks or a flame graph.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Stopping: Ctrl-C, SIGTERM or SIGHUP end the recording and finish the file. \
                  If rprof is killed (SIGKILL), the file keeps all but about the last 0.2 s of \
                  samples, the report warns that it is unfinished, and a command rprof \
                  launched is killed too.\n\n\
                  Examples:\n  rprof record -g -- ./app args\n  rprof record -p 1234 -F 99 -g --duration 10\n  rprof record -a -g -- sleep 5\n  rprof record -o - -a --duration 5 | rprof report -i -"
)]
pub struct RecordArgs {
    /// Sampling frequency in Hz per CPU, or `max` (default 4000; clamped to
    /// kernel.perf_event_max_sample_rate).
    #[arg(
        short = 'F',
        long = "freq",
        value_name = "HZ",
        conflicts_with = "count"
    )]
    pub freq: Option<String>,

    /// Sample every PERIOD events instead (nanoseconds for cpu-clock; below 2^63).
    #[arg(short = 'c', long = "count", value_name = "PERIOD")]
    pub count: Option<u64>,

    /// Record call chains (frame pointers); same as --call-graph fp.
    #[arg(short = 'g')]
    pub call_graph_fp: bool,

    /// Call-chain mode: `fp` (frame pointers).
    #[arg(long = "call-graph", value_name = "MODE")]
    pub call_graph: Option<String>,

    /// Attach to these processes (comma-separated), including all their threads.
    #[arg(short = 'p', long = "pid", value_name = "PID[,PID...]", conflicts_with_all = ["tid", "all_cpus"])]
    pub pid: Option<String>,

    /// Attach to these threads only (comma-separated).
    #[arg(
        short = 't',
        long = "tid",
        value_name = "TID[,TID...]",
        conflicts_with = "all_cpus"
    )]
    pub tid: Option<String>,

    /// Record every process on every CPU (system-wide).
    #[arg(short = 'a', long = "all-cpus")]
    pub all_cpus: bool,

    /// Only these CPUs, e.g. `0-3,6` (implies system-wide unless a target is given).
    #[arg(short = 'C', long = "cpu", value_name = "CPUS")]
    pub cpu: Option<String>,

    /// Stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Output file, a regular file path (an existing one is kept as FILE.old),
    /// or `-` for a pipe-mode stream on standard output (`perf record -o -`'s
    /// format; a launched command's output then goes to standard error).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "rprof.data"
    )]
    pub output: PathBuf,

    /// Ring buffer size per CPU in pages (a power of two). Without root, it
    /// is shrunk (with a warning) to fit the locked-memory limit.
    #[arg(
        short = 'm',
        long = "mmap-pages",
        value_name = "PAGES",
        default_value_t = 128
    )]
    pub mmap_pages: usize,

    /// Do not embed symbols in the file (the report then reads this machine's binaries).
    #[arg(long)]
    pub no_embed_symbols: bool,

    /// The command to launch and profile (after `--`). If rprof is killed,
    /// the command is killed too.
    #[arg(last = true, value_name = "CMD", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Table of functions with self and total share.
    Top,
    /// Folded stacks for flame graph tools.
    Folded,
    /// Flame graph SVG.
    Svg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  rprof report\n  rprof report --format folded > out.folded\n  rprof report --format svg -o flame.svg\n  rprof report -i perf.data --sort dso,symbol --no-children"
)]
pub struct ReportArgs {
    /// Input file (rprof's or Linux perf's perf.data), or `-` for standard input.
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        default_value = "rprof.data"
    )]
    pub input: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Top)]
    pub format: ReportFormat,

    /// Group rows by these keys: comm, pid, dso, symbol (comma-separated).
    #[arg(
        short = 's',
        long,
        value_name = "KEYS",
        default_value = "comm,dso,symbol"
    )]
    pub sort: String,

    /// Order by total (inclusive) share; the default when the file has call chains.
    #[arg(long, overrides_with = "no_children")]
    pub children: bool,

    /// Order by self share only.
    #[arg(long)]
    pub no_children: bool,

    /// Hide rows below this share (percent).
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub percent_limit: f64,

    /// Show only this event (as the report header names it). Default: top
    /// shows every event, one section each; folded and svg show the first.
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,

    /// Only samples of these processes (comma-separated).
    #[arg(long, value_name = "PID[,PID...]")]
    pub pid: Option<String>,

    /// Only samples of threads with this name (comma-separated).
    #[arg(long, value_name = "NAME[,NAME...]")]
    pub comm: Option<String>,

    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
}
