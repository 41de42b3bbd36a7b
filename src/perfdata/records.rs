//! Decoded records: what the reader yields and what the process model eats.
//! Samples borrow their call chain from the file where they can (the file is
//! memory-mapped), so streaming a recording copies nothing per sample; tests
//! build records by hand with owned call chains (`vec![..].into()`).

use std::borrow::Cow;

/// CPU mode from a record's `misc` field (`PERF_RECORD_MISC_CPUMODE_MASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CpuMode {
    #[default]
    Unknown,
    Kernel,
    User,
    Hypervisor,
    GuestKernel,
    GuestUser,
}

/// The `sample_id_all` trailer of non-sample records (fields present
/// according to the attr's `sample_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleId {
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    pub time: Option<u64>,
    pub id: Option<u64>,
    pub cpu: Option<u32>,
}

/// A `PERF_RECORD_SAMPLE`, with the fields rprof uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sample<'a> {
    /// Index into the file's attrs of the event that produced it.
    pub attr_index: usize,
    pub cpumode: CpuMode,
    pub ip: u64,
    pub pid: u32,
    pub tid: u32,
    pub time: u64,
    pub cpu: u32,
    /// Weight in the event's unit (ns for cpu-clock). Without
    /// PERF_SAMPLE_PERIOD: the attr's fixed period, or 1 in frequency mode.
    pub period: u64,
    /// Raw kernel call chain (PERF_SAMPLE_CALLCHAIN) including the
    /// `PERF_CONTEXT_*` markers; empty when not sampled. Borrowed from the
    /// file when it is aligned there, else a copy.
    pub callchain: Cow<'a, [u64]>,
    pub id: Option<u64>,
}

impl Sample<'_> {
    /// The same sample, owning its call chain.
    pub fn into_owned(self) -> Sample<'static> {
        Sample {
            callchain: Cow::Owned(self.callchain.into_owned()),
            ..self
        }
    }
}

/// `PERF_RECORD_MMAP` or `PERF_RECORD_MMAP2` (executable mappings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mmap {
    pub cpumode: CpuMode,
    pub pid: u32,
    pub tid: u32,
    pub start: u64,
    pub len: u64,
    /// File offset of `start`.
    pub pgoff: u64,
    pub filename: String,
    /// From MMAP2 with `PERF_RECORD_MISC_MMAP_BUILD_ID`.
    pub build_id: Option<Vec<u8>>,
    pub prot: u32,
    pub flags: u32,
    pub sample_id: SampleId,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Comm {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// Set when the comm changed because of exec (`PERF_RECORD_MISC_COMM_EXEC`).
    pub exec: bool,
    pub sample_id: SampleId,
}

/// `PERF_RECORD_FORK` / `PERF_RECORD_EXIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskEvent {
    pub pid: u32,
    pub ppid: u32,
    pub tid: u32,
    pub ptid: u32,
    pub time: u64,
    pub sample_id: SampleId,
}

/// `PERF_RECORD_LOST` (ring overflow) or `PERF_RECORD_LOST_SAMPLES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lost {
    pub id: u64,
    pub lost: u64,
    pub sample_id: SampleId,
}

/// `PERF_RECORD_THROTTLE` / `PERF_RECORD_UNTHROTTLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Throttle {
    pub time: u64,
    pub id: u64,
    pub unthrottle: bool,
    pub sample_id: SampleId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Sample(Sample<'a>),
    Mmap(Mmap),
    Comm(Comm),
    Fork(TaskEvent),
    Exit(TaskEvent),
    Lost(Lost),
    LostSamples(Lost),
    Throttle(Throttle),
    FinishedRound,
    /// Any record type rprof does not interpret; kept so counts add up.
    Other {
        kind: u32,
    },
}

impl Record<'_> {
    /// The same record, owning everything (for tests and small tools).
    pub fn into_owned(self) -> Record<'static> {
        match self {
            Record::Sample(s) => Record::Sample(s.into_owned()),
            Record::Mmap(m) => Record::Mmap(m),
            Record::Comm(c) => Record::Comm(c),
            Record::Fork(t) => Record::Fork(t),
            Record::Exit(t) => Record::Exit(t),
            Record::Lost(l) => Record::Lost(l),
            Record::LostSamples(l) => Record::LostSamples(l),
            Record::Throttle(t) => Record::Throttle(t),
            Record::FinishedRound => Record::FinishedRound,
            Record::Other { kind } => Record::Other { kind },
        }
    }

    /// Timestamp used to order records across per-CPU rings, when present.
    pub fn time(&self) -> Option<u64> {
        match self {
            Record::Sample(s) => Some(s.time),
            Record::Mmap(m) => m.sample_id.time,
            Record::Comm(c) => c.sample_id.time,
            Record::Fork(t) | Record::Exit(t) => Some(t.time),
            Record::Lost(l) | Record::LostSamples(l) => l.sample_id.time,
            Record::Throttle(t) => Some(t.time),
            Record::FinishedRound | Record::Other { .. } => None,
        }
    }
}
