//! Off-CPU time. Every context switch of a traced thread is timed (the
//! kernel's switch records cost no call chain), so each thread's blocked
//! time is known exactly; only the stacks are sampled. A sampled
//! switch-out waits here until the same thread switches in again, and its
//! interval, scaled by the sampling period (1 in N switches), estimates
//! how the thread's time splits between its stacks. At the end each
//! thread's exact total is shared out in those proportions.
//!
//! Why not weight each sample by interval x N alone: with `-a` the period
//! is per CPU, set by its busiest thread, so one sampled switch of a
//! rarely-switching thread got N times its interval (one run gave a 47 ms
//! sleep of `migration/0` 76 s). Calibrating per thread keeps every
//! thread's total true and confines the sampling error to the split
//! within a thread.
//!
//! Memory is one entry per thread and per distinct sampled key, never one
//! per record.

use rustc_hash::{FxHashMap, FxHashSet};

use super::model::OffCpuStats;
use super::SampleKey;
use crate::perfdata::Switch;

/// A sampled switch-out whose thread has not run again yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Where its weight goes once known (the bucket of the switch-out).
    key: SampleKey,
    /// When the thread switched out.
    time: u64,
    /// 1 in `period` switches was sampled.
    period: u64,
}

/// The sampled intervals of one key, before calibration.
#[derive(Debug, Clone, Copy, Default)]
struct Sampled {
    tid: u32,
    count: u64,
    /// Sum of interval x period (ns).
    estimate: f64,
}

/// One thread's blocked time.
#[derive(Debug, Clone, Copy, Default)]
struct ThreadTime {
    /// Every blocked interval, sampled or not (ns).
    blocked_ns: u64,
    /// Its sampled intervals: how many, and their interval x period sum.
    sampled: u64,
    estimate: f64,
}

/// Off-CPU weight of one key, ready to be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Blocked {
    pub key: SampleKey,
    /// Sampled intervals it stands for.
    pub count: u64,
    /// Nanoseconds blocked.
    pub weight: u64,
}

/// Pairs switch-outs with switch-ins, per thread.
#[derive(Debug, Default)]
pub(super) struct OffCpuTracker {
    /// Sampled switch-outs in flight.
    pending: FxHashMap<u32, Pending>,
    /// Every blocked switch-out in flight (its time).
    out_since: FxHashMap<u32, u64>,
    threads: FxHashMap<u32, ThreadTime>,
    sampled: FxHashMap<SampleKey, Sampled>,
    /// Threads that exited: a per-CPU event (`-a`) still samples their
    /// last switch-out, which no switch-in ends.
    exited: FxHashSet<u32>,
    /// The newest record time seen: where a thread still blocked at the
    /// end of the recording stops counting.
    latest_time: u64,
    pub stats: OffCpuStats,
}

impl OffCpuTracker {
    /// Any record's time: the end of the recording is the last one.
    pub fn saw_time(&mut self, time: u64) {
        self.latest_time = self.latest_time.max(time);
    }

    /// Whether a switch-out of `tid` can start an off-CPU interval (not
    /// the idle task, not a thread that already exited).
    pub fn tracks(&self, tid: u32) -> bool {
        tid != 0 && !self.exited.contains(&tid)
    }

    /// A sampled switch-out of `tid` at `time`, 1 in `period` switches.
    pub fn switched_out(&mut self, tid: u32, key: SampleKey, time: u64, period: u64) {
        let period = period.max(1);
        self.stats.sampled += 1;
        self.stats.min_period = Some(self.stats.min_period.map_or(period, |p| p.min(period)));
        self.stats.max_period = self.stats.max_period.max(period);
        let earlier = self.pending.insert(tid, Pending { key, time, period });
        if earlier.is_some() {
            // Its switch-in never came (a lost record): no length to give it.
            self.stats.unpaired += 1;
        }
    }

    /// A switch record of `tid`.
    pub fn switch(&mut self, tid: u32, switch: &Switch) {
        let Some(time) = switch.sample_id.time else {
            return;
        };
        if switch.out {
            if switch.preempted {
                // Runnable at the switch-out: waiting for a CPU, not blocked.
                self.out_since.remove(&tid);
                if self.pending.get(&tid).is_some_and(|p| p.time <= time) {
                    self.pending.remove(&tid);
                    self.stats.preempted += 1;
                }
            } else if self.tracks(tid) {
                self.out_since.insert(tid, time);
            }
            return;
        }
        if let Some(out) = self.out_since.get(&tid).copied().filter(|&t| t <= time) {
            self.out_since.remove(&tid);
            self.blocked(tid, time - out);
        }
        if let Some(pending) = self.pending.get(&tid).copied().filter(|p| p.time <= time) {
            self.pending.remove(&tid);
            self.stats.blocked += 1;
            self.sampled_interval(tid, pending, time);
        }
    }

    fn blocked(&mut self, tid: u32, ns: u64) {
        let thread = self.threads.entry(tid).or_default();
        thread.blocked_ns = thread.blocked_ns.saturating_add(ns);
    }

    fn sampled_interval(&mut self, tid: u32, pending: Pending, end: u64) {
        let estimate = end.saturating_sub(pending.time) as f64 * pending.period as f64;
        let thread = self.threads.entry(tid).or_default();
        thread.sampled += 1;
        thread.estimate += estimate;
        let entry = self.sampled.entry(pending.key).or_default();
        entry.tid = tid;
        entry.count += 1;
        entry.estimate += estimate;
    }

    /// `tid` exited: nothing it does later is off-CPU time.
    pub fn exited(&mut self, tid: u32) {
        if self.pending.remove(&tid).is_some() {
            self.stats.unpaired += 1;
        }
        self.out_since.remove(&tid);
        self.exited.insert(tid);
    }

    /// `tid` was created (perhaps reusing an exited thread's number).
    pub fn created(&mut self, tid: u32) {
        self.exited.remove(&tid);
    }

    /// The off-CPU weight of every sampled key. Threads still blocked when
    /// the recording stopped count until its last record; each thread's
    /// measured total is shared out over its keys by their estimates.
    pub fn finish(&mut self) -> Vec<Blocked> {
        let end = self.latest_time;
        for (tid, out) in std::mem::take(&mut self.out_since) {
            self.blocked(tid, end.saturating_sub(out));
        }
        for (tid, pending) in std::mem::take(&mut self.pending) {
            self.stats.unfinished += 1;
            self.sampled_interval(tid, pending, end);
        }
        let threads = &self.threads;
        let mut weights: Vec<Blocked> = self
            .sampled
            .iter()
            .map(|(&key, s)| {
                let thread = threads.get(&s.tid).copied().unwrap_or_default();
                let weight = if thread.blocked_ns == 0 {
                    // No switch record timed it (lost records): the estimate alone.
                    s.estimate
                } else if thread.estimate > 0.0 {
                    s.estimate / thread.estimate * thread.blocked_ns as f64
                } else {
                    // Only zero-length samples: an even share each.
                    s.count as f64 / thread.sampled as f64 * thread.blocked_ns as f64
                };
                Blocked {
                    key,
                    count: s.count,
                    weight: weight.round().min(u64::MAX as f64) as u64,
                }
            })
            .collect();
        weights.sort_unstable_by_key(|b| b.key);
        for thread in self.threads.values().filter(|t| t.sampled == 0) {
            self.stats.unsampled_threads += 1;
            self.stats.unsampled_ns = self.stats.unsampled_ns.saturating_add(thread.blocked_ns);
        }
        self.stats.off_cpu_ns = weights
            .iter()
            .fold(0u64, |sum, b| sum.saturating_add(b.weight));
        self.sampled.clear();
        weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perfdata::SampleId;

    fn switch(out: bool, preempted: bool, time: u64) -> Switch {
        Switch {
            out,
            preempted,
            sample_id: SampleId {
                time: Some(time),
                ..SampleId::default()
            },
        }
    }

    const KEY: SampleKey = (0, 1, 2, 0, None);
    const OTHER: SampleKey = (0, 3, 2, 0, None);

    /// A blocked interval of `tid` from `out` to `back`, its stack sampled
    /// (1 in `period`) when `key` is given.
    fn block(
        t: &mut OffCpuTracker,
        tid: u32,
        key: Option<SampleKey>,
        out: u64,
        back: u64,
        period: u64,
    ) {
        if let Some(key) = key {
            t.switched_out(tid, key, out, period);
        }
        t.switch(tid, &switch(true, false, out));
        t.switch(tid, &switch(false, false, back));
    }

    #[test]
    fn blocked_time_runs_from_switch_out_to_the_next_switch_in() {
        let mut t = OffCpuTracker::default();
        t.switched_out(7, KEY, 1_000, 3);
        t.switch(7, &switch(true, false, 1_000));
        // Another thread's switch-in ends nothing.
        t.switch(8, &switch(false, false, 1_500));
        t.switch(7, &switch(false, false, 2_000));
        t.switch(7, &switch(false, false, 3_000));
        assert_eq!(
            t.finish(),
            [Blocked {
                key: KEY,
                count: 1,
                weight: 1_000
            }]
        );
        assert_eq!((t.stats.sampled, t.stats.blocked), (1, 1));
        assert_eq!((t.stats.min_period, t.stats.max_period), (Some(3), 3));
        assert_eq!((t.stats.off_cpu_ns, t.stats.unsampled_threads), (1_000, 0));
    }

    #[test]
    fn each_thread_keeps_its_measured_total_whatever_the_period() {
        let mut t = OffCpuTracker::default();
        // Thread 7 blocks 10 times for 100 ns, sampled once with a period
        // of 50 (a busy CPU's): weighted by period alone it would get 5,000.
        for i in 0..10 {
            let out = 10_000 + i * 1_000;
            block(&mut t, 7, (i == 3).then_some(KEY), out, out + 100, 50);
        }
        // Thread 9: 300 ns at KEY' and 100 ns at OTHER, each sampled (1 in
        // 1), and 600 ns unsampled: the 1,000 ns split 3:1.
        let key9 = (0, 1, 4, 0, None);
        block(&mut t, 9, Some(key9), 100, 400, 1);
        block(&mut t, 9, Some(OTHER), 500, 600, 1);
        block(&mut t, 9, None, 700, 1_300, 1);
        // Thread 11 blocks but is never sampled.
        block(&mut t, 11, None, 100, 2_100, 1);
        let weights = t.finish();
        let weight = |key| weights.iter().find(|b| b.key == key).map(|b| b.weight);
        assert_eq!(weight(KEY), Some(1_000));
        assert_eq!(weight(key9), Some(750));
        assert_eq!(weight(OTHER), Some(250));
        assert_eq!(t.stats.off_cpu_ns, 2_000);
        assert_eq!(
            (t.stats.unsampled_threads, t.stats.unsampled_ns),
            (1, 2_000)
        );
    }

    #[test]
    fn the_sampling_period_sets_the_split_within_a_thread() {
        let mut t = OffCpuTracker::default();
        // Equal sampled intervals, one sampled 1 in 3 (standing for three):
        // 3:1 of the thread's 4,000 ns.
        block(&mut t, 7, Some(KEY), 0, 1_000, 3);
        block(&mut t, 7, Some(OTHER), 2_000, 3_000, 1);
        block(&mut t, 7, None, 4_000, 5_000, 1);
        block(&mut t, 7, None, 6_000, 7_000, 1);
        let weights = t.finish();
        assert_eq!(
            weights.iter().map(|b| b.weight).collect::<Vec<_>>(),
            [3_000, 1_000]
        );
    }

    #[test]
    fn preempted_switch_outs_are_not_off_cpu() {
        let mut t = OffCpuTracker::default();
        t.switched_out(7, KEY, 1_000, 1);
        t.switch(7, &switch(true, true, 1_001));
        t.switch(7, &switch(false, false, 5_000));
        assert_eq!(t.finish(), []);
        assert_eq!((t.stats.preempted, t.stats.blocked), (1, 0));
        assert_eq!(t.stats.unsampled_ns, 0);
    }

    #[test]
    fn threads_blocked_at_the_end_count_until_the_last_record() {
        let mut t = OffCpuTracker::default();
        t.switched_out(7, KEY, 1_000, 1);
        t.switch(7, &switch(true, false, 1_000));
        t.saw_time(4_000);
        assert_eq!(
            t.finish(),
            [Blocked {
                key: KEY,
                count: 1,
                weight: 3_000
            }]
        );
        assert_eq!(t.stats.unfinished, 1);
    }

    #[test]
    fn exited_threads_and_the_idle_task_start_nothing() {
        let mut t = OffCpuTracker::default();
        assert!(!t.tracks(0));
        t.exited(9);
        assert!(!t.tracks(9));
        // Its last switch-out (after the exit record) blocks nothing.
        t.switch(9, &switch(true, false, 10));
        t.saw_time(1_000);
        assert_eq!(t.finish(), []);
        assert_eq!(t.stats.unsampled_ns, 0);
        t.created(9);
        assert!(t.tracks(9));
    }

    #[test]
    fn a_switch_in_from_before_the_switch_out_is_ignored_and_records_without_time_too() {
        let mut t = OffCpuTracker::default();
        t.switched_out(7, KEY, 1_000, 1);
        t.switch(7, &switch(false, false, 900));
        t.switch(7, &Switch::default());
        assert_eq!(t.stats.blocked, 0);
        t.switched_out(7, KEY, 2_000, 1);
        assert_eq!(t.stats.unpaired, 1);
    }
}
