//! Off-CPU time: each sampled switch-out waits here until the same thread
//! switches in again, and is then weighted by the time in between (times
//! the sampling period, when only every Nth switch was sampled).
//!
//! Memory is one entry per thread with a switch-out in flight (plus the
//! tids of threads that exited), never one per record.

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
    /// 1 in `period` switches was sampled: the weight is scaled by it.
    period: u64,
}

/// An off-CPU interval, ready to be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Blocked {
    pub key: SampleKey,
    /// Nanoseconds blocked, times the sampling period (saturating).
    pub weight: u64,
}

/// Pairs switch-outs with switch-ins, per thread.
#[derive(Debug, Default)]
pub(super) struct OffCpuTracker {
    pending: FxHashMap<u32, Pending>,
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

    /// A switch record of `tid`; returns the interval it ends, if any.
    pub fn switch(&mut self, tid: u32, switch: &Switch) -> Option<Blocked> {
        let time = switch.sample_id.time?;
        if switch.out {
            // Runnable at the switch-out: waiting for a CPU, not blocked.
            if switch.preempted && self.pending.get(&tid).is_some_and(|p| p.time <= time) {
                self.pending.remove(&tid);
                self.stats.preempted += 1;
            }
            return None;
        }
        let pending = self.pending.get(&tid).filter(|p| p.time <= time)?;
        let blocked = Blocked {
            key: pending.key,
            weight: (time - pending.time).saturating_mul(pending.period),
        };
        self.pending.remove(&tid);
        self.stats.blocked += 1;
        Some(blocked)
    }

    /// `tid` exited: nothing it does later is off-CPU time.
    pub fn exited(&mut self, tid: u32) {
        if self.pending.remove(&tid).is_some() {
            self.stats.unpaired += 1;
        }
        self.exited.insert(tid);
    }

    /// `tid` was created (perhaps reusing an exited thread's number).
    pub fn created(&mut self, tid: u32) {
        self.exited.remove(&tid);
    }

    /// Threads still blocked when the recording stopped: weighted until
    /// its last record.
    pub fn finish(&mut self) -> Vec<Blocked> {
        let end = self.latest_time;
        let still: Vec<Blocked> = self
            .pending
            .drain()
            .map(|(_, p)| Blocked {
                key: p.key,
                weight: end.saturating_sub(p.time).saturating_mul(p.period),
            })
            .collect();
        self.stats.unfinished += still.len() as u64;
        still
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

    const KEY: SampleKey = (0, 1, 2, 0);

    #[test]
    fn blocked_time_runs_from_switch_out_to_the_next_switch_in_times_the_period() {
        let mut t = OffCpuTracker::default();
        t.switched_out(7, KEY, 1_000, 3);
        assert_eq!(t.switch(7, &switch(true, false, 1_010)), None);
        // Another thread's switch-in ends nothing.
        assert_eq!(t.switch(8, &switch(false, false, 1_500)), None);
        let blocked = t.switch(7, &switch(false, false, 2_000));
        assert_eq!(
            blocked,
            Some(Blocked {
                key: KEY,
                weight: 3_000
            })
        );
        assert_eq!(t.switch(7, &switch(false, false, 3_000)), None);
        assert_eq!((t.stats.sampled, t.stats.blocked), (1, 1));
        assert_eq!((t.stats.min_period, t.stats.max_period), (Some(3), 3));
    }

    #[test]
    fn preempted_switch_outs_are_not_off_cpu() {
        let mut t = OffCpuTracker::default();
        t.switched_out(7, KEY, 1_000, 1);
        assert_eq!(t.switch(7, &switch(true, true, 1_001)), None);
        assert_eq!(t.switch(7, &switch(false, false, 5_000)), None);
        assert_eq!((t.stats.preempted, t.stats.blocked), (1, 0));
    }

    #[test]
    fn threads_blocked_at_the_end_count_until_the_last_record() {
        let mut t = OffCpuTracker::default();
        t.switched_out(7, KEY, 1_000, 1);
        t.saw_time(4_000);
        assert_eq!(
            t.finish(),
            [Blocked {
                key: KEY,
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
        t.created(9);
        assert!(t.tracks(9));
    }

    #[test]
    fn a_switch_in_from_before_the_switch_out_is_ignored_and_records_without_time_too() {
        let mut t = OffCpuTracker::default();
        t.switched_out(7, KEY, 1_000, 1);
        assert_eq!(t.switch(7, &switch(false, false, 900)), None);
        let untimed = Switch::default();
        assert_eq!(t.switch(7, &untimed), None);
        t.switched_out(7, KEY, 2_000, 1);
        assert_eq!(t.stats.unpaired, 1);
    }
}
