//! One counting run: open every group on the target (per thread or per
//! CPU), let the command run, read the groups, and turn raw counts into
//! scaled readings.

use std::collections::BTreeMap;

use super::counter::{Counter, CounterGroup, OpenMode};
use super::StatError;
use crate::abi::event_type;
use crate::sys::{PerfEvent, SysError};

/// Raw totals of one counter over some span: its count and the times the
/// kernel kept it enabled and actually on a counter (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    pub value: u64,
    pub enabled: u64,
    pub running: u64,
}

impl Reading {
    /// The count extrapolated to the whole enabled time, as perf scales a
    /// multiplexed counter; None when it never ran.
    pub fn scaled(&self) -> Option<f64> {
        if self.running == 0 {
            return None;
        }
        let value = self.value as f64;
        if self.running >= self.enabled {
            Some(value)
        } else {
            Some(value * self.enabled as f64 / self.running as f64)
        }
    }

    /// Share of the enabled time the counter ran, in percent.
    pub fn running_pct(&self) -> f64 {
        if self.enabled == 0 {
            100.0
        } else {
            (100.0 * self.running as f64 / self.enabled as f64).min(100.0)
        }
    }

    fn add(&mut self, other: Reading) {
        self.value = self.value.saturating_add(other.value);
        self.enabled = self.enabled.saturating_add(other.enabled);
        self.running = self.running.saturating_add(other.running);
    }

    /// What accrued since `earlier` (for `-I` intervals).
    pub fn since(&self, earlier: &Reading) -> Reading {
        Reading {
            value: self.value.saturating_sub(earlier.value),
            enabled: self.enabled.saturating_sub(earlier.enabled),
            running: self.running.saturating_sub(earlier.running),
        }
    }
}

/// A counter as opened: possibly limited to user space (the name says so),
/// and whether the machine could count it at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedCounter {
    pub counter: Counter,
    pub supported: bool,
}

/// Where events go: `pid` and `cpu` arguments of perf_event_open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub pid: i32,
    /// None: any CPU (the task's counter follows it).
    pub cpu: Option<u32>,
}

/// One group opened on one slot: the leader's fd, the members' fds (kept
/// open) and which counter each kernel id belongs to.
#[derive(Debug)]
struct OpenGroup {
    cpu: Option<u32>,
    leader: PerfEvent,
    _members: Vec<PerfEvent>,
    /// (kernel id, index into the flat counter list).
    ids: Vec<(u64, usize)>,
}

/// Every counter opened on every slot.
#[derive(Debug)]
pub struct OpenCounters {
    pub counters: Vec<OpenedCounter>,
    groups: Vec<OpenGroup>,
}

/// Counts keyed by (flat counter index, CPU when per-CPU).
pub type Readings = BTreeMap<(usize, Option<u32>), Reading>;

impl OpenCounters {
    /// Opens `groups` on every slot. Counters the machine lacks are marked
    /// unsupported instead of failing; a counter refused for privilege is
    /// retried limited to user space (`name:u`), as perf stat does; slots
    /// whose thread vanished are skipped when `skip_vanished`.
    pub fn open(
        groups: &[CounterGroup],
        slots: &[Slot],
        mode: OpenMode,
        skip_vanished: bool,
    ) -> Result<OpenCounters, StatError> {
        let mut counters: Vec<OpenedCounter> = groups
            .iter()
            .flat_map(|g| g.counters.iter())
            .map(|c| OpenedCounter {
                counter: c.clone(),
                supported: false,
            })
            .collect();
        let mut opened = Vec::new();
        let mut first = 0;
        for group in groups {
            let flat: Vec<usize> = (first..first + group.counters.len()).collect();
            first += group.counters.len();
            for slot in slots {
                match open_group(&mut counters, &flat, *slot, mode) {
                    Ok(Some(group)) => opened.push(group),
                    Ok(None) => {}
                    Err(SysError::NoSuchProcess { .. }) if skip_vanished => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(OpenCounters {
            counters,
            groups: opened,
        })
    }

    /// Starts counting now (targets that are not launched at exec).
    pub fn enable(&self) -> Result<(), StatError> {
        for group in &self.groups {
            group.leader.enable()?;
        }
        Ok(())
    }

    pub fn disable(&self) -> Result<(), StatError> {
        for group in &self.groups {
            group.leader.disable()?;
        }
        Ok(())
    }

    /// Reads every group once; counts of the same counter are summed over
    /// threads, and over CPUs unless `per_cpu`.
    pub fn read(&self, per_cpu: bool) -> Result<Readings, StatError> {
        let mut readings = Readings::new();
        for group in &self.groups {
            let reading = group.leader.read_group(group.ids.len())?;
            let cpu = if per_cpu { group.cpu } else { None };
            for &(id, index) in &group.ids {
                let value = reading.value_of(id).unwrap_or(0);
                readings.entry((index, cpu)).or_default().add(Reading {
                    value,
                    enabled: reading.time_enabled,
                    running: reading.time_running,
                });
            }
        }
        Ok(readings)
    }
}

/// Opens one group's counters on `slot`; the first counter that opens
/// leads. None when none of them could be opened on this machine.
fn open_group(
    counters: &mut [OpenedCounter],
    flat: &[usize],
    slot: Slot,
    mode: OpenMode,
) -> Result<Option<OpenGroup>, SysError> {
    let cpu_arg = slot.cpu.map_or(-1, |c| i32::try_from(c).unwrap_or(-1));
    let mut leader: Option<PerfEvent> = None;
    let mut members = Vec::new();
    let mut ids = Vec::new();
    for &index in flat {
        let Some(entry) = counters.get_mut(index) else {
            continue;
        };
        let attempt = |counter: &Counter, leader: Option<&PerfEvent>| {
            PerfEvent::open_in_group(
                &counter.attr(leader.is_none(), mode),
                slot.pid,
                cpu_arg,
                leader,
            )
        };
        let mut result = attempt(&entry.counter, leader.as_ref());
        if matches!(&result, Err(e) if e.is_permission_denied()) && !entry.counter.exclude_kernel {
            let user = entry.counter.user_only();
            result = attempt(&user, leader.as_ref());
            if result.is_ok() {
                entry.counter = user;
            }
        }
        let event = match result {
            Ok(event) => event,
            Err(SysError::EventUnsupported { .. }) => continue,
            // A hardware event the hypervisor refuses reads EINVAL on some VMs.
            Err(SysError::InvalidAttr { .. }) if entry.counter.kind != event_type::SOFTWARE => {
                continue
            }
            Err(e) => return Err(e.with_event_name(&entry.counter.name)),
        };
        entry.supported = true;
        ids.push((event.id()?, index));
        match leader {
            None => leader = Some(event),
            Some(_) => members.push(event),
        }
    }
    Ok(leader.map(|leader| OpenGroup {
        cpu: slot.cpu,
        leader,
        _members: members,
        ids,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplexed_counts_are_scaled_to_the_enabled_time() {
        let r = Reading {
            value: 100,
            enabled: 1000,
            running: 250,
        };
        assert_eq!(r.scaled(), Some(400.0));
        assert_eq!(r.running_pct(), 25.0);
        let full = Reading {
            value: 7,
            enabled: 10,
            running: 10,
        };
        assert_eq!(full.scaled(), Some(7.0));
        assert_eq!(full.running_pct(), 100.0);
        assert_eq!(Reading::default().scaled(), None);
        assert_eq!(Reading::default().running_pct(), 100.0);
        let later = Reading {
            value: 10,
            enabled: 30,
            running: 20,
        };
        assert_eq!(
            later.since(&full),
            Reading {
                value: 3,
                enabled: 20,
                running: 10
            }
        );
    }
}
