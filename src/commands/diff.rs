//! `rprof diff`: read both sides, compare, write, and gate with --fail-on.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::report::load_profile_with;
use crate::aggregate::{EventId, Profile, ProfileOptions};
use crate::cli::diff_args::{DiffArgs, DiffFormat, FAIL_ON_EXIT};
use crate::diff::compare::DiffOptions;
use crate::diff::input::{self, detect, Functions, Input, InputKind};
use crate::diff::output::{self, SvgOptions};
use crate::diff::{self as d, DiffError};
use crate::output::pprof;
use crate::perfdata::PerfFile;
use crate::progress::NoProgress;

/// Fine time buckets; slices are made of them (docs/diff.md).
pub const DIFF_BUCKET_NS: u64 = 10_000_000;

/// The two sides: `BEFORE AFTER`, or `B1 B2 ... -- A1 A2 ...`.
fn sides(args: &DiffArgs) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    if !args.after.is_empty() {
        return Ok((args.inputs.clone(), args.after.clone()));
    }
    match args.inputs.as_slice() {
        [before, after] => Ok((vec![before.clone()], vec![after.clone()])),
        [_] => bail!("diff needs two inputs: rprof diff BEFORE AFTER"),
        _ => bail!(
            "diff got {} inputs: give BEFORE AFTER, or several per side as \
             `rprof diff B1 B2 ... -- A1 A2 ...`",
            args.inputs.len()
        ),
    }
}

fn options(args: &DiffArgs) -> Result<DiffOptions> {
    if args.alpha.is_nan() || args.alpha <= 0.0 || args.alpha >= 1.0 {
        bail!(
            "--alpha {}: must be between 0 and 1 (e.g. 0.05)",
            args.alpha
        );
    }
    if args.min_share.is_nan() || args.min_share < 0.0 || args.min_share >= 100.0 {
        bail!(
            "--min-share {}: must be a share in points, 0 to 100",
            args.min_share
        );
    }
    if args.min_effect.is_nan() || args.min_effect < 0.0 || args.min_effect >= 100.0 {
        bail!(
            "--min-effect {}: must be a number of points, 0 to 100",
            args.min_effect
        );
    }
    if let Some(pct) = args.fail_on {
        if pct.is_nan() || pct < 0.0 {
            bail!("--fail-on {pct}: must be a number of points, 0 or more");
        }
    }
    Ok(DiffOptions {
        alpha: args.alpha,
        min_share: args.min_share / 100.0,
        min_effect: args.min_effect / 100.0,
        per_second: args.per_second,
        ..DiffOptions::default()
    })
}

/// The event to compare: `--event`, or the first (saying so when there are more).
fn event_of(args: &DiffArgs, name: &str, profile: &Profile) -> Result<EventId> {
    if let Some(wanted) = args.event.as_deref() {
        return match profile.find_event(wanted) {
            Some(event) => Ok(event),
            None => {
                let names: Vec<&str> = profile.events.iter().map(|e| e.name.as_str()).collect();
                bail!(
                    "--event {wanted}: {name} has no such event (it has: {})",
                    names.join(", ")
                )
            }
        };
    }
    if profile.events.is_empty() {
        bail!("{name}: the recording has no samples");
    }
    if profile.events.len() > 1 {
        eprintln!(
            "rprof: {name}: comparing event {}; it also has {}: pick one with --event NAME",
            profile.events[0].name,
            profile.events[1..]
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(0)
}

/// Reads one input, whatever its kind.
fn load(args: &DiffArgs, path: &Path, functions: &mut Functions) -> Result<Input> {
    let name = path.display().to_string();
    let (kind, whole) = if path == Path::new("-") {
        let bytes = input::read_input(path)?;
        (detect(&bytes), Some(bytes))
    } else {
        let mut head = Vec::with_capacity(4096);
        File::open(path)
            .map_err(|source| DiffError::Open {
                path: name.clone(),
                source,
            })?
            .take(4096)
            .read_to_end(&mut head)
            .with_context(|| format!("cannot read {name}"))?;
        (detect(&head), None)
    };
    let loaded = match kind {
        Some(InputKind::Recording) => {
            let file = match whole {
                Some(bytes) => PerfFile::from_bytes(bytes),
                None => PerfFile::open(path),
            }
            .with_context(|| format!("cannot read recording {name}"))?;
            let options = ProfileOptions {
                time_bucket_ns: DIFF_BUCKET_NS,
                ..ProfileOptions::default()
            };
            let mut profile = load_profile_with(&file, &options, &NoProgress);
            profile.warnings.extend(file.warnings().iter().cloned());
            let event = event_of(args, &name, &profile)?;
            input::from_profile(&name, &profile, event, functions)
        }
        Some(InputKind::Folded) => {
            let bytes = match whole {
                Some(bytes) => bytes,
                None => input::read_input(path)?,
            };
            let text = String::from_utf8_lossy(&bytes);
            input::load_folded(&name, &text, functions)?
        }
        Some(InputKind::Pprof) => {
            let bytes = match whole {
                Some(bytes) => bytes,
                None => input::read_input(path)?,
            };
            let profile = pprof::decode(&bytes).map_err(|source| DiffError::Pprof {
                name: name.clone(),
                source,
            })?;
            input::from_pprof(&name, &profile, args.event.as_deref(), functions)?
        }
        None => return Err(DiffError::Unknown(name).into()),
    };
    if loaded.stacks.is_empty() {
        return Err(DiffError::Empty(name).into());
    }
    Ok(loaded)
}

pub fn run(args: &DiffArgs) -> Result<i32> {
    let (before_paths, after_paths) = sides(args)?;
    let options = options(args)?;
    let mut functions = Functions::default();
    let mut read_side = |paths: &[PathBuf]| -> Result<Vec<Input>> {
        paths
            .iter()
            .map(|p| load(args, p, &mut functions))
            .collect()
    };
    let before = read_side(&before_paths)?;
    let after = read_side(&after_paths)?;
    for input in before.iter().chain(&after) {
        for warning in &input.warnings {
            eprintln!("rprof: warning: {}: {warning}", input.name);
        }
        if args.per_second && input.duration_ns.is_none() {
            bail!(
                "--per-second: {} has no duration (a {} input); compare shares instead",
                input.name,
                input.kind.name()
            );
        }
    }
    let units: Vec<&str> = before
        .iter()
        .chain(&after)
        .map(|i| i.unit.as_str())
        .collect();
    if units.windows(2).any(|w| w[0] != w[1]) {
        eprintln!(
            "rprof: note: the inputs weigh samples in different units ({}); shares still compare",
            units.join(", ")
        );
    }
    let result = d::compare(&before, &after, functions, options);
    let write = |out: &mut dyn Write| -> io::Result<()> {
        match args.format {
            DiffFormat::Top => output::write_top(&result, out),
            DiffFormat::Folded => output::write_folded(&result, out),
            DiffFormat::Json => output::write_json(&result, out),
            DiffFormat::Svg => {
                let title = args.title.clone().unwrap_or_else(|| {
                    format!(
                        "Differential flame graph: {} -> {}",
                        names(&before_paths),
                        names(&after_paths)
                    )
                });
                let svg = SvgOptions {
                    title,
                    ..SvgOptions::default()
                };
                output::write_svg(&result, &svg, out)
            }
        }
    };
    match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            write(&mut out)?;
            out.flush()
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let mut out = BufWriter::new(io::stdout().lock());
            write(&mut out)?;
            out.flush()?;
        }
    }
    if matches!(
        args.format,
        DiffFormat::Folded | DiffFormat::Svg | DiffFormat::Json
    ) {
        for note in &result.notes {
            eprintln!("rprof: note: {note}");
        }
    }
    if let Some(points) = args.fail_on {
        if result.tested == 0 {
            eprintln!(
                "rprof: --fail-on {points}: nothing could be tested (see the notes), so it cannot fail"
            );
        }
        let regressions = result.regressions(points);
        if !regressions.is_empty() {
            for r in &regressions {
                eprintln!(
                    "rprof: regression: {} inclusive share {:.2}% -> {:.2}% ({:+.2} points), \
                     significant, more than --fail-on {points}",
                    r.name,
                    r.before.total * 100.0,
                    r.after.total * 100.0,
                    r.delta_total() * 100.0
                );
            }
            return Ok(FAIL_ON_EXIT);
        }
    }
    Ok(0)
}

fn names(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string())
        })
        .collect();
    names.join(" ")
}
