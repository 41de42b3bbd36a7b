//! The statistics of `rprof diff`, as pure functions: Student's t
//! distribution, Welch's t-test, Benjamini-Hochberg, and batch means of a
//! ratio (a function's share of each time slice) with the batch size grown
//! until neighbouring batches are nearly uncorrelated. See docs/diff.md.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; ~15 digits).
pub fn ln_gamma(x: f64) -> f64 {
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = COEF[0];
    let t = x + 7.5;
    for (i, c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b), by its continued
/// fraction (modified Lentz), for a, b > 0 and 0 <= x <= 1.
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The fraction converges fast for x < (a+1)/(a+b+2); use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let clamp = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / clamp(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / clamp(1.0 + even * d);
        c = clamp(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / clamp(1.0 + odd * d);
        c = clamp(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Two-sided p-value of Student's t with `df` degrees of freedom:
/// P(|T| >= |t|).
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// The t with P(|T| >= t) = `p` (two-sided critical value), by bisection.
pub fn t_critical(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while t_two_sided_p(hi, df) > p && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_two_sided_p(mid, df) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Two-sided p-value of a standard normal z: erfc(|z|/√2), which is the
/// regularized upper incomplete gamma Q(1/2, z²/2).
pub fn normal_two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    upper_gamma(0.5, z * z / 2.0).clamp(0.0, 1.0)
}

/// The regularized upper incomplete gamma Q(a, x): its series below a + 1,
/// its continued fraction above.
fn upper_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..500 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - front * sum
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let step = d * c;
            h *= step;
            if (step - 1.0).abs() < 1e-16 {
                break;
            }
        }
        front * h
    }
}

/// An estimate with its standard error and the degrees of freedom of that
/// error (`units - 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    /// Standard error of `mean`.
    pub se: f64,
    /// Independent units (slices or recordings) behind it.
    pub units: usize,
}

/// Welch's t-test of `after - before`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    pub diff: f64,
    pub se: f64,
    pub t: f64,
    /// Welch-Satterthwaite degrees of freedom.
    pub df: f64,
    pub p: f64,
}

impl Welch {
    /// The `1 - alpha` confidence interval of the difference.
    pub fn interval(&self, alpha: f64) -> (f64, f64) {
        if self.se == 0.0 {
            return (self.diff, self.diff);
        }
        let half = t_critical(alpha, self.df) * self.se;
        (self.diff - half, self.diff + half)
    }
}

/// Welch's t-test from two estimates (each with at least 2 units).
/// Two exact estimates (no variance) differ surely or not at all.
pub fn welch(before: Estimate, after: Estimate) -> Welch {
    let diff = after.mean - before.mean;
    let (v1, v2) = (before.se * before.se, after.se * after.se);
    let se = (v1 + v2).sqrt();
    if se == 0.0 {
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        let t = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        return Welch {
            diff,
            se,
            t,
            df: f64::INFINITY,
            p,
        };
    }
    let n1 = before.units.saturating_sub(1).max(1) as f64;
    let n2 = after.units.saturating_sub(1).max(1) as f64;
    let df = (v1 + v2).powi(2) / (v1 * v1 / n1 + v2 * v2 / n2);
    let t = diff / se;
    Welch {
        diff,
        se,
        t,
        df,
        p: t_two_sided_p(t, df),
    }
}

/// P(T >= t) for Student's t with `df` degrees of freedom.
fn t_upper_tail(t: f64, df: f64) -> f64 {
    let two_sided = t_two_sided_p(t, df);
    if t >= 0.0 {
        two_sided / 2.0
    } else {
        1.0 - two_sided / 2.0
    }
}

impl Welch {
    /// The p-value of a change larger than `min_effect` (same unit as the
    /// delta): the interval null |delta| <= min_effect against |delta| >
    /// min_effect (a minimum-effect test). Changes within `min_effect` are
    /// never significant, however small their noise: run-to-run variation
    /// that one recording per side cannot measure stays under it.
    pub fn p_beyond(&self, min_effect: f64) -> f64 {
        if min_effect <= 0.0 {
            return self.p;
        }
        let size = self.diff.abs();
        if self.se == 0.0 {
            return if size > min_effect { 0.0 } else { 1.0 };
        }
        // The worst case of the null is a true delta at +-min_effect.
        let near = t_upper_tail((size - min_effect) / self.se, self.df);
        let far = t_upper_tail((size + min_effect) / self.se, self.df);
        (near + far).clamp(0.0, 1.0)
    }
}

/// Welch's t-test on two plain samples (textbook form, for tests and for
/// recordings as units).
pub fn welch_samples(before: &[f64], after: &[f64]) -> Welch {
    welch(mean_estimate(before), mean_estimate(after))
}

/// The mean of `values` and its standard error (sample variance / n).
pub fn mean_estimate(values: &[f64]) -> Estimate {
    let n = values.len();
    if n == 0 {
        return Estimate {
            mean: 0.0,
            se: 0.0,
            units: 0,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let se = if n < 2 {
        0.0
    } else {
        let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        (ss / (n as f64 - 1.0) / n as f64).sqrt()
    };
    Estimate { mean, se, units: n }
}

/// Benjamini-Hochberg (1995): which of `p_values` are discoveries at false
/// discovery rate `alpha`, and each one's adjusted p-value (q-value).
/// NaN p-values count as 1.
pub fn benjamini_hochberg(p_values: &[f64], alpha: f64) -> (Vec<bool>, Vec<f64>) {
    let m = p_values.len();
    let p = |i: usize| {
        let v = p_values[i];
        if v.is_nan() {
            1.0
        } else {
            v
        }
    };
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p(a).total_cmp(&p(b)));
    // Largest rank k with p_(k) <= k/m * alpha: ranks 1..=k are discoveries.
    let cutoff = (0..m)
        .rev()
        .find(|&rank| p(order[rank]) <= (rank + 1) as f64 / m as f64 * alpha);
    let mut significant = vec![false; m];
    if let Some(k) = cutoff {
        for &i in &order[..=k] {
            significant[i] = true;
        }
    }
    let mut adjusted = vec![1.0; m];
    let mut running = 1.0_f64;
    for rank in (0..m).rev() {
        let i = order[rank];
        running = running.min(p(i) * m as f64 / (rank + 1) as f64);
        adjusted[i] = running.min(1.0);
    }
    (significant, adjusted)
}

/// Lag-1 autocorrelation of a series (0 for fewer than 3 values or no variance).
pub fn lag1_autocorrelation(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 3 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    if var <= 0.0 {
        return 0.0;
    }
    let cov: f64 = values
        .windows(2)
        .map(|w| (w[0] - mean) * (w[1] - mean))
        .sum();
    cov / var
}

/// How batch sizes are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchRule {
    /// Never fewer batches than this (default 10).
    pub min_batches: usize,
    /// Grow batches while the lag-1 autocorrelation of batch shares is
    /// above this (default 0.2).
    pub max_lag1: f64,
}

impl Default for BatchRule {
    fn default() -> Self {
        BatchRule {
            min_batches: 10,
            max_lag1: 0.2,
        }
    }
}

/// A share estimated from batches of consecutive time buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchEstimate {
    pub estimate: Estimate,
    /// Buckets per batch.
    pub batch: usize,
    /// Lag-1 autocorrelation of the batch shares at that size.
    pub lag1: f64,
}

/// Sums consecutive runs of `batch` values (a short last run is merged into
/// the one before it, so every batch holds at least `batch` values).
pub fn batch_sums(values: &[f64], batch: usize) -> Vec<f64> {
    let batch = batch.max(1);
    let full = values.len() / batch;
    if full == 0 {
        return vec![values.iter().sum()];
    }
    let mut sums: Vec<f64> = (0..full)
        .map(|i| values[i * batch..(i + 1) * batch].iter().sum())
        .collect();
    let rest: f64 = values[full * batch..].iter().sum();
    if let Some(last) = sums.last_mut() {
        *last += rest;
    }
    sums
}

/// The ratio estimate `Σ num / Σ den` from per-bucket numerators (a
/// function's weight) and denominators (all weight, or time), with its
/// standard error from batch means: the batch size starts at one bucket and
/// doubles while the batch shares' lag-1 autocorrelation exceeds
/// `rule.max_lag1` and at least `2 * rule.min_batches` batches would remain.
/// None when there are fewer than `rule.min_batches` non-empty buckets.
pub fn batch_means(num: &[f64], den: &[f64], rule: BatchRule) -> Option<BatchEstimate> {
    let used = den.iter().filter(|&&d| d > 0.0).count();
    if used < rule.min_batches.max(2) || num.len() != den.len() {
        return None;
    }
    let mut batch = 1;
    loop {
        let (estimate, lag1) = ratio_batches(num, den, batch);
        let can_grow = den.len() / (batch * 2) >= rule.min_batches.max(2);
        if lag1 <= rule.max_lag1 || !can_grow {
            let estimate = Estimate {
                se: estimate.se * ar1_factor(lag1, estimate.units),
                ..estimate
            };
            return Some(BatchEstimate {
                estimate,
                batch,
                lag1,
            });
        }
        batch *= 2;
    }
}

/// How much a batch-means standard error understates the truth when
/// neighbouring batches are still correlated: `sqrt((1 + rho) / (1 - rho))`
/// for an AR(1)-like series, the variance of a mean of correlated values.
/// With few batches the lag-1 estimate runs low by about (1 + 3 rho) / k,
/// so it is corrected first (Marriott and Pope, 1954); rho is kept within
/// [0, 0.9], so the error is never shrunk.
pub fn ar1_factor(lag1: f64, batches: usize) -> f64 {
    if batches <= 4 || !lag1.is_finite() {
        return 1.0;
    }
    let k = batches as f64;
    let rho = ((lag1 * k + 1.0) / (k - 3.0)).clamp(0.0, 0.9);
    ((1.0 + rho) / (1.0 - rho)).sqrt()
}

/// The ratio and its linearized batch-means standard error at one batch size:
/// with batch sums y_i, d_i and r = Σy/Σd, Var(r) ≈ Σ (y_i - r d_i)² /
/// (k (k-1) d̄²); with equal d_i it is the plain batch-means variance of
/// the batch shares. Batches with no denominator are left out.
fn ratio_batches(num: &[f64], den: &[f64], batch: usize) -> (Estimate, f64) {
    let ys = batch_sums(num, batch);
    let ds = batch_sums(den, batch);
    let pairs: Vec<(f64, f64)> = ys.into_iter().zip(ds).filter(|&(_, d)| d > 0.0).collect();
    let k = pairs.len();
    let total_d: f64 = pairs.iter().map(|p| p.1).sum();
    let r = if total_d > 0.0 {
        pairs.iter().map(|p| p.0).sum::<f64>() / total_d
    } else {
        0.0
    };
    let shares: Vec<f64> = pairs.iter().map(|&(y, d)| y / d).collect();
    let lag1 = lag1_autocorrelation(&shares);
    let se = if k < 2 {
        0.0
    } else {
        let dbar = total_d / k as f64;
        let ss: f64 = pairs.iter().map(|&(y, d)| (y - r * d).powi(2)).sum();
        (ss / (k as f64 * (k as f64 - 1.0)) / (dbar * dbar)).sqrt()
    };
    (
        Estimate {
            mean: r,
            se,
            units: k,
        },
        lag1,
    )
}

/// The plain two-proportion z-test, which treats every sample as
/// independent: shown by the tests to flag bursty noise; not used by diff.
pub fn two_proportion_p(x1: f64, n1: f64, x2: f64, n2: f64) -> f64 {
    let p = (x1 + x2) / (n1 + n2);
    let se = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    normal_two_sided_p((x2 / n2 - x1 / n1) / se)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Critical values from any printed t table (e.g. NIST/SEMATECH
    /// e-Handbook 1.3.6.7.2): two-sided 5% at df 1, 10, 30; 1% at df 5.
    #[test]
    fn t_distribution_matches_table_values() {
        assert!(close(t_two_sided_p(12.706, 1.0), 0.05, 1e-4));
        assert!(close(t_two_sided_p(2.228, 10.0), 0.05, 1e-4));
        assert!(close(t_two_sided_p(2.042, 30.0), 0.05, 1e-4));
        assert!(close(t_two_sided_p(4.032, 5.0), 0.01, 1e-4));
        assert!(close(t_two_sided_p(0.0, 7.0), 1.0, 1e-12));
        assert!(close(normal_two_sided_p(1.959_964), 0.05, 1e-6));
        assert!(close(normal_two_sided_p(3.0), 0.002_699_796, 1e-8));
        assert!(close(normal_two_sided_p(0.5), 0.617_075_077, 1e-8));
        assert!(close(t_critical(0.05, 10.0), 2.228_139, 1e-5));
        assert!(close(ln_gamma(10.0), (362_880.0_f64).ln(), 1e-10));
    }

    /// Wikipedia, "Welch's t-test", Examples, example 1: t = -2.46,
    /// ν ≈ 25.0, p = 0.021 (two-sided).
    #[test]
    fn welch_matches_the_textbook_example() {
        let a1 = [
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
            21.4,
        ];
        let a2 = [
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
            24.4,
        ];
        // after - before = a1 - a2, as the example subtracts.
        let w = welch_samples(&a2, &a1);
        assert!(close(w.t, -2.46, 0.01), "{w:?}");
        assert!(close(w.df, 25.0, 0.1), "{w:?}");
        assert!(close(w.p, 0.021, 0.001), "{w:?}");
        let (lo, hi) = w.interval(0.05);
        assert!(lo < w.diff && w.diff < hi && hi < 0.0, "{lo} {hi}");
    }

    /// The worked example of Benjamini & Hochberg (1995), section 3.2: 15
    /// p-values, at q = 0.05 the first four are rejected.
    #[test]
    fn benjamini_hochberg_matches_the_paper() {
        let p = [
            0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
            0.5719, 0.6528, 0.7590, 1.0000,
        ];
        let (sig, q) = benjamini_hochberg(&p, 0.05);
        assert_eq!(sig.iter().filter(|&&s| s).count(), 4);
        assert!(sig[..4].iter().all(|&s| s));
        assert!(close(q[0], 0.0015, 1e-9));
        assert!(q[4] > 0.05 && q[3] <= 0.05);
        // Order does not matter.
        let mut rev = p;
        rev.reverse();
        let (sig_rev, _) = benjamini_hochberg(&rev, 0.05);
        assert_eq!(sig_rev.iter().filter(|&&s| s).count(), 4);
        assert!(benjamini_hochberg(&[], 0.05).0.is_empty());
    }

    /// A small deterministic generator (SplitMix64) for synthetic series.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.next().max(1e-300), self.next());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    #[test]
    fn batches_grow_on_autocorrelated_series_and_not_on_independent_ones() {
        let mut rng = Rng(7);
        let n = 4096;
        let den = vec![1.0; n];
        // AR(1) with phi = 0.9 around a share of 0.3.
        let mut x = 0.0;
        let ar: Vec<f64> = (0..n)
            .map(|_| {
                x = 0.9 * x + rng.normal() * 0.02;
                0.3 + x
            })
            .collect();
        let white: Vec<f64> = (0..n).map(|_| 0.3 + rng.normal() * 0.02).collect();
        let rule = BatchRule::default();
        let ar_est = batch_means(&ar, &den, rule).expect("enough buckets");
        let white_est = batch_means(&white, &den, rule).expect("enough buckets");
        assert_eq!(white_est.batch, 1, "{white_est:?}");
        assert!(ar_est.batch >= 8, "{ar_est:?}");
        // The naive standard error (batch 1) understates the AR(1) one.
        let naive = mean_estimate(&ar).se;
        assert!(ar_est.estimate.se > 2.0 * naive, "{ar_est:?} naive {naive}");
        assert!(lag1_autocorrelation(&ar) > 0.8);
        // Too few buckets: no estimate.
        assert!(batch_means(&ar[..5], &den[..5], rule).is_none());
    }

    #[test]
    fn batch_sums_keep_every_value() {
        assert_eq!(batch_sums(&[1.0, 2.0, 3.0, 4.0, 5.0], 2), vec![3.0, 12.0]);
        assert_eq!(batch_sums(&[1.0, 2.0], 4), vec![3.0]);
    }

    /// One synthetic recording: `buckets` 10 ms buckets of 40 samples; a
    /// bursty function runs whole 50 ms bursts (5 buckets) that start at a
    /// bucket with probability `rate / 5`, so it holds `rate` of the time
    /// on average. Returns per-bucket (function samples, all samples).
    fn bursty_side(rng: &mut Rng, buckets: usize, rate: f64) -> (Vec<f64>, Vec<f64>) {
        let mut num = vec![0.0; buckets];
        let mut left = 0;
        for slot in num.iter_mut() {
            if left == 0 && rng.next() < rate / 5.0 {
                left = 5;
            }
            if left > 0 {
                *slot = 40.0;
                left -= 1;
            }
        }
        (num, vec![40.0; buckets])
    }

    /// A/A pairs with a bursty function: the two-proportion test (samples
    /// as independent) flags most pairs; slice batch means keep near alpha.
    #[test]
    fn bursty_function_fools_the_two_proportion_test_but_not_batch_means() {
        let mut rng = Rng(42);
        let pairs = 200;
        let (mut naive_alarms, mut ours_alarms) = (0, 0);
        for _ in 0..pairs {
            let (n1, d1) = bursty_side(&mut rng, 100, 0.1);
            let (n2, d2) = bursty_side(&mut rng, 100, 0.1);
            let sum = |v: &[f64]| v.iter().sum::<f64>();
            if two_proportion_p(sum(&n1), sum(&d1), sum(&n2), sum(&d2)) < 0.05 {
                naive_alarms += 1;
            }
            let rule = BatchRule::default();
            let b = batch_means(&n1, &d1, rule).expect("estimate");
            let a = batch_means(&n2, &d2, rule).expect("estimate");
            if welch(b.estimate, a.estimate).p < 0.05 {
                ours_alarms += 1;
            }
        }
        assert!(
            naive_alarms > pairs / 2,
            "two-proportion: {naive_alarms}/{pairs}"
        );
        assert!(
            ours_alarms <= pairs * 8 / 100,
            "batch means: {ours_alarms}/{pairs}"
        );
    }

    /// Short recordings of an autocorrelated function (AR(1), rho 0.6, 24
    /// buckets): batches cannot grow until the correlation is gone, so the
    /// batch-means error alone is too small; the AR(1) factor on it keeps
    /// A/A alarms near alpha.
    #[test]
    fn residual_autocorrelation_widens_the_error() {
        let mut rng = Rng(7);
        let mut series = |n: usize| {
            let mut x = 0.0;
            let num: Vec<f64> = (0..n)
                .map(|_| {
                    x = 0.6 * x + 0.8 * rng.normal();
                    40.0 * (0.3 + 0.05 * x).clamp(0.0, 1.0)
                })
                .collect();
            (num, vec![40.0; n])
        };
        let pairs = 2000;
        let mut alarms = 0;
        for _ in 0..pairs {
            let (n1, d1) = series(24);
            let (n2, d2) = series(24);
            let b = batch_means(&n1, &d1, BatchRule::default()).expect("estimate");
            let a = batch_means(&n2, &d2, BatchRule::default()).expect("estimate");
            if welch(b.estimate, a.estimate).p < 0.05 {
                alarms += 1;
            }
        }
        let rate = alarms as f64 / pairs as f64;
        eprintln!("A/A alarm rate {rate}");
        assert!(rate <= 0.07, "A/A alarm rate {rate}");
    }

    #[test]
    fn welch_without_variance_is_exact() {
        let same = Estimate {
            mean: 1.0,
            se: 0.0,
            units: 10,
        };
        assert_eq!(welch(same, same).p, 1.0);
        let other = Estimate { mean: 0.5, ..same };
        assert_eq!(welch(same, other).p, 0.0);
    }

    #[test]
    fn minimum_effect_test_never_flags_changes_within_the_effect() {
        let steady = |mean: f64| Estimate {
            mean,
            se: 0.001,
            units: 40,
        };
        // 0.8 points apart with a tiny noise: significant against no
        // change, not against a minimum effect of one point.
        let w = welch(steady(0.940), steady(0.948));
        assert!(w.p < 1e-6, "{}", w.p);
        assert!(w.p_beyond(0.01) > 0.5, "{}", w.p_beyond(0.01));
        // 3 points apart: significant either way, in both directions.
        let up = welch(steady(0.20), steady(0.23));
        let down = welch(steady(0.23), steady(0.20));
        assert!(up.p_beyond(0.01) < 1e-6 && down.p_beyond(0.01) < 1e-6);
        // At exactly the effect the p-value is about one half (the null's
        // boundary), and 0 keeps the plain test.
        let edge = welch(steady(0.20), steady(0.21));
        assert!(
            (edge.p_beyond(0.01) - 0.5).abs() < 0.01,
            "{}",
            edge.p_beyond(0.01)
        );
        assert_eq!(up.p_beyond(0.0), up.p);
        // No noise: beyond the effect or not, surely.
        let exact = |mean| Estimate {
            mean,
            se: 0.0,
            units: 3,
        };
        assert_eq!(welch(exact(0.1), exact(0.2)).p_beyond(0.01), 0.0);
        assert_eq!(welch(exact(0.1), exact(0.105)).p_beyond(0.01), 1.0);
    }
}
