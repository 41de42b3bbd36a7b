//! Time order for a stream of records, in bounded memory.
//!
//! A recording interleaves per-CPU rings: each drain appends what every ring
//! holds, so records are in time order within a ring but not across them.
//! perf marks the end of each drain with FINISHED_ROUND and sorts in rounds
//! (tools/perf/util/ordered-events.c): at a round's end, everything up to the
//! newest time seen at the *previous* round's end can go, because a ring
//! drained later in a round can still hold records older than those of
//! rings drained before it, but none older than the round before.
//!
//! [`Ordered`] does the same over a min-heap. Files without rounds (or with
//! rounds too big to hold) fall back to a reorder window: once the heap
//! holds [`Window::records`] records or [`Window::owned_bytes`] copied bytes,
//! the oldest goes out. A record that arrives older than one already handed
//! out is still handed out, and counted in a warning.
//!
//! Records borrow the memory-mapped file, so what is held back pins the
//! file from the oldest held record on; everything before it is released
//! from the resident set as the stream goes ([`Records::release_before`]).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use super::records::Record;
use super::Records;

/// How much [`Ordered`] may hold back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Records held at most (default 262,144: ~35 MB of decoded records,
    /// several times one drain of a busy 64-CPU recording).
    pub records: usize,
    /// Bytes of copied call chains held at most (records from compressed
    /// data own their call chain; default 32 MiB).
    pub owned_bytes: usize,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            records: 1 << 18,
            owned_bytes: 32 << 20,
        }
    }
}

/// A record waiting in the heap, ordered by (time, arrival).
struct Pending<'a> {
    time: u64,
    seq: u64,
    owned_bytes: usize,
    record: Record<'a>,
}

impl PartialEq for Pending<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl Eq for Pending<'_> {}

impl PartialOrd for Pending<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// The records of a file in time order; see the module docs. Records
/// without a timestamp (or with time 0) keep their place after the record
/// before them (in file order). FINISHED_ROUND records are consumed, not handed out.
pub struct Ordered<'a> {
    records: Records<'a>,
    heap: BinaryHeap<Reverse<Pending<'a>>>,
    window: Window,
    /// False when some event has no timestamps: then file order it is.
    sort: bool,
    seq: u64,
    /// The time of the last timed record read, in file order.
    last_time: u64,
    /// The newest time read so far.
    newest: u64,
    /// The newest time at the last round's end: what the next round's end releases.
    next_release: Option<u64>,
    /// Records up to this time may go now.
    released: Option<u64>,
    owned_bytes: usize,
    /// The newest time handed out.
    handed_out: Option<u64>,
    out_of_order: u64,
    input_done: bool,
    warnings: Vec<String>,
    /// Per record pushed and not yet retired, in push order: the file
    /// offset it was read from, and whether it went out. The front is the
    /// oldest record still held: nothing before its offset is needed.
    held_from: VecDeque<(usize, bool)>,
    /// The sequence number of `held_from`'s front.
    held_base: u64,
}

impl<'a> Ordered<'a> {
    pub(super) fn new(records: Records<'a>, warnings: Vec<String>) -> Ordered<'a> {
        Ordered::with_window(records, warnings, Window::default())
    }

    pub(super) fn with_window(
        records: Records<'a>,
        warnings: Vec<String>,
        window: Window,
    ) -> Ordered<'a> {
        let sort = records.all_events_timed();
        Ordered {
            records,
            heap: BinaryHeap::new(),
            window,
            sort,
            seq: 0,
            last_time: 0,
            newest: 0,
            next_release: None,
            released: None,
            owned_bytes: 0,
            handed_out: None,
            out_of_order: 0,
            input_done: false,
            warnings,
            held_from: VecDeque::new(),
            held_base: 1,
        }
    }

    /// Every warning: opening the file, decoding its records, and ordering
    /// them. Complete once the iterator is exhausted.
    pub fn warnings(&self) -> Vec<String> {
        let mut all = self.warnings.clone();
        all.extend_from_slice(self.records.warnings());
        if self.out_of_order > 0 {
            all.push(format!(
                "{} records arrived later than the reorder window allows and were read out of \
                 time order (a mapping or thread name may apply a little late)",
                self.out_of_order
            ));
        }
        all
    }

    /// How many records are held back right now (for tests and benches).
    pub fn held(&self) -> usize {
        self.heap.len()
    }

    fn over_window(&self) -> bool {
        self.heap.len() > self.window.records || self.owned_bytes > self.window.owned_bytes
    }

    fn releasable(&self, time: u64) -> bool {
        self.input_done || self.released.is_some_and(|limit| time <= limit) || self.over_window()
    }

    fn push(&mut self, record: Record<'a>, read_at: usize) {
        // Time 0 is perf's "no time" (its synthesized records, the final
        // LOST_SAMPLES total): such records keep their place, like untimed ones.
        self.last_time = record.time().filter(|&t| t != 0).unwrap_or(self.last_time);
        self.newest = self.newest.max(self.last_time);
        let owned_bytes = match &record {
            Record::Sample(s) if matches!(s.callchain, std::borrow::Cow::Owned(_)) => {
                s.callchain.len() * 8
            }
            _ => 0,
        };
        self.owned_bytes += owned_bytes;
        self.seq += 1;
        self.held_from.push_back((read_at, false));
        self.heap.push(Reverse(Pending {
            time: self.last_time,
            seq: self.seq,
            owned_bytes,
            record,
        }));
    }

    fn pop(&mut self) -> Option<Record<'a>> {
        let Reverse(pending) = self.heap.pop()?;
        self.owned_bytes -= pending.owned_bytes;
        self.retire(pending.seq);
        if self.handed_out.is_some_and(|newest| pending.time < newest) {
            self.out_of_order += 1;
        } else {
            self.handed_out = Some(pending.time);
        }
        Some(pending.record)
    }
}

impl Ordered<'_> {
    /// Record `seq` goes out: once the oldest held records have all gone,
    /// the file before the next oldest one is no longer needed, except for
    /// the record going out, which the caller is about to read.
    fn retire(&mut self, seq: u64) {
        let index = (seq - self.held_base) as usize;
        let Some(entry) = self.held_from.get_mut(index) else {
            return;
        };
        entry.1 = true;
        let going_out_from = entry.0;
        let mut advanced = false;
        while self.held_from.front().is_some_and(|&(_, gone)| gone) {
            self.held_from.pop_front();
            self.held_base += 1;
            advanced = true;
        }
        if advanced {
            let oldest_held = match self.held_from.front() {
                Some(&(offset, _)) => offset,
                None => self.records.position(),
            };
            self.records.release_before(oldest_held.min(going_out_from));
        }
    }
}

impl<'a> Iterator for Ordered<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if !self.sort {
            loop {
                // Keep the page of the record going out: the caller reads it.
                let read_at = self.records.position();
                self.records.release_before(read_at);
                match self.records.next()? {
                    Record::FinishedRound => continue,
                    record => return Some(record),
                }
            }
        }
        loop {
            if let Some(Reverse(oldest)) = self.heap.peek() {
                if self.releasable(oldest.time) {
                    return self.pop();
                }
            } else if self.input_done {
                return None;
            }
            let read_at = self.records.position();
            match self.records.next() {
                None => self.input_done = true,
                Some(Record::FinishedRound) => {
                    self.released = self.next_release;
                    self.next_release = Some(self.newest);
                }
                Some(record) => self.push(record, read_at),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::sample;
    use crate::perfdata::records::Sample;
    use crate::perfdata::writer::{encode, AttrEntry};
    use crate::perfdata::{FeatureData, PerfDataWriter, PerfFile};

    const SAMPLE_TYPE: u64 = sample::IP | sample::TID | sample::TIME | sample::PERIOD;

    /// A file whose records carry these times, `None` for FINISHED_ROUND.
    fn file_with(times: &[Option<u64>]) -> PerfFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.data");
        let attr = crate::perfdata::EventAttr {
            sample_type: SAMPLE_TYPE,
            ..Default::default()
        };
        let mut writer = PerfDataWriter::create(&path, &[AttrEntry { attr, ids: vec![] }]).unwrap();
        for time in times {
            let bytes = match time {
                Some(time) => encode::sample(
                    SAMPLE_TYPE,
                    &Sample {
                        ip: *time,
                        time: *time,
                        period: 1,
                        ..Sample::default()
                    },
                ),
                None => encode::finished_round(),
            };
            writer.write_raw(&bytes).unwrap();
        }
        writer.finish(&FeatureData::default()).unwrap();
        PerfFile::from_bytes(std::fs::read(&path).unwrap()).unwrap()
    }

    fn times<'a>(ordered: impl Iterator<Item = Record<'a>>) -> Vec<u64> {
        ordered
            .map(|r| match r {
                Record::Sample(s) => s.time,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn rounds_are_merged_across_rings() {
        // Two rings per drain: the second drain's first ring holds records
        // older than the first drain's second ring.
        let file = file_with(&[
            Some(10),
            Some(30),
            Some(20),
            Some(40),
            None,
            Some(35),
            Some(50),
            Some(45),
            None,
            Some(60),
            None,
        ]);
        let ordered = file.ordered();
        assert_eq!(times(ordered), vec![10, 20, 30, 35, 40, 45, 50, 60]);
    }

    #[test]
    fn rounds_bound_what_is_held_back() {
        // 100 rounds of 10 records: never more than two rounds are held.
        let mut times_in = Vec::new();
        for round in 0..100u64 {
            times_in.extend((0..10).map(|i| Some(1 + round * 100 + (9 - i) * 10)));
            times_in.push(None);
        }
        let file = file_with(&times_in);
        let mut ordered = file.ordered();
        let mut most = 0;
        let mut out = Vec::new();
        while let Some(Record::Sample(s)) = ordered.next() {
            most = most.max(ordered.held());
            out.push(s.time);
        }
        assert!(most <= 21, "held {most} records");
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(out.len(), 1000);
    }

    #[test]
    fn without_rounds_a_bounded_window_sorts_what_it_can_and_counts_the_rest() {
        let file = file_with(&[Some(5), Some(3), Some(4), Some(9), Some(1), Some(8)]);
        let window = Window {
            records: 2,
            owned_bytes: usize::MAX,
        };
        let mut ordered = Ordered::with_window(file.records(), Vec::new(), window);
        let mut out = Vec::new();
        let mut most = 0;
        while let Some(Record::Sample(s)) = ordered.next() {
            most = most.max(ordered.held());
            out.push(s.time);
        }
        assert!(most <= 3, "held {most}");
        assert_eq!(out.len(), 6);
        // 1 arrives after 3 and 4 went out: handed out late, and counted.
        assert_eq!(out, vec![3, 4, 1, 5, 8, 9]);
        let warnings = ordered.warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("1 records arrived later")),
            "{warnings:?}"
        );
    }

    #[test]
    fn records_at_time_zero_keep_their_place_instead_of_counting_as_late() {
        // perf ends files with a LOST_SAMPLES total at time 0.
        let file = file_with(&[Some(5), None, Some(9), None, Some(0)]);
        let mut ordered = file.ordered();
        assert_eq!(times(ordered.by_ref()), vec![5, 9, 0]);
        assert!(ordered.warnings().is_empty(), "{:?}", ordered.warnings());
    }

    #[test]
    fn a_file_without_rounds_that_fits_the_window_is_fully_sorted() {
        let file = file_with(&[Some(5), Some(3), Some(4), Some(9), Some(1), Some(8)]);
        assert_eq!(times(file.ordered()), vec![1, 3, 4, 5, 8, 9]);
    }
}
