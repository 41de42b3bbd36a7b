//! `rprof diff` flags, as clap parses them (validated in `commands::diff`).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Exit status of `rprof diff --fail-on` when a function grew significantly
/// by more than the threshold.
pub const FAIL_ON_EXIT: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Functions ranked by change: inclusive and self share before and
    /// after, delta, confidence interval, verdict.
    Top,
    /// Differential flame graph on AFTER's stacks, every frame coloured by
    /// the change of its inclusive share.
    Svg,
    /// Differential folded stacks, `stack before after` (difffolded format).
    Folded,
    /// Every function with its numbers (fields in docs/diff.md).
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Inputs are recordings (rprof's or Linux perf's perf.data, pipe mode too), \
                  folded stacks or pprof profiles, told apart by their content. Each side is normalised to its \
                  own total (or, with --per-second, to BEFORE's weight per second), so the \
                  numbers are shares in points.\n\n\
                  The test: a recording is cut into time slices (grown until neighbouring \
                  slices are nearly uncorrelated, at least 10); each function's inclusive share \
                  is estimated per slice; Welch's t compares the sides; Benjamini-Hochberg \
                  keeps the false discovery rate at --alpha over all functions with at least \
                  --min-share. With several inputs per side (`rprof diff a1 a2 a3 -- b1 b2 b3`) \
                  each input is one observation. One input without times (folded, pprof) on \
                  a side gives shares and deltas but no verdicts. Method: docs/diff.md.\n\n\
                  Exit status: 0; 3 with --fail-on when a function's inclusive share grew \
                  significantly by more than PCT points; 2 for a malformed command line; 1 \
                  for other errors.\n\n\
                  Examples:\n  rprof diff before.data after.data\n  \
                  rprof diff before.data after.data --format svg -o diff.svg\n  \
                  rprof diff base1.data base2.data base3.data -- new1.data new2.data new3.data\n  \
                  rprof diff main.folded branch.data --format folded | inferno-flamegraph > d.svg\n  \
                  rprof diff before.data after.data --fail-on 2 || echo regression"
)]
pub struct DiffArgs {
    /// BEFORE and AFTER; or, with `--`, the BEFORE inputs (AFTER's follow
    /// the `--`).
    #[arg(value_name = "BEFORE", required = true)]
    pub inputs: Vec<PathBuf>,

    /// AFTER inputs, when BEFORE has several.
    #[arg(last = true, value_name = "AFTER")]
    pub after: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Top)]
    pub format: DiffFormat,

    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The event to compare in recordings with several [default: the first].
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,

    /// Test only functions whose inclusive share, averaged over BEFORE and
    /// AFTER, is at least PCT points (smaller ones are listed in JSON, not
    /// tested).
    #[arg(long, value_name = "PCT", default_value_t = 0.5)]
    pub min_share: f64,

    /// Flag only changes of an inclusive share larger than PCT points (a
    /// minimum-effect test: the null is |delta| <= PCT). One recording a
    /// side measures its own noise, not the variation between two runs of
    /// the same program, which is about a point; 0 tests against no change.
    #[arg(long, value_name = "PCT", default_value_t = 1.0)]
    pub min_effect: f64,

    /// False discovery rate over the tested functions (Benjamini-Hochberg);
    /// intervals are at 1 - A.
    #[arg(long, value_name = "A", default_value_t = 0.05)]
    pub alpha: f64,

    /// Exit with status 3 when any function's inclusive share grew
    /// significantly by more than PCT points.
    #[arg(long, value_name = "PCT")]
    pub fail_on: Option<f64>,

    /// Compare weight per second (both sides over BEFORE's total per
    /// second) instead of shares; needs inputs with durations.
    #[arg(long)]
    pub per_second: bool,

    /// Flame graph title.
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
}
