//! Raw flags, as clap parses them. Validation lives in `commands`.

use std::ffi::OsString;
use std::path::PathBuf;

use super::target_args::TargetArgs;
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
// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Record samples of a command, processes, threads or the whole system.
    Record(RecordArgs),
    /// Turn a recording (rprof's or Linux perf's) into a table, call tree, folded stacks, a flame graph or a pprof profile.
    Report(ReportArgs),
    /// Count events (no sampling) over a command, processes or CPUs, like `perf stat`.
    Stat(super::stat_args::StatArgs),
    /// Compare two profiles (recordings, folded stacks or pprof): what grew or
    /// shrank, and whether the change is more than noise.
    Diff(super::diff_args::DiffArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Install, e.g.:\n  rprof completions bash > /etc/bash_completion.d/rprof\n  \
                      rprof completions zsh > \"${fpath[1]}/_rprof\"\n  \
                      rprof completions fish > ~/.config/fish/completions/rprof.fish"
    )]
    Completions(CompletionsArgs),
    /// List the events this machine offers for `record -e`: software,
    /// hardware (marked when the PMU is missing), hardware cache, PMU and
    /// tracepoint events.
    #[command(after_help = "Examples:\n  rprof list\n  rprof list fault\n  rprof list 'sched:*'")]
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show only events whose name contains FILTER, or matches it as a
    /// glob when it has `*` or `?` (case-insensitive).
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
}

impl Cli {
    /// Parses `argv` like [`clap::Parser::try_parse_from`], and records
    /// where each `record --filter` stood among the `-e` flags (which a
    /// derived struct alone loses).
    pub fn try_parse_ordered_from<I, T>(argv: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().try_get_matches_from(argv)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        if let (Command::Record(args), Some(("record", sub))) =
            (&mut cli.command, matches.subcommand())
        {
            let events: Vec<usize> = sub.indices_of("events").into_iter().flatten().collect();
            args.filter_positions = sub
                .indices_of("filters")
                .into_iter()
                .flatten()
                .map(|at| events.iter().filter(|&&e| e < at).count())
                .collect();
        }
        Ok(cli)
    }

    /// [`Cli::try_parse_ordered_from`] of the process arguments; prints
    /// help or the error and exits as clap does.
    pub fn parse_ordered() -> Cli {
        Cli::try_parse_ordered_from(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Stopping: Ctrl-C, SIGTERM or SIGHUP end the recording and finish the file \
                  (with --rotate, SIGHUP starts a new file instead). \
                  If rprof is killed (SIGKILL), the file keeps all but about the last 0.2 s of \
                  samples, the report warns that it is unfinished, and a command rprof \
                  launched is killed too.\n\n\
                  Examples:\n  rprof record -g ./app args\n  rprof record -p 1234 -F 99 -g --duration 10\n  rprof record -a -g -- sleep 5\n  rprof record -o - -a --duration 5 | rprof report -i -\n  rprof record -a -F 19 -g --rotate 60s --keep 60 -o /var/lib/rprof/"
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

    /// Events to sample (repeatable, comma-separated; `{a,b}` opens a
    /// group): software (cpu-clock, task-clock, page-faults, minor-faults,
    /// major-faults, context-switches, cpu-migrations, ...), hardware
    /// (cycles, instructions, branch-misses, L1-dcache-load-misses,
    /// LLC-loads, ...: these need a hardware PMU, which VMs usually lack),
    /// raw `rNNNN`, PMU terms `pmu/event=0x3c,umask=0/`, a PMU's named
    /// events, and tracepoints `subsys:name` (globs like `sched:*` open every
    /// match). Modifiers `:u :k :h` (only these privilege levels) and `:p
    /// :pp :ppp` (precision). Terms `EVENT/period=N/`, `/freq=HZ/`,
    /// `/name=NAME/` set one event's own sampling (kept over -F/-c) or name.
    /// Tracepoints record every hit unless -F/-c is given; other events
    /// sample at -F.
    /// `rprof list` shows what this machine has [default: cpu-clock].
    #[arg(short = 'e', long = "event", value_name = "EVENT[,EVENT...]")]
    pub events: Vec<String>,

    /// Filter for the tracepoint of the -e just before it, in the kernel's
    /// filter syntax over the tracepoint's fields (e.g.
    /// `--filter 'prev_pid == 1'`; `rprof report --format script` shows
    /// the fields).
    #[arg(long = "filter", value_name = "EXPR")]
    pub filters: Vec<String>,

    /// For each --filter, how many -e flags came before it (filled by
    /// [`Cli::parse_ordered`] from clap's argument indices).
    #[arg(skip)]
    pub filter_positions: Vec<usize>,

    /// Record call chains (frame pointers); same as --call-graph fp.
    #[arg(short = 'g')]
    pub call_graph_fp: bool,

    /// Call-chain mode: `fp` (frame pointers), or `dwarf[,SIZE]`: copy the
    /// user registers and the top SIZE bytes of the user stack per sample
    /// (default 8192, at most 65528), for code built without frame
    /// pointers; when the recording stops, the stacks are unwound with the
    /// binaries' DWARF CFI and the file keeps only the call chains.
    #[arg(long = "call-graph", value_name = "MODE")]
    pub call_graph: Option<String>,

    #[command(flatten)]
    pub target: TargetArgs,

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

    /// Continuous recording: write one complete recording per interval,
    /// ending after a time (`60s`, `5m`, `1h`, `500ms`) or once the file
    /// holds SIZE bytes of records (`100M`, `1G`; M is MiB, m minutes).
    /// -o then names a directory (`-o DIR/`, created 0700 if missing) or a
    /// file prefix;
    /// files are `rprof-YYYYmmddTHHMMSSZ-NNNN.data` (UTC start, sequence),
    /// each renamed into place once finished. SIGHUP starts a new file.
    #[arg(long, value_name = "TIME|SIZE")]
    pub rotate: Option<crate::record::Rotation>,

    /// With --rotate: keep only the newest N interval files in the
    /// directory, deleting older ones (only names rprof gives them).
    #[arg(long, value_name = "N", requires = "rotate")]
    pub keep: Option<usize>,

    /// Print a line per finished interval file (with --rotate).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    #[command(flatten)]
    pub push: crate::cli::PushArgs,

    /// Ring buffer size per CPU in pages (a power of two). Without root, it
    /// is shrunk (with a warning) to fit the locked-memory limit.
    #[arg(
        short = 'm',
        long = "mmap-pages",
        value_name = "PAGES",
        default_value_t = 128
    )]
    pub mmap_pages: usize,

    /// Off-CPU profile: sample the stacks where threads switch out and
    /// weight each by the time until the thread runs again (unit
    /// off-cpu/nanoseconds). Preempted switch-outs (the thread was still
    /// runnable) are left out; a thread still blocked when the recording
    /// stops counts until the end. Use with -g or --call-graph dwarf.
    #[arg(long, conflicts_with = "wall")]
    pub off_cpu: bool,

    /// Wall-clock profile: cpu-clock samples (-F/-c) and off-CPU time in
    /// one profile, in nanoseconds, so `top` shows wall time per function.
    #[arg(long)]
    pub wall: bool,

    /// With --off-cpu/--wall: sample switch-outs at most about HZ times a
    /// second per thread (per CPU with -a); the kernel then samples the
    /// stacks of 1 in N switches. Every switch is still timed: each thread's
    /// off-CPU total is measured and shared between its sampled stacks
    /// [default: 1000].
    #[arg(long, value_name = "HZ", conflicts_with = "off_cpu_every")]
    pub off_cpu_freq: Option<u64>,

    /// With --off-cpu/--wall: sample the stack of every Nth switch-out
    /// instead (1: all).
    #[arg(long, value_name = "N")]
    pub off_cpu_every: Option<u64>,

    /// Label each sample with its task's cgroup (e.g.
    /// `/system.slice/nginx.service`), to tell containers and services apart
    /// in the pprof output (label `cgroup`). Needs Linux 5.7 or later.
    #[arg(long)]
    pub label_cgroup: bool,

    /// Do not embed symbols in the file (the report then reads this machine's binaries).
    #[arg(long)]
    pub no_embed_symbols: bool,

    /// Flags of `perf record` that rprof does not have: each gets a message
    /// that says so, instead of being taken for the command.
    #[command(flatten)]
    pub perf_only: PerfOnlyRecordFlags,

    /// The command to launch and profile: everything from the first
    /// argument that is not an option on (`--` before it is optional). If
    /// rprof is killed, the command is killed too.
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

/// `perf record` flags rprof lacks, hidden from help. Parsed (with their
/// values) so that `rprof record -j any ./app` is answered with what
/// rprof offers instead, never by running a program named `any`.
#[derive(Debug, Default, Args)]
pub struct PerfOnlyRecordFlags {
    #[arg(short = 'b', long = "branch-any", hide = true)]
    pub branch_any: bool,
    #[arg(short = 'j', long = "branch-filter", hide = true, value_name = "MODE")]
    pub branch_filter: Option<String>,
    #[arg(short = 's', long = "stat", hide = true)]
    pub stat: bool,
    #[arg(short = 'd', long = "data", hide = true)]
    pub data: bool,
    #[arg(short = 'z', long = "compression-level", hide = true, value_name = "N", num_args = 0..=1, require_equals = true)]
    pub compression: Option<Option<String>>,
    #[arg(long = "switch-output", hide = true, value_name = "WHEN", num_args = 0..=1, require_equals = true)]
    pub switch_output: Option<Option<String>>,
    #[arg(short = 'G', long = "cgroup", hide = true, value_name = "NAME")]
    pub cgroup: Option<String>,
    #[arg(short = 'u', long = "uid", hide = true, value_name = "USER")]
    pub uid: Option<String>,
    #[arg(long = "user-regs", hide = true, value_name = "REGS")]
    pub user_regs: Option<String>,
    #[arg(short = 'I', long = "intr-regs", hide = true, value_name = "REGS", num_args = 0..=1, require_equals = true)]
    pub intr_regs: Option<Option<String>>,
}

impl PerfOnlyRecordFlags {
    /// The first perf-only flag given, and what to do instead.
    pub fn first_used(&self) -> Option<(&'static str, &'static str)> {
        let used = [
            (
                self.branch_any || self.branch_filter.is_some(),
                "-b/-j",
                "branch stack sampling needs a hardware PMU and is not supported",
            ),
            (
                self.stat,
                "-s",
                "per-thread counts are not supported; the report splits samples by thread \
                 (--sort comm,pid)",
            ),
            (
                self.data,
                "-d",
                "data addresses need PMU events, which rprof does not record",
            ),
            (
                self.compression.is_some(),
                "-z",
                "rprof writes uncompressed records (it reads perf's -z files)",
            ),
            (
                self.switch_output.is_some(),
                "--switch-output",
                "use --rotate TIME|SIZE (one complete file per interval; SIGHUP starts a new one)",
            ),
            (
                self.cgroup.is_some(),
                "-G",
                "cgroup filters are not available; record -a and filter the report with \
                 --pid or --comm",
            ),
            (
                self.uid.is_some(),
                "-u",
                "user filters are not available; use -p PID, or -a and report --pid/--comm",
            ),
            (
                self.user_regs.is_some() || self.intr_regs.is_some(),
                "--user-regs/-I",
                "register sampling is not available; for stacks of code without frame pointers use --call-graph dwarf",
            ),
        ];
        used.into_iter()
            .find(|(given, _, _)| *given)
            .map(|(_, flag, why)| (flag, why))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Table of functions with self and total share.
    Top,
    /// Call tree under each function, like `perf report -g` (see --order).
    Tree,
    /// Folded stacks for flame graph tools.
    Folded,
    /// Flame graph SVG (inferno), titled with the command, event, samples
    /// and duration; tooltips name the unit.
    Svg,
    /// pprof profile (gzipped profile.proto) for `go tool pprof`,
    /// Pyroscope, Parca and speedscope: every event with its unit, inline
    /// frames, mappings with build ids, pid/tid/comm labels. Binary: write
    /// it with -o FILE or into a pipe.
    Pprof,
    /// Flame graph as one self-contained HTML page (no network): drawn on a
    /// canvas from an embedded tree of the unique stacks, with search,
    /// click-to-zoom and a sortable table of functions.
    Html,
    /// One line per sample in time order, like `perf script`: comm,
    /// pid/tid, CPU, time, period, event, then a tracepoint's raw fields
    /// (name=value) or the sampled address.
    Script,
}

/// Which way a call tree grows from its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TreeOrder {
    /// Under each function, the functions that called it, out to the
    /// thread's first frame (perf's `-g callee`): who calls the hot code.
    Callee,
    /// Under each function, the functions it called, down to the leaves
    /// (perf's `-g caller`): where its time goes.
    Caller,
}

#[derive(Debug, Args)]
#[command(
    after_help = "On a terminal, `top` and `tree` show the first rows that fit and say how many \
                  were hidden (-n 0 shows all), and names are shortened to the terminal width \
                  (COLUMNS, when set, gives the width in a pipe too). In a pipe every row is \
                  printed.\n\n\
                  Examples:\n  rprof report\n  rprof report --format tree --order caller\n  \
                  rprof report --format folded > out.folded\n  rprof report --format svg -o flame.svg\n  \
                  rprof report --format html -o flame.html --inverted\n  \
                  rprof report -i perf.data --sort dso,symbol --no-children"
)]
pub struct ReportArgs {
    /// Input file (rprof's or Linux perf's perf.data), or `-` for standard
    /// input [default: rprof.data].
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,

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

    /// Show at most N rows (0: all) [default: what fits on a terminal, all in a pipe].
    #[arg(short = 'n', long = "rows", value_name = "N")]
    pub rows: Option<usize>,

    /// Show names in full: no C++ parameter lists shortened to `(...)`, no
    /// long names cut to the terminal width.
    #[arg(long)]
    pub full_names: bool,

    /// Tree: grow each function's tree toward its callers or its callees.
    #[arg(long, value_enum, value_name = "ORDER", default_value_t = TreeOrder::Callee)]
    pub order: TreeOrder,

    /// Tree: at most this many levels below each function (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_stack: usize,

    /// Tree: hide branches below this share of the event's total (percent).
    #[arg(long, value_name = "PCT", default_value_t = 0.5)]
    pub branch_limit: f64,

    /// Show only this event (as the report header names it). Default: top
    /// and tree show every event, one section each; pprof writes every
    /// event, one value column each; folded and svg show the first.
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

    /// Flame graph (svg, html): invert it into an icicle graph: each stack
    /// reversed, so the sampled functions form the top row and their
    /// callers hang below them (who calls the hot code).
    #[arg(long)]
    pub inverted: bool,

    /// Flame graph (svg, html): leave out frames narrower than this, in
    /// pixels of the 1200-pixel-wide graph as FlameGraph counts them
    /// (`0.5`), or in percent of the total with a `%` sign (`0.5%`)
    /// [default: 0.1, i.e. 0.0083%].
    #[arg(long, value_name = "PIXELS_OR_PCT")]
    pub min_width: Option<String>,

    /// perf's `--stdio`: rprof always prints to standard output.
    #[arg(long, hide = true)]
    pub stdio: bool,

    /// perf's `-g [caller|callee]`: the call tree (--format tree --order ...).
    #[arg(
        short = 'g',
        hide = true,
        value_name = "ORDER",
        num_args = 0..=1,
        default_missing_value = "callee"
    )]
    pub perf_call_graph: Option<TreeOrder>,
}
