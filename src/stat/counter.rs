//! What `rprof stat` counts: a [`Counter`] is one event's encoding, a
//! [`CounterGroup`] the events the kernel schedules together (perf's
//! `{a,b}`; a lone event is a group of one). Pure: turned into attrs here,
//! opened by `stat::session`.

use crate::abi::{event_type, flag, hardware, software, EventAttr};
use crate::sys::COUNTING_READ_FORMAT;

/// One event to count, as the kernel names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The name printed in the table (`task-clock`, `cycles:u`, `r1c2`).
    pub name: String,
    /// `PERF_TYPE_*`.
    pub kind: u32,
    pub config: u64,
    pub config1: u64,
    pub config2: u64,
    pub exclude_user: bool,
    pub exclude_kernel: bool,
    pub exclude_hv: bool,
}

/// Events counted together; the first is the group's leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterGroup {
    pub counters: Vec<Counter>,
}

/// How a counter's value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountUnit {
    /// Nanoseconds of CPU time, shown in milliseconds (`msec`).
    Msec,
    /// Occurrences.
    Plain,
}

/// What a counter is, for the derived metrics printed beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterRole {
    TaskClock,
    CpuClock,
    Cycles,
    Instructions,
    Branches,
    BranchMisses,
    CacheReferences,
    CacheMisses,
    /// Anything else: its rate per second of task-clock.
    Other,
}

/// Where and how a group's attrs are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenMode {
    /// Count in threads the target creates after opening.
    pub inherit: bool,
    /// Start at the launched command's exec (the leader stays disabled
    /// until then).
    pub enable_on_exec: bool,
}

impl Counter {
    /// A counter with no modifiers.
    pub fn new(name: &str, kind: u32, config: u64) -> Counter {
        Counter {
            name: name.to_string(),
            kind,
            config,
            config1: 0,
            config2: 0,
            exclude_user: false,
            exclude_kernel: false,
            exclude_hv: false,
        }
    }

    pub fn unit(&self) -> CountUnit {
        match (self.kind, self.config) {
            (event_type::SOFTWARE, software::TASK_CLOCK | software::CPU_CLOCK) => CountUnit::Msec,
            _ => CountUnit::Plain,
        }
    }

    pub fn role(&self) -> CounterRole {
        match (self.kind, self.config) {
            (event_type::SOFTWARE, software::TASK_CLOCK) => CounterRole::TaskClock,
            (event_type::SOFTWARE, software::CPU_CLOCK) => CounterRole::CpuClock,
            (event_type::HARDWARE, hardware::CPU_CYCLES) => CounterRole::Cycles,
            (event_type::HARDWARE, hardware::INSTRUCTIONS) => CounterRole::Instructions,
            (event_type::HARDWARE, hardware::BRANCH_INSTRUCTIONS) => CounterRole::Branches,
            (event_type::HARDWARE, hardware::BRANCH_MISSES) => CounterRole::BranchMisses,
            (event_type::HARDWARE, hardware::CACHE_REFERENCES) => CounterRole::CacheReferences,
            (event_type::HARDWARE, hardware::CACHE_MISSES) => CounterRole::CacheMisses,
            _ => CounterRole::Other,
        }
    }

    /// The attr for counting this event. Only a group's leader is opened
    /// disabled: members follow it.
    pub fn attr(&self, is_leader: bool, mode: OpenMode) -> EventAttr {
        let mut flags = 0;
        if self.exclude_user {
            flags |= flag::EXCLUDE_USER;
        }
        if self.exclude_kernel {
            flags |= flag::EXCLUDE_KERNEL;
        }
        if self.exclude_hv {
            flags |= flag::EXCLUDE_HV;
        }
        if mode.inherit {
            flags |= flag::INHERIT;
        }
        if is_leader {
            flags |= flag::DISABLED;
            if mode.enable_on_exec {
                flags |= flag::ENABLE_ON_EXEC;
            }
        }
        EventAttr {
            kind: self.kind,
            config: self.config,
            config1: self.config1,
            config2: self.config2,
            read_format: COUNTING_READ_FORMAT,
            flags,
            ..EventAttr::default()
        }
    }

    /// This counter limited to user space, named as perf names it then
    /// (`task-clock:u`): what an unprivileged user may count at
    /// perf_event_paranoid 2.
    pub fn user_only(&self) -> Counter {
        let mut user = self.clone();
        user.exclude_kernel = true;
        user.exclude_hv = true;
        if !user.name.contains(':') {
            user.name.push_str(":u");
        }
        user
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::read_format;

    #[test]
    fn leaders_start_disabled_and_members_follow() {
        let clock = Counter::new("task-clock", event_type::SOFTWARE, software::TASK_CLOCK);
        let launch = OpenMode {
            inherit: true,
            enable_on_exec: true,
        };
        let leader = clock.attr(true, launch);
        assert!(leader.has_flag(flag::DISABLED) && leader.has_flag(flag::ENABLE_ON_EXEC));
        assert!(leader.has_flag(flag::INHERIT));
        assert_eq!(
            leader.read_format,
            read_format::TOTAL_TIME_ENABLED
                | read_format::TOTAL_TIME_RUNNING
                | read_format::ID
                | read_format::GROUP
        );
        // Counting, not sampling.
        assert_eq!((leader.sample_period_or_freq, leader.sample_type), (0, 0));
        let member = clock.attr(false, launch);
        assert!(!member.has_flag(flag::DISABLED) && !member.has_flag(flag::ENABLE_ON_EXEC));
        let attach = clock.attr(true, OpenMode::default());
        assert!(!attach.has_flag(flag::INHERIT) && !attach.has_flag(flag::ENABLE_ON_EXEC));
    }

    #[test]
    fn modifiers_become_exclude_bits_and_units_follow_the_event() {
        let mut cycles = Counter::new("cycles:u", event_type::HARDWARE, hardware::CPU_CYCLES);
        cycles.exclude_kernel = true;
        cycles.exclude_hv = true;
        let attr = cycles.attr(true, OpenMode::default());
        assert!(attr.has_flag(flag::EXCLUDE_KERNEL) && attr.has_flag(flag::EXCLUDE_HV));
        assert!(!attr.has_flag(flag::EXCLUDE_USER));
        assert_eq!(cycles.unit(), CountUnit::Plain);
        assert_eq!(cycles.role(), CounterRole::Cycles);
        let clock = Counter::new("cpu-clock", event_type::SOFTWARE, software::CPU_CLOCK);
        assert_eq!(clock.unit(), CountUnit::Msec);
        assert_eq!(clock.user_only().name, "cpu-clock:u");
        assert!(clock.user_only().exclude_kernel);
        assert_eq!(cycles.user_only().name, "cycles:u");
    }
}
