//! `rprof report`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::parse_number_list;
use crate::aggregate::{self, EventId, Profile, ProfileOptions, SampleFilter};
use crate::cli::args::{ReportArgs, ReportFormat};
use crate::output::{FlameGraphSvg, Folded, Output, SortKey, Top, TopOptions};
use crate::perfdata::format::feature;
use crate::perfdata::PerfFile;
use crate::symbolize::{SymbolTable, SymbolizeOptions, Symbolizer};

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

/// How messages name the input: its path, or "standard input" for `-i -`.
fn input_name(args: &ReportArgs) -> String {
    if args.input == Path::new("-") {
        "standard input".to_string()
    } else {
        args.input.display().to_string()
    }
}

/// `-i -` reads standard input, unless it is a terminal (nothing to read).
fn check_stdin_input(stdin_is_terminal: bool) -> Result<()> {
    if stdin_is_terminal {
        bail!("-i -: standard input is a terminal; pipe a recording into it");
    }
    Ok(())
}

/// Opens `-i FILE`, or standard input for `-i -` (a pipe is read to its end;
/// a redirected file is mapped like any file).
fn open_input(args: &ReportArgs) -> Result<PerfFile> {
    if args.input != Path::new("-") {
        return Ok(PerfFile::open(&args.input)?);
    }
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
    Ok(PerfFile::from_file(file, Path::new("standard input"))?)
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

/// Reads a recording and names its stacks: the embedded symbol table first,
/// this machine's files for anything it lacks (e.g. files from Linux perf).
pub fn load_profile(file: &PerfFile, filter: &SampleFilter) -> Profile {
    let options = ProfileOptions {
        filter: filter.clone(),
        ..ProfileOptions::default()
    };
    let mut profile = aggregate::profile_file(file, &options);
    let mut warnings = Vec::new();
    let mut table = match file
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
    };
    let missing = aggregate::missing_from(&table, profile.symbol_requests());
    if !missing.is_empty() {
        let (found, reports) = Symbolizer::new(SymbolizeOptions::default()).symbolize(missing);
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
fn selected_event(args: &ReportArgs, profile: &Profile) -> Result<Option<EventId>> {
    let Some(name) = args.event.as_deref() else {
        return Ok(None);
    };
    match profile.find_event(name) {
        Some(event) => Ok(Some(event)),
        None => {
            let names: Vec<&str> = profile.events.iter().map(|e| e.name.as_str()).collect();
            bail!(
                "--event {name}: {} has no such event (it has: {})",
                input_name(args),
                names.join(", ")
            )
        }
    }
}

/// Folded stacks and flame graphs show one event: the chosen one or the
/// first. Say which when the file has more, so units are never mixed unseen.
fn single_event(args: &ReportArgs, profile: &Profile, chosen: Option<EventId>) -> EventId {
    let event = chosen.unwrap_or(0);
    if chosen.is_none() && profile.events.len() > 1 {
        let others: Vec<&str> = profile.events[1..]
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        eprintln!(
            "rprof: showing event {} ({}); {} also has {}: pick one with --event NAME",
            profile.events[0].name,
            profile.events[0].unit,
            input_name(args),
            others.join(", ")
        );
    }
    event
}

fn output_for(args: &ReportArgs, profile: &Profile) -> Result<Box<dyn Output>> {
    let chosen = selected_event(args, profile)?;
    Ok(match args.format {
        ReportFormat::Folded => Box::new(Folded {
            event: single_event(args, profile, chosen),
        }),
        ReportFormat::Svg => Box::new(FlameGraphSvg {
            title: format!("rprof: {}", input_name(args)),
            event: single_event(args, profile, chosen),
        }),
        ReportFormat::Top => {
            let sort = SortKey::parse_list(&args.sort).map_err(anyhow::Error::msg)?;
            if !(0.0..=100.0).contains(&args.percent_limit) {
                bail!(
                    "--percent-limit {}: expected a percentage between 0 and 100",
                    args.percent_limit
                );
            }
            let children = if args.no_children {
                false
            } else {
                args.children || profile.stats.has_callchains
            };
            Box::new(Top::new(TopOptions {
                sort,
                children,
                percent_limit: args.percent_limit,
                source: input_name(args),
                event: chosen,
            }))
        }
    })
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let filter = filter(args)?;
    let file = open_input(args)?;
    let profile = load_profile(&file, &filter);
    let output = output_for(args, &profile)?;
    if args.format != ReportFormat::Top {
        for warning in &profile.warnings {
            eprintln!("rprof: warning: {warning}");
        }
    }
    if profile.total_samples() == 0 {
        eprintln!(
            "rprof: warning: {} holds no samples{}",
            input_name(args),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_input_from_a_terminal_is_refused() {
        let err = check_stdin_input(true).unwrap_err().to_string();
        assert_eq!(
            err,
            "-i -: standard input is a terminal; pipe a recording into it"
        );
        assert!(check_stdin_input(false).is_ok());
    }
}
