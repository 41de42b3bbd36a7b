//! Retry delays: exponential from `initial` to `max`, with jitter so that
//! many recorders whose server comes back do not retry in lockstep.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How failed pushes are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first delay (default 1 s).
    pub initial: Duration,
    /// The longest delay (default 60 s).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// The delays after consecutive failures: attempt n waits a random time in
/// [d/2, d] with d = min(initial * 2^n, max) ("equal jitter").
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    failures: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(policy: RetryPolicy) -> Backoff {
        // Jitter needs no cryptographic randomness: the clock and pid differ
        // between recorders, which is what spreads them.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) | 1;
        Backoff {
            policy,
            failures: 0,
            rng: seed,
        }
    }

    /// The ceiling of the next delay (before jitter).
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.policy
            .initial
            .saturating_mul(factor)
            .min(self.policy.max)
    }

    /// The delay after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(self.unit())
    }

    /// After a success, start again from `initial`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// A uniform number in [0, 1): xorshift64*.
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_initial_up_to_max_within_the_jitter_band() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        let mut backoff = Backoff::new(policy);
        let ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
        for ms in ceilings {
            let ceiling = Duration::from_millis(ms);
            assert_eq!(backoff.ceiling(), ceiling);
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} for {ceiling:?}"
            );
        }
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(100));
        for _ in 0..100 {
            backoff.next_delay();
        }
        assert_eq!(
            backoff.ceiling(),
            Duration::from_millis(1000),
            "no overflow"
        );
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let policy = RetryPolicy {
            initial: Duration::from_secs(8),
            max: Duration::from_secs(8),
        };
        let mut backoff = Backoff::new(policy);
        let delays: std::collections::BTreeSet<_> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn default_policy_caps_at_a_minute() {
        let policy = RetryPolicy::default();
        assert_eq!(
            (policy.initial, policy.max),
            (Duration::from_secs(1), Duration::from_secs(60))
        );
    }
}
