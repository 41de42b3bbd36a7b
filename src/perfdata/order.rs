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

use super::records::Record;
use super::Records;

/// How much [`Ordered`] may hold back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Records held at most (default 262,144: ~35 MB of decoded records,
    /// several times one drain of a busy 64-CPU recording).
    pub records: usize,
    /// Bytes of copied call chains, registers and stack copies held at
    /// most (records from compressed data own theirs; default 32 MiB).
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

/// A record held back, with its sort key.
struct Pending<'a> {
    time: u64,
    /// File offset it was read from: its bytes lie at or after it.
    read_at: usize,
    owned_bytes: usize,
    record: Record<'a>,
    /// Its bytes in the file (see [`Records::last_raw`]).
    raw: Option<&'a [u8]>,
}

/// The records of a file in time order; see the module docs. Records
/// without a timestamp (or with time 0) keep their place after the record
/// before them (in file order). FINISHED_ROUND records are consumed, not
/// handed out.
///
/// Held records wait unsorted; at a round's end they are sorted (stably,
/// and the sort is fast on what per-CPU rings give: a few sorted runs) and
/// those old enough go out as one batch.
pub struct Ordered<'a> {
    records: Records<'a>,
    window: Window,
    /// False when some event has no timestamps: then file order it is.
    sort: bool,
    /// Read and not released yet: a sorted prefix (left from the last
    /// batch), then arrivals.
    held: Vec<Pending<'a>>,
    /// The released batch, in time order, going out.
    ready: std::vec::IntoIter<Pending<'a>>,
    /// The time of the last timed record read, in file order.
    last_time: u64,
    /// The newest time read so far.
    newest: u64,
    /// The newest time at the last round's end: what the next round's end releases.
    next_release: Option<u64>,
    owned_bytes: usize,
    /// The newest time handed out.
    handed_out: Option<u64>,
    out_of_order: u64,
    input_done: bool,
    warnings: Vec<String>,
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
            window,
            sort,
            held: Vec::new(),
            ready: Vec::new().into_iter(),
            last_time: 0,
            newest: 0,
            next_release: None,
            owned_bytes: 0,
            handed_out: None,
            out_of_order: 0,
            input_done: false,
            warnings,
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

    /// Bytes of the file read so far (for progress).
    pub fn bytes_read(&self) -> usize {
        self.records.position()
    }

    /// How many records are held back right now (for tests and benches).
    pub fn held(&self) -> usize {
        self.held.len() + self.ready.len()
    }

    fn over_window(&self) -> bool {
        self.held.len() > self.window.records || self.owned_bytes > self.window.owned_bytes
    }

    fn push(&mut self, record: Record<'a>, read_at: usize, raw: Option<&'a [u8]>) {
        // Time 0 is perf's "no time" (its synthesized records, the final
        // LOST_SAMPLES total): such records keep their place, like untimed ones.
        self.last_time = record.time().filter(|&t| t != 0).unwrap_or(self.last_time);
        self.newest = self.newest.max(self.last_time);
        let owned_bytes = match &record {
            Record::Sample(s) => s.owned_bytes(),
            _ => 0,
        };
        self.owned_bytes += owned_bytes;
        self.held.push(Pending {
            time: self.last_time,
            read_at,
            owned_bytes,
            record,
            raw,
        });
    }

    /// Sorts what is held and releases the oldest: those at or before
    /// `limit`, and at least `at_least` of them. The file before the oldest
    /// held record (the batch included: it is about to be read) is no
    /// longer needed.
    fn release(&mut self, limit: u64, at_least: usize) {
        let needed_from = self.held.iter().map(|p| p.read_at).min();
        self.held.sort_by_key(|p| p.time);
        let split = self
            .held
            .partition_point(|p| p.time <= limit)
            .max(at_least.min(self.held.len()));
        if split == 0 {
            return;
        }
        let rest = self.held.split_off(split);
        let batch = std::mem::replace(&mut self.held, rest);
        self.owned_bytes -= batch.iter().map(|p| p.owned_bytes).sum::<usize>();
        if let Some(offset) = needed_from {
            self.records.release_before(offset);
        }
        self.ready = batch.into_iter();
    }

    /// Reads the next record into the held set; false at the end.
    fn read(&mut self) -> bool {
        let read_at = self.records.position();
        match self.records.next() {
            None => return false,
            Some(Record::FinishedRound) => {
                if let Some(limit) = self.next_release {
                    self.release(limit, 0);
                }
                self.next_release = Some(self.newest);
            }
            Some(record) => {
                let raw = self.records.last_raw();
                self.push(record, read_at, raw);
                if self.over_window() {
                    // Keep half the window to sort what arrives next against.
                    let excess = self.held.len().saturating_sub(self.window.records / 2);
                    self.release(0, excess.max(1));
                }
            }
        }
        true
    }

    /// File order, for files whose events lack timestamps.
    fn next_in_file_order(&mut self) -> Option<(Record<'a>, Option<&'a [u8]>)> {
        loop {
            // Keep the page of the record going out: the caller reads it.
            let read_at = self.records.position();
            self.records.release_before(read_at);
            match self.records.next()? {
                Record::FinishedRound => continue,
                record => return Some((record, self.records.last_raw())),
            }
        }
    }

    /// The next record, with its bytes as the file holds them (`None` for
    /// records from compressed data): for rewriting a file record by record.
    pub fn next_with_raw(&mut self) -> Option<(Record<'a>, Option<&'a [u8]>)> {
        if !self.sort {
            return self.next_in_file_order();
        }
        loop {
            if let Some(pending) = self.ready.next() {
                if self.handed_out.is_some_and(|newest| pending.time < newest) {
                    self.out_of_order += 1;
                } else {
                    self.handed_out = Some(pending.time);
                }
                return Some((pending.record, pending.raw));
            }
            if self.input_done {
                if self.held.is_empty() {
                    return None;
                }
                self.release(u64::MAX, 0);
                continue;
            }
            self.input_done = !self.read();
        }
    }
}

impl<'a> Iterator for Ordered<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        self.next_with_raw().map(|(record, _)| record)
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
