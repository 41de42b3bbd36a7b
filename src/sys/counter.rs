//! Reading counting (non-sampling) events: `read(2)` on a group leader
//! opened with `read_format` TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING | ID |
//! GROUP returns every member's count in one go. The decoding is pure and
//! unit-tested; only [`PerfEvent::read_group`] touches the kernel.

use std::os::fd::AsRawFd;

use super::{cvt, PerfEvent, SysError};
use crate::abi::read_format;

/// The `read_format` every counter rprof counts with uses.
pub const COUNTING_READ_FORMAT: u64 = read_format::TOTAL_TIME_ENABLED
    | read_format::TOTAL_TIME_RUNNING
    | read_format::ID
    | read_format::GROUP;

/// The most events one group may hold: bounds the read buffer (the kernel
/// itself refuses groups much larger than a PMU's counters).
pub const MAX_GROUP_MEMBERS: usize = 256;

/// One read of a group: how long it was enabled and on a counter
/// (nanoseconds), and each member's count with its kernel id, leader first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupReading {
    pub time_enabled: u64,
    pub time_running: u64,
    /// (id, count) in the order the members were opened.
    pub values: Vec<(u64, u64)>,
}

impl GroupReading {
    /// The count of the member with kernel id `id`.
    pub fn value_of(&self, id: u64) -> Option<u64> {
        self.values.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
    }
}

/// Decodes what `read(2)` returns for [`COUNTING_READ_FORMAT`]:
/// `u64 nr, time_enabled, time_running, {value, id} x nr`.
pub fn decode_group_read(bytes: &[u8]) -> Option<GroupReading> {
    let mut words = bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])));
    let nr = usize::try_from(words.next()?).ok()?;
    if nr > MAX_GROUP_MEMBERS || bytes.len() < 8 * (3 + 2 * nr) {
        return None;
    }
    let time_enabled = words.next()?;
    let time_running = words.next()?;
    let mut values = Vec::with_capacity(nr);
    for _ in 0..nr {
        let value = words.next()?;
        let id = words.next()?;
        values.push((id, value));
    }
    Some(GroupReading {
        time_enabled,
        time_running,
        values,
    })
}

impl PerfEvent {
    /// Reads the counts of this leader's group of `members` events
    /// (itself included), opened with [`COUNTING_READ_FORMAT`].
    pub fn read_group(&self, members: usize) -> Result<GroupReading, SysError> {
        if members == 0 || members > MAX_GROUP_MEMBERS {
            return Err(SysError::Other(format!(
                "a counter group holds 1 to {MAX_GROUP_MEMBERS} events, not {members}"
            )));
        }
        let mut buf = vec![0u8; 8 * (3 + 2 * members)];
        // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes and
        // the fd is a perf event fd owned by `self`.
        let n = cvt(unsafe { libc::read(self.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
            .map_err(|source| SysError::Syscall {
                call: "read(perf counter group)",
                source,
            })?;
        let n = usize::try_from(n).unwrap_or(0).min(buf.len());
        decode_group_read(&buf[..n]).ok_or_else(|| {
            SysError::Other(format!(
                "read of a counter group returned {n} bytes, not a group of {members}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    #[test]
    fn group_reads_decode_leader_first() {
        let reading = decode_group_read(&words(&[2, 1000, 500, 7, 11, 9, 12])).unwrap();
        assert_eq!(reading.time_enabled, 1000);
        assert_eq!(reading.time_running, 500);
        assert_eq!(reading.values, vec![(11, 7), (12, 9)]);
        assert_eq!(reading.value_of(12), Some(9));
        assert_eq!(reading.value_of(13), None);
    }

    #[test]
    fn short_or_absurd_group_reads_are_refused() {
        assert_eq!(decode_group_read(&[]), None);
        assert_eq!(decode_group_read(&words(&[2, 1, 1, 7, 11])), None);
        assert_eq!(decode_group_read(&words(&[u64::MAX, 1, 1])), None);
    }
}

#[cfg(test)]
mod kernel_tests {
    use super::*;
    use crate::abi::{event_type, flag, software, EventAttr};

    /// A group of task-clock and page-faults on this thread, read in one go.
    #[test]
    fn a_group_of_software_counters_reads_together() {
        let attr = |config, leader: bool| EventAttr {
            kind: event_type::SOFTWARE,
            config,
            read_format: COUNTING_READ_FORMAT,
            flags: flag::EXCLUDE_KERNEL
                | flag::EXCLUDE_HV
                | if leader { flag::DISABLED } else { 0 },
            ..EventAttr::default()
        };
        let leader = match PerfEvent::open(&attr(software::TASK_CLOCK, true), 0, -1) {
            Ok(event) => event,
            Err(e)
                if e.is_permission_denied() && std::env::var_os("RPROF_REQUIRE_PERF").is_none() =>
            {
                eprintln!("skipping: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let faults =
            PerfEvent::open_in_group(&attr(software::PAGE_FAULTS, false), 0, -1, Some(&leader))
                .unwrap();
        leader.enable().unwrap();
        let pages: Vec<u8> = vec![1; 64 * 4096];
        std::hint::black_box(&pages);
        leader.disable().unwrap();
        let reading = leader.read_group(2).unwrap();
        assert_eq!(reading.values.len(), 2);
        assert!(reading.time_enabled > 0 && reading.time_running > 0);
        assert!(reading.value_of(leader.id().unwrap()).unwrap() > 0);
        assert!(reading.value_of(faults.id().unwrap()).is_some());
        assert!(leader.read_group(0).is_err());
    }
}
