//! `rprof stat` flags, as clap parses them (validated in `commands::stat`).

use std::ffi::OsString;
use std::path::PathBuf;

use super::target_args::TargetArgs;
use clap::Args;

#[derive(Debug, Args)]
#[command(
    after_help = "Output goes to standard error, as with perf stat (or to -o FILE).\n\n\
                  Columns of -x SEP (perf's order): value, unit, event, [the -r variance as a \
                  percentage,] run time (ns), percentage of time counted, metric value, metric \
                  unit. -j writes one JSON object per line with perf's field names: \
                  counter-value, unit, event, variance (with -r), event-runtime, pcnt-running, \
                  metric-value, metric-unit (and interval with -I, cpu with -A).\n\n\
                  Events this machine cannot count (hardware events without a PMU, as in most \
                  VMs) are shown as <not supported>. Counts of events that had to share a \
                  hardware counter are scaled by time enabled / time running, and the running \
                  percentage is shown after them.\n\n\
                  Exit status: the command's (128 plus the signal number if a signal ended it); \
                  2 for a malformed command line; 1 for other errors.\n\n\
                  Examples:\n  rprof stat -- ./app args\n  rprof stat -e task-clock,page-faults -r 5 -- ./app\n  \
                  rprof stat -e '{cycles,instructions}:u' -x, -- ./app\n  rprof stat -a -A -I 1000 -- sleep 5\n  \
                  rprof stat -p 1234 -- sleep 10"
)]
pub struct StatArgs {
    /// Events to count, comma-separated; repeat -e for more; `{a,b}` counts
    /// a group together. Names: task-clock, cpu-clock, context-switches (cs),
    /// cpu-migrations, page-faults, minor-faults, major-faults,
    /// alignment-faults, emulation-faults, cycles, instructions, branches,
    /// branch-misses, cache-references, cache-misses, bus-cycles, ref-cycles,
    /// raw rNNNN (hex), PMU terms pmu/event=..,umask=../, hardware cache
    /// events, tracepoints subsys:name (globs like 'sched:*' count every
    /// match; `rprof list` shows them all); modifiers :u, :k, :h. Default: perf stat's set
    /// (task-clock, context-switches, cpu-migrations, page-faults, cycles,
    /// instructions, branches, branch-misses).
    #[arg(short = 'e', long = "event", value_name = "EVENTS")]
    pub events: Vec<String>,

    /// Run the command N times and print the mean of each count with `( +-
    /// x% )`: the standard error of the mean (sample standard deviation /
    /// sqrt(N)) as a percentage of the mean, as perf stat does.
    #[arg(short = 'r', long = "repeat", value_name = "N", default_value_t = 1)]
    pub repeat: u32,

    /// Print the counts of every interval of MS milliseconds (at least 10),
    /// each line led by the time since counting started.
    #[arg(short = 'I', long = "interval-print", value_name = "MS")]
    pub interval: Option<u64>,

    /// CSV output with SEP between fields (perf's columns; see below).
    #[arg(
        short = 'x',
        long = "field-separator",
        value_name = "SEP",
        conflicts_with = "json"
    )]
    pub separator: Option<String>,

    /// One JSON object per line, with perf's field names.
    #[arg(short = 'j', long = "json")]
    pub json: bool,

    /// One row per CPU instead of their sum (with -a or -C).
    #[arg(short = 'A', long = "no-aggr")]
    pub no_aggr: bool,

    #[command(flatten)]
    pub target: TargetArgs,

    /// Write the counts to this file instead of standard error.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The command to launch and count: everything from the first argument
    /// that is not an option on (`--` before it is optional). With -p, -t,
    /// -a or -C, counting lasts as long as the command.
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}
