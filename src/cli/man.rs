//! Man pages generated from the clap definitions: `rprof.1` and one page
//! per subcommand (`rprof-record.1`, ...). A test keeps `man/` in sync.
//!
//! clap_mangen renders the options; the synopsis (`rprof record [-F HZ]
//! ...`, with value names) and the sections on permissions, signals, exit
//! status and files are rprof's own.

use clap::{Arg, ArgAction, CommandFactory};
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

use super::Cli;

/// (file name, roff text) for every page.
pub fn render_all() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let root = Cli::command();
    let mut pages = vec![("rprof.1".to_string(), render_page(&root, "rprof")?)];
    for sub in root.get_subcommands() {
        let command_line = format!("rprof {}", sub.get_name());
        let page_name = format!("rprof-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(page_name.clone())
            .version(env!("CARGO_PKG_VERSION"));
        pages.push((format!("{page_name}.1"), render_page(&sub, &command_line)?));
    }
    Ok(pages)
}

fn render_page(command: &clap::Command, command_line: &str) -> std::io::Result<Vec<u8>> {
    let man = Man::new(command.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    synopsis(command, command_line).to_writer(&mut out)?;
    man.render_description_section(&mut out)?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if command.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    if command.get_after_help().is_some() || command.get_after_long_help().is_some() {
        man.render_extra_section(&mut out)?;
    }
    let page = command_line.strip_prefix("rprof").unwrap_or("").trim();
    extra_sections(page).to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// `rprof record [-F HZ] [-g] ... [CMD]...`: every visible flag with the
/// name of its value.
fn synopsis(command: &clap::Command, command_line: &str) -> Roff {
    let mut line: Vec<Inline> = vec![bold(command_line)];
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        line.push(roman(" "));
        line.extend(synopsis_arg(arg));
    }
    if command.has_subcommands() {
        let names: Vec<&str> = command
            .get_subcommands()
            .map(|s| s.get_name())
            .filter(|n| *n != "help")
            .collect();
        line.push(roman(" "));
        line.push(italic(names.join("|")));
        line.push(roman(" "));
        line.push(italic("ARGS"));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    roff
}

fn synopsis_arg(arg: &Arg) -> Vec<Inline> {
    let value = arg
        .get_value_names()
        .map(|names| names.join(" "))
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    if arg.is_positional() {
        let repeated = matches!(arg.get_action(), ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let dots = if repeated { "..." } else { "" };
        return if arg.is_required_set() {
            vec![italic(value), roman(dots)]
        } else {
            vec![roman("["), italic(value), roman(format!("]{dots}"))]
        };
    }
    let flag = match (arg.get_short(), arg.get_long()) {
        (Some(short), _) => format!("-{short}"),
        (None, Some(long)) => format!("--{long}"),
        (None, None) => return Vec::new(),
    };
    let takes_value = arg.get_action().takes_values();
    let mut inlines = vec![roman("["), bold(flag)];
    if takes_value {
        inlines.push(roman(" "));
        inlines.push(italic(value));
    }
    inlines.push(roman("]"));
    inlines
}

/// One section: a heading and paragraphs.
fn section(roff: &mut Roff, heading: &str, paragraphs: &[&str]) {
    roff.control("SH", [heading]);
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*paragraph)]);
    }
}

const PERMISSIONS: &[&str] = &[
    "Recording uses perf_event_open(2). As root (or with CAP_PERFMON) every mode works. \
     Otherwise kernel.perf_event_paranoid decides: at 2 (the usual default) a user may \
     profile only their own processes in user space (no -a, no kernel frames); at 1 kernel \
     frames too; -1 lifts the limits. Change it with `sudo sysctl kernel.perf_event_paranoid=1`. \
     Attaching with -p to another user's process also needs ptrace access \
     (kernel.yama.ptrace_scope).",
    "Ring buffers count against the locked-memory limit (kernel.perf_event_mlock_kb per CPU \
     plus `ulimit -l`); without root, rprof shrinks them to fit, with a warning. Kernel \
     symbol names need kernel.kptr_restrict 0, or root.",
];

const SIGNALS: &[&str] = &[
    "SIGINT (Ctrl-C), SIGTERM and SIGHUP stop a recording and finish the file; a launched \
     command gets SIGTERM, as with perf. A second SIGINT while symbols are being embedded \
     exits at once: the records are written by then, and the report of a file says it was \
     not finished.",
    "With --rotate, SIGHUP instead finishes the current interval file and starts the next \
     (a service's reload); SIGINT and SIGTERM finish the last interval, push it with --push, \
     and stop.",
    "If rprof is killed (SIGKILL), the file keeps all but about the last 0.2 s of samples and \
     its report warns that it is unfinished; a command rprof launched is killed too \
     (PR_SET_PDEATHSIG).",
];

const RECORD_EXIT: &[&str] = &[
    "When rprof launched the command and it ended by itself, rprof exits with the command's \
     exit status (128 plus the signal number if a signal ended it), as perf does. Otherwise \
     0 when the recording finished; 2 for a malformed command line (an unknown flag, a missing \
     value); 1 for any other error, including a flag of perf that rprof does not have.",
];

const REPORT_EXIT: &[&str] = &[
    "0 when the report was written (also when a reader such as head(1) closed the pipe \
     early); 2 for a malformed command line; 1 for any other error, such as a missing or \
     damaged recording.",
];

const STAT_EXIT: &[&str] = &[
    "When rprof launched the command, rprof stat exits with the command's exit status (128 \
     plus the signal number if a signal ended it), as perf stat does; otherwise 0 once the \
     counts are printed. 2 for a malformed command line; 1 for any other error, such as a \
     command that cannot be run or counting that is not permitted.",
];

const STAT_NOTES: &[&str] = &[
    "The `( +- x.xx% )` printed with -r N is the standard error of the mean (the sample \
     standard deviation over sqrt(N)) as a percentage of the mean, as perf stat prints it.",
    "-x SEP prints perf's columns: value, unit, event, [variance with -r,] run time in ns, \
     percentage of the time the counter ran, metric value, metric unit; with -I the time \
     stamp and with -A the CPU come first. -j prints one JSON object per line with perf's \
     field names: counter-value, unit, event, variance, event-runtime, pcnt-running, \
     metric-value, metric-unit (and interval, cpu).",
    "Events the machine cannot count (hardware events without a PMU, as in most VMs) are \
     shown as <not supported>; counts of events that shared a hardware counter \
     (multiplexing) are scaled by time enabled / time running, with the running share shown.",
];

const RECORD_FILES: &[&str] = &[
    "rprof.data: the recording (-o), in the perf.data layout, mode 0600; an existing file is \
     kept as rprof.data.old, and a symbolic link at the path is refused.",
    "~/.cache/rprof/: the kernel's symbols, cached once per boot (mode 0600).",
    "/tmp/perf-PID.map: symbols of JIT-compiled code, read when present (regular files owned \
     by root, the user or the profiled process's user).",
];

const DIFF_EXIT: &[&str] = &[
    "0 when the comparison was written; 3 with --fail-on PCT when any function's inclusive \
     share grew by more than PCT points and the growth is significant (a CI job gates on \
     it); 2 for a malformed command line; 1 for any other error, such as an input that is \
     not a recording, folded stacks or pprof.",
];

const DIFF_NOTES: &[&str] = &[
    "Shares, not counts, are compared: each side is normalised to its own total (with \
     --per-second, both to BEFORE's weight per second), and changes are in points.",
    "Samples are not independent (a function that runs in bursts fills neighbouring \
     samples), so a recording is cut into time slices (10 ms buckets merged until the \
     lag-1 autocorrelation of a function's slice shares is at most 0.2, keeping at least 10 \
     slices), each function's inclusive share and its variance come from the slice batch \
     means, Welch's t compares the sides, and Benjamini-Hochberg keeps the false discovery \
     rate at --alpha over the functions with at least --min-share. With several inputs per \
     side each input is one observation. One input without sample times (folded stacks) on \
     a side (folded stacks, pprof) gets shares and deltas but no verdict. See docs/diff.md.",
];

const REPORT_FILES: &[&str] = &[
    "rprof.data: the recording read when -i is not given; -i - reads standard input. Linux \
     perf's perf.data files are read too.",
    "The binaries of the profiled processes, their separate debug files \
     (/usr/lib/debug/.build-id/) and /proc/kallsyms: read only for addresses the recording's \
     embedded symbols do not name (recordings of Linux perf, or made with \
     --no-embed-symbols).",
];

fn extra_sections(page: &str) -> Roff {
    let mut roff = Roff::new();
    match page {
        "record" => {
            section(&mut roff, "PERMISSIONS", PERMISSIONS);
            section(&mut roff, "SIGNALS", SIGNALS);
            section(&mut roff, "EXIT STATUS", RECORD_EXIT);
            section(&mut roff, "FILES", RECORD_FILES);
        }
        "report" => {
            section(&mut roff, "EXIT STATUS", REPORT_EXIT);
            section(&mut roff, "FILES", REPORT_FILES);
        }
        "stat" => {
            section(&mut roff, "NOTES", STAT_NOTES);
            section(&mut roff, "PERMISSIONS", PERMISSIONS);
            section(&mut roff, "EXIT STATUS", STAT_EXIT);
        }
        "diff" => {
            section(&mut roff, "NOTES", DIFF_NOTES);
            section(&mut roff, "EXIT STATUS", DIFF_EXIT);
        }
        "completions" => {
            section(
                &mut roff,
                "EXIT STATUS",
                &["0 when the script was written, 2 on a usage error."],
            );
        }
        _ => {
            section(&mut roff, "PERMISSIONS", PERMISSIONS);
            section(&mut roff, "SIGNALS", SIGNALS);
            section(
                &mut roff,
                "EXIT STATUS",
                &[
                    RECORD_EXIT[0],
                    "rprof report: 0 on success, 1 on an error.",
                    STAT_EXIT[0],
                    DIFF_EXIT[0],
                ],
            );
            let files: Vec<&str> = RECORD_FILES.iter().chain(REPORT_FILES).copied().collect();
            section(&mut roff, "FILES", &files);
            section(
                &mut roff,
                "SEE ALSO",
                &["rprof-record(1), rprof-report(1), rprof-diff(1), rprof-stat(1), rprof-completions(1), perf(1)"],
            );
        }
    }
    roff
}
