//! `rprof report`.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use anyhow::{bail, Context, Result};

use super::parse_number_list;
use crate::aggregate::{self, Profile, SampleFilter};
use crate::cli::args::{ReportArgs, ReportFormat};
use crate::event::weight_unit;
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

/// Reads a recording and names its stacks: the embedded symbol table first,
/// this machine's files for anything it lacks (e.g. files from Linux perf).
pub fn load_profile(file: &PerfFile, filter: &SampleFilter) -> Profile {
    let replay = aggregate::replay(file, filter);
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
    let missing = aggregate::missing_from(&table, replay.symbol_requests());
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
    let attr = file.attrs().first().copied().unwrap_or_default();
    let event_name = file
        .metadata()
        .event_names
        .first()
        .cloned()
        .unwrap_or_else(|| {
            if attr.kind == 1 && attr.config == 0 {
                "cpu-clock".into()
            } else {
                format!("event type {} config {:#x}", attr.kind, attr.config)
            }
        });
    let mut profile = aggregate::build_profile(
        replay,
        &table,
        &event_name,
        weight_unit(attr.kind, attr.config),
    );
    profile.warnings.extend(warnings);
    profile
}

fn output_for(args: &ReportArgs, has_callchains: bool) -> Result<Box<dyn Output>> {
    Ok(match args.format {
        ReportFormat::Folded => Box::new(Folded),
        ReportFormat::Svg => Box::new(FlameGraphSvg {
            title: format!("rprof: {}", args.input.display()),
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
                args.children || has_callchains
            };
            Box::new(Top::new(TopOptions {
                sort,
                children,
                percent_limit: args.percent_limit,
                source: args.input.display().to_string(),
            }))
        }
    })
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let filter = filter(args)?;
    let file = PerfFile::open(&args.input)?;
    let profile = load_profile(&file, &filter);
    let output = output_for(args, profile.stats.has_callchains)?;
    if args.format != ReportFormat::Top {
        for warning in &profile.warnings {
            eprintln!("rprof: warning: {warning}");
        }
    }
    if profile.stats.samples == 0 {
        eprintln!(
            "rprof: warning: {} holds no samples{}",
            args.input.display(),
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
