//! Compares two sides (one or more inputs each) function by function: share
//! before and after, self and inclusive, and a significance test of the
//! inclusive share's change (see docs/diff.md for the method).

use rustc_hash::FxHashMap;

use super::input::{FuncId, Functions, Input, InputKind};
use super::stats::{self, BatchRule, Estimate};

/// Buckets of one recording are merged so that at most this many remain:
/// the per-bucket arrays (tested functions × buckets) stay small for long
/// recordings.
pub const MAX_BUCKETS: u32 = 4096;

/// How a diff is tested. Shares are fractions (0.01 = 1 point).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffOptions {
    /// False discovery rate across the tested functions (default 0.05).
    pub alpha: f64,
    /// Functions whose inclusive share, averaged over the two sides, is
    /// under this are not tested (default 0.005, half a point): a function
    /// of 0.3% that happens to reach 0.6% on one side is noise, while a
    /// new function of 1% is tested.
    pub min_share: f64,
    /// Changes of an inclusive share up to this are not significant,
    /// however steady (default 0.01, one point): a single recording per
    /// side measures its own noise, not the run-to-run variation between
    /// two runs of the same program, which is of that order.
    pub min_effect: f64,
    /// Compare weight per second instead of shares (needs durations).
    pub per_second: bool,
    pub batch: BatchRule,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            alpha: 0.05,
            min_share: 0.005,
            min_effect: 0.01,
            per_second: false,
            batch: BatchRule::default(),
        }
    }
}

/// What a side's values are relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalisation {
    /// Each side's weight over its own total.
    Share,
    /// Weight per second, over BEFORE's total weight per second.
    PerSecond,
}

/// What one side's uncertainty comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Replication {
    /// Several inputs: each one's share is one observation.
    Recordings(usize),
    /// One recording: batch means over its time slices.
    Slices {
        bucket_ns: u64,
        /// Shortest and longest slice chosen over the tested functions.
        slice_ns: Option<(u64, u64)>,
        /// Fewest slices behind a test.
        min_slices: Option<usize>,
    },
    /// One input without times (folded, pprof): nothing to estimate
    /// variance from, so no test.
    None,
}

/// An input, as the output headers describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSummary {
    pub name: String,
    pub kind: InputKind,
    pub event: Option<String>,
    pub unit: String,
    pub samples: Option<u64>,
    pub duration_ns: Option<u64>,
    pub weight: u64,
    pub timed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SideSummary {
    pub inputs: Vec<InputSummary>,
    pub replication: Replication,
}

/// Self and inclusive share of a function on one side.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shares {
    pub self_share: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Grew,
    Shrank,
    NoChange,
    /// Only in AFTER.
    New,
    /// Only in BEFORE.
    Gone,
    /// Inclusive share under `--min-share` on both sides: not tested.
    Small,
    /// A side has neither times nor several inputs: not tested.
    Untested,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Grew => "grew",
            Verdict::Shrank => "shrank",
            Verdict::NoChange => "no significant change",
            Verdict::New => "new",
            Verdict::Gone => "gone",
            Verdict::Small => "under --min-share",
            Verdict::Untested => "untested (no replication)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Verdict::Grew => "grew",
            Verdict::Shrank => "shrank",
            Verdict::NoChange => "no_change",
            Verdict::New => "new",
            Verdict::Gone => "gone",
            Verdict::Small => "small",
            Verdict::Untested => "untested",
        }
    }
}

/// The test of one function's inclusive share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Test {
    pub before: Estimate,
    pub after: Estimate,
    pub t: f64,
    pub df: f64,
    pub p: f64,
    /// Benjamini-Hochberg adjusted p-value.
    pub q: f64,
    /// `1 - alpha` interval of the inclusive delta (not FDR-adjusted).
    pub interval: (f64, f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDiff {
    pub id: FuncId,
    pub name: String,
    pub before: Shares,
    pub after: Shares,
    pub test: Option<Test>,
    /// A discovery at the FDR: the inclusive share changed.
    pub significant: bool,
    pub verdict: Verdict,
}

impl FunctionDiff {
    pub fn delta_total(&self) -> f64 {
        self.after.total - self.before.total
    }

    pub fn delta_self(&self) -> f64 {
        self.after.self_share - self.before.self_share
    }
}

/// One stack (root first) with its share on each side and its counts
/// (summed over the side's inputs).
#[derive(Debug, Clone, PartialEq)]
pub struct StackDiff {
    pub frames: Box<[FuncId]>,
    pub before: f64,
    pub after: f64,
    pub before_count: u64,
    pub after_count: u64,
}

#[derive(Debug, Clone)]
pub struct DiffResult {
    pub options: DiffOptions,
    pub normalisation: Normalisation,
    pub functions: Functions,
    /// Ranked: significant first, then by the size of the inclusive change.
    pub diffs: Vec<FunctionDiff>,
    pub stacks: Vec<StackDiff>,
    pub before: SideSummary,
    pub after: SideSummary,
    /// Functions tested (the BH family size).
    pub tested: usize,
    pub notes: Vec<String>,
}

impl DiffResult {
    pub fn diff_of(&self, name: &str) -> Option<&FunctionDiff> {
        self.diffs.iter().find(|d| d.name == name)
    }

    /// Functions whose inclusive share grew significantly by more than
    /// `points` (e.g. 2.0 = two points).
    pub fn regressions(&self, points: f64) -> Vec<&FunctionDiff> {
        self.diffs
            .iter()
            .filter(|d| d.significant && d.delta_total() * 100.0 > points)
            .collect()
    }
}

/// Per input: self and inclusive weight per function.
struct Weights {
    self_w: Vec<u64>,
    total_w: Vec<u64>,
}

fn weights(input: &Input, functions: usize) -> Weights {
    let mut self_w = vec![0u64; functions];
    let mut total_w = vec![0u64; functions];
    let mut stamp = vec![usize::MAX; functions];
    for (i, stack) in input.stacks.iter().enumerate() {
        if let Some(&leaf) = stack.frames.last() {
            self_w[leaf as usize] = self_w[leaf as usize].saturating_add(stack.weight);
        }
        for &f in stack.frames.iter() {
            // A recursive function counts once per stack.
            if stamp[f as usize] != i {
                stamp[f as usize] = i;
                total_w[f as usize] = total_w[f as usize].saturating_add(stack.weight);
            }
        }
    }
    Weights { self_w, total_w }
}

/// One side: its inputs' weights, and what each value is divided by.
struct SideData<'a> {
    inputs: &'a [Input],
    weights: Vec<Weights>,
    /// Per input: total weight, or duration in seconds (per second).
    denominators: Vec<f64>,
}

impl SideData<'_> {
    /// Mean over inputs of weight / denominator, times `scale`.
    fn value(&self, f: usize, inclusive: bool, scale: f64) -> f64 {
        let n = self.inputs.len().max(1) as f64;
        self.weights
            .iter()
            .zip(&self.denominators)
            .map(|(w, &d)| {
                let v = if inclusive { w.total_w[f] } else { w.self_w[f] };
                if d > 0.0 {
                    v as f64 / d
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / n
            * scale
    }
}

fn side_data<'a>(inputs: &'a [Input], n_functions: usize, options: &DiffOptions) -> SideData<'a> {
    SideData {
        inputs,
        weights: inputs.iter().map(|i| weights(i, n_functions)).collect(),
        denominators: inputs
            .iter()
            .map(|i| {
                if options.per_second {
                    i.duration_ns.unwrap_or(0) as f64 / 1e9
                } else {
                    i.total_weight() as f64
                }
            })
            .collect(),
    }
}

/// Compares BEFORE and AFTER. Every input of both sides must have been read
/// with the same `functions` table.
pub fn compare(
    before: &[Input],
    after: &[Input],
    functions: Functions,
    options: DiffOptions,
) -> DiffResult {
    let normalisation = if options.per_second {
        Normalisation::PerSecond
    } else {
        Normalisation::Share
    };
    let n_functions = functions.len();
    let b = side_data(before, n_functions, &options);
    let a = side_data(after, n_functions, &options);
    // Per second: both sides over BEFORE's total rate, so points compare.
    let scale = if options.per_second {
        let rate: f64 = before
            .iter()
            .zip(&b.denominators)
            .map(|(i, &d)| {
                if d > 0.0 {
                    i.total_weight() as f64 / d
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / before.len().max(1) as f64;
        if rate > 0.0 {
            1.0 / rate
        } else {
            0.0
        }
    } else {
        1.0
    };

    let mut diffs: Vec<FunctionDiff> = (0..n_functions)
        .map(|f| FunctionDiff {
            id: f as FuncId,
            name: functions.name(f as FuncId).to_string(),
            before: Shares {
                self_share: b.value(f, false, scale),
                total: b.value(f, true, scale),
            },
            after: Shares {
                self_share: a.value(f, false, scale),
                total: a.value(f, true, scale),
            },
            test: None,
            significant: false,
            verdict: Verdict::Small,
        })
        .filter(|d| d.before.total > 0.0 || d.after.total > 0.0)
        .collect();

    let tested: Vec<usize> = diffs
        .iter()
        .enumerate()
        .filter(|(_, d)| (d.before.total + d.after.total) / 2.0 >= options.min_share)
        .map(|(i, _)| i)
        .collect();
    let tested_ids: Vec<FuncId> = tested.iter().map(|&i| diffs[i].id).collect();
    let (before_est, before_rep) = side_estimates(&b, &tested_ids, n_functions, &options, scale);
    let (after_est, after_rep) = side_estimates(&a, &tested_ids, n_functions, &options, scale);

    let mut p_values = Vec::new();
    let mut family = Vec::new();
    for (k, &i) in tested.iter().enumerate() {
        match (&before_est, &after_est) {
            (Some(be), Some(ae)) => {
                let w = stats::welch(be[k], ae[k]);
                let p = w.p_beyond(options.min_effect);
                diffs[i].test = Some(Test {
                    before: be[k],
                    after: ae[k],
                    t: w.t,
                    df: w.df,
                    p,
                    q: 1.0,
                    interval: w.interval(options.alpha),
                });
                p_values.push(p);
                family.push(i);
            }
            _ => diffs[i].verdict = Verdict::Untested,
        }
    }
    let (significant, q_values) = stats::benjamini_hochberg(&p_values, options.alpha);
    for ((&i, sig), q) in family.iter().zip(significant).zip(q_values) {
        let d = &mut diffs[i];
        d.significant = sig && d.delta_total() != 0.0;
        if let Some(test) = &mut d.test {
            test.q = q;
        }
        d.verdict = if !d.significant {
            Verdict::NoChange
        } else if d.delta_total() > 0.0 {
            Verdict::Grew
        } else {
            Verdict::Shrank
        };
    }
    for d in &mut diffs {
        if d.before.total == 0.0 && d.after.total > 0.0 {
            d.verdict = Verdict::New;
        } else if d.after.total == 0.0 && d.before.total > 0.0 {
            d.verdict = Verdict::Gone;
        }
    }
    diffs.sort_by(|x, y| {
        y.significant
            .cmp(&x.significant)
            .then(y.delta_total().abs().total_cmp(&x.delta_total().abs()))
            .then(x.name.cmp(&y.name))
    });

    let mut notes = Vec::new();
    for (what, rep) in [("BEFORE", &before_rep), ("AFTER", &after_rep)] {
        if *rep == Replication::None {
            notes.push(format!(
                "{what} is one input without sample times: there is nothing to estimate \
                 noise from, so no change is tested (give several inputs per side, \
                 `rprof diff a1 a2 a3 -- b1 b2 b3`, or recordings with times)"
            ));
        }
    }
    let stacks = stack_diffs(&b, &a, scale);
    DiffResult {
        options,
        normalisation,
        functions,
        tested: family_len(&before_est, &after_est, tested.len()),
        diffs,
        stacks,
        before: summary(before, before_rep),
        after: summary(after, after_rep),
        notes,
    }
}

fn family_len(b: &Option<Vec<Estimate>>, a: &Option<Vec<Estimate>>, tested: usize) -> usize {
    if b.is_some() && a.is_some() {
        tested
    } else {
        0
    }
}

fn summary(inputs: &[Input], replication: Replication) -> SideSummary {
    SideSummary {
        inputs: inputs
            .iter()
            .map(|i| InputSummary {
                name: i.name.clone(),
                kind: i.kind,
                event: i.event.clone(),
                unit: i.unit.clone(),
                samples: i.samples,
                duration_ns: i.duration_ns,
                weight: i.total_weight(),
                timed: i.is_timed(),
            })
            .collect(),
        replication,
    }
}

/// The estimates of the tested functions' inclusive values on one side, or
/// None when the side cannot be tested.
fn side_estimates(
    side: &SideData<'_>,
    tested: &[FuncId],
    n_functions: usize,
    options: &DiffOptions,
    scale: f64,
) -> (Option<Vec<Estimate>>, Replication) {
    if side.inputs.len() >= 2 {
        let estimates = tested
            .iter()
            .map(|&f| {
                let values: Vec<f64> = side
                    .weights
                    .iter()
                    .zip(&side.denominators)
                    .map(|(w, &d)| {
                        if d > 0.0 {
                            w.total_w[f as usize] as f64 / d * scale
                        } else {
                            0.0
                        }
                    })
                    .collect();
                stats::mean_estimate(&values)
            })
            .collect();
        return (Some(estimates), Replication::Recordings(side.inputs.len()));
    }
    let Some(input) = side.inputs.first() else {
        return (None, Replication::None);
    };
    let Some(bucket_ns) = input.bucket_ns.filter(|_| input.is_timed()) else {
        return (None, Replication::None);
    };
    let merge = input.buckets.div_ceil(MAX_BUCKETS).max(1);
    let base_ns = bucket_ns.saturating_mul(merge as u64);
    let n_base = input.buckets.div_ceil(merge) as usize;
    // Dense arrays for the tested functions only: tested × buckets.
    let mut slot = vec![u32::MAX; n_functions];
    for (k, &f) in tested.iter().enumerate() {
        slot[f as usize] = k as u32;
    }
    let mut num = vec![vec![0.0f64; n_base]; tested.len()];
    let mut den = vec![0.0f64; n_base];
    let mut seen: Vec<u32> = Vec::new();
    for stack in &input.stacks {
        seen.clear();
        for &f in stack.frames.iter() {
            let k = slot[f as usize];
            if k != u32::MAX && !seen.contains(&k) {
                seen.push(k);
            }
        }
        for &(bucket, weight) in &stack.buckets {
            let at = (bucket / merge) as usize;
            if at >= n_base {
                continue;
            }
            if !options.per_second {
                den[at] += weight as f64;
            }
            for &k in &seen {
                num[k as usize][at] += weight as f64;
            }
        }
    }
    if options.per_second {
        // Time passes in every bucket, sampled or not; over BEFORE's rate.
        let per_bucket = base_ns as f64 / 1e9 / scale.max(f64::MIN_POSITIVE);
        den.iter_mut().for_each(|d| *d = per_bucket);
    }
    let mut estimates = Vec::with_capacity(tested.len());
    let (mut shortest, mut longest, mut fewest) = (u64::MAX, 0u64, usize::MAX);
    for row in &num {
        let Some(batch) = stats::batch_means(row, &den, options.batch) else {
            return (
                None,
                Replication::Slices {
                    bucket_ns: base_ns,
                    slice_ns: None,
                    min_slices: None,
                },
            );
        };
        let slice = base_ns.saturating_mul(batch.batch as u64);
        shortest = shortest.min(slice);
        longest = longest.max(slice);
        fewest = fewest.min(batch.estimate.units);
        estimates.push(batch.estimate);
    }
    let replication = Replication::Slices {
        bucket_ns: base_ns,
        slice_ns: (!estimates.is_empty()).then_some((shortest, longest)),
        min_slices: (!estimates.is_empty()).then_some(fewest),
    };
    (Some(estimates), replication)
}

/// Every stack of either side with its value on each.
fn stack_diffs(b: &SideData<'_>, a: &SideData<'_>, scale: f64) -> Vec<StackDiff> {
    let mut index: FxHashMap<&[FuncId], usize> = FxHashMap::default();
    let mut stacks: Vec<StackDiff> = Vec::new();
    for (is_after, side) in [(false, b), (true, a)] {
        let n = side.inputs.len().max(1) as f64;
        for (input, &d) in side.inputs.iter().zip(&side.denominators) {
            for stack in &input.stacks {
                let slot = *index.entry(&stack.frames).or_insert_with(|| {
                    stacks.push(StackDiff {
                        frames: stack.frames.clone(),
                        before: 0.0,
                        after: 0.0,
                        before_count: 0,
                        after_count: 0,
                    });
                    stacks.len() - 1
                });
                let value = if d > 0.0 {
                    stack.weight as f64 / d / n * scale
                } else {
                    0.0
                };
                let entry = &mut stacks[slot];
                if is_after {
                    entry.after += value;
                    entry.after_count = entry.after_count.saturating_add(stack.weight);
                } else {
                    entry.before += value;
                    entry.before_count = entry.before_count.saturating_add(stack.weight);
                }
            }
        }
    }
    stacks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::input::StackCollector;

    /// A timed input of `buckets` buckets with, per bucket, `hot` samples in
    /// main;hot and `rest` in main;cold.
    fn timed(name: &str, functions: &mut Functions, buckets: u32, hot: u64, rest: u64) -> Input {
        let main = functions.intern("main");
        let hot_f = functions.intern("hot");
        let cold = functions.intern("cold");
        let mut c = StackCollector::default();
        for bucket in 0..buckets {
            c.add(&[main, hot_f], Some(bucket), hot);
            c.add(&[main, cold], Some(bucket), rest);
        }
        Input {
            name: name.into(),
            kind: InputKind::Recording,
            event: Some("cpu-clock".into()),
            unit: "samples".into(),
            samples: None,
            duration_ns: Some(buckets as u64 * 10_000_000),
            bucket_ns: Some(10_000_000),
            buckets,
            stacks: c.finish(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn shares_verdicts_and_new_and_gone() {
        let mut functions = Functions::default();
        let before = timed("b", &mut functions, 100, 10, 30);
        let mut after = timed("a", &mut functions, 100, 20, 20);
        // Noise, so the test has variance to work with.
        for (i, s) in after.stacks.iter_mut().enumerate() {
            for b in s.buckets.iter_mut() {
                b.1 += ((b.0 as usize * 7 + i) % 3) as u64;
            }
            s.weight = s.buckets.iter().map(|b| b.1).sum();
        }
        let newf = functions.intern("newf");
        let main = functions.intern("main");
        after.stacks.push(super::super::input::InputStack {
            frames: vec![main, newf].into(),
            weight: 400,
            buckets: (0..100).map(|b| (b, 4)).collect(),
        });
        let result = compare(&[before], &[after], functions, DiffOptions::default());
        let hot = result.diff_of("hot").expect("hot");
        assert!(hot.significant);
        assert_eq!(hot.verdict, Verdict::Grew);
        assert!((hot.before.total - 0.25).abs() < 1e-9);
        let (lo, hi) = hot.test.expect("tested").interval;
        assert!(lo > 0.1 && hi < 0.3, "{lo} {hi}");
        assert_eq!(
            result.diff_of("cold").expect("cold").verdict,
            Verdict::Shrank
        );
        assert_eq!(result.diff_of("newf").expect("new").verdict, Verdict::New);
        assert_eq!(
            result.diff_of("main").expect("main").verdict,
            Verdict::NoChange
        );
        assert_eq!(result.regressions(5.0).len(), 2, "hot and newf");
        assert!(result.regressions(50.0).is_empty());
        assert!(result.diffs[0].significant, "significant changes first");
        let firsts: Vec<f64> = result.diffs[..3]
            .iter()
            .map(|d| d.delta_total().abs())
            .collect();
        assert!(firsts.windows(2).all(|w| w[0] >= w[1]), "{firsts:?}");
        assert_eq!(result.stacks.len(), 3);
    }

    #[test]
    fn untimed_single_inputs_are_not_tested_but_replicated_ones_are() {
        let mut functions = Functions::default();
        let load = |functions: &mut Functions, hot: u64| {
            crate::diff::input::load_folded(
                "f",
                &format!("app;main;hot {hot}\napp;main;cold 100\n"),
                functions,
            )
            .expect("folded")
        };
        let b = load(&mut functions, 100);
        let a = load(&mut functions, 200);
        let result = compare(
            std::slice::from_ref(&b),
            std::slice::from_ref(&a),
            functions.clone(),
            DiffOptions::default(),
        );
        assert_eq!(
            result.diff_of("hot").expect("hot").verdict,
            Verdict::Untested
        );
        assert_eq!(result.tested, 0);
        assert!(!result.notes.is_empty());
        let bs = [
            b.clone(),
            load(&mut functions, 101),
            load(&mut functions, 99),
        ];
        let as_ = [
            a.clone(),
            load(&mut functions, 201),
            load(&mut functions, 199),
        ];
        let result = compare(&bs, &as_, functions, DiffOptions::default());
        assert_eq!(result.before.replication, Replication::Recordings(3));
        assert_eq!(result.diff_of("hot").expect("hot").verdict, Verdict::Grew);
    }
}
