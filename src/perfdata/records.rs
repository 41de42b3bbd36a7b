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
    /// User registers at the sample (PERF_SAMPLE_REGS_USER); `None` when not
    /// sampled or when the kernel had none to give (a kernel thread: ABI 0).
    pub user_regs: Option<UserRegs<'a>>,
    /// The copied top of the user stack (PERF_SAMPLE_STACK_USER), from the
    /// sampled stack pointer up: only the `dyn_size` bytes the kernel really
    /// copied. Empty when not sampled. Borrowed like the call chain.
    pub user_stack: Cow<'a, [u8]>,
    /// PERF_SAMPLE_RAW bytes (a tracepoint's fields), as the kernel wrote
    /// them, its padding to 8 bytes included; empty when not sampled.
    pub raw: Cow<'a, [u8]>,
    /// The id of the task's cgroup (PERF_SAMPLE_CGROUP; the perf_event
    /// controller's hierarchy, cgroup v2 on current systems); `None` when
    /// not sampled. [`CgroupRecord`]s name the ids.
    pub cgroup: Option<u64>,
}

/// `PERF_SAMPLE_REGS_ABI_64`: the registers are those of a 64-bit process.
pub const REGS_ABI_64: u64 = 2;

/// The user registers of a sample, as the kernel wrote them: one u64 per
/// set bit of the attr's `sample_regs_user` mask, lowest bit first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserRegs<'a> {
    /// `PERF_SAMPLE_REGS_ABI_*` (1: 32-bit, 2: 64-bit).
    pub abi: u64,
    /// The attr's `sample_regs_user`: which registers `values` holds.
    pub mask: u64,
    /// The values, 8 native-endian bytes each (bytes, not `u64`s, so they
    /// can be borrowed from a file at any alignment).
    pub values: Cow<'a, [u8]>,
}

impl UserRegs<'_> {
    /// Register number `reg` (perf's numbering for the architecture, e.g.
    /// `PERF_REG_X86_SP` = 7), when the mask holds it.
    pub fn get(&self, reg: u32) -> Option<u64> {
        let bit = 1u64.checked_shl(reg)?;
        if self.mask & bit == 0 {
            return None;
        }
        let index = (self.mask & (bit - 1)).count_ones() as usize;
        let bytes = self.values.get(8 * index..8 * index + 8)?;
        Some(u64::from_ne_bytes(bytes.try_into().ok()?))
    }

    pub fn into_owned(self) -> UserRegs<'static> {
        UserRegs {
            values: Cow::Owned(self.values.into_owned()),
            ..self
        }
    }
}

impl Sample<'_> {
    /// The same sample, owning its call chain.
    pub fn into_owned(self) -> Sample<'static> {
        Sample {
            callchain: Cow::Owned(self.callchain.into_owned()),
            user_regs: self.user_regs.map(UserRegs::into_owned),
            user_stack: Cow::Owned(self.user_stack.into_owned()),
            raw: Cow::Owned(self.raw.into_owned()),
            ..self
        }
    }

    /// Bytes this sample owns rather than borrows from the file (records of
    /// compressed files copy theirs): what a reorder window must count.
    pub fn owned_bytes(&self) -> usize {
        let chain = match &self.callchain {
            Cow::Owned(words) => words.len() * 8,
            Cow::Borrowed(_) => 0,
        };
        let regs = match self.user_regs.as_ref().map(|r| &r.values) {
            Some(Cow::Owned(bytes)) => bytes.len(),
            _ => 0,
        };
        let stack = match &self.user_stack {
            Cow::Owned(bytes) => bytes.len(),
            Cow::Borrowed(_) => 0,
        };
        chain + regs + stack
    }
}

/// `mmap(2)` protection bits, as MMAP2 records carry them.
pub const PROT_READ: u32 = 1;
pub const PROT_EXEC: u32 = 4;

/// Device and inode of a mapped file, as MMAP2 records and
/// `/proc/PID/maps` give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileInode {
    pub major: u32,
    pub minor: u32,
    pub ino: u64,
}

/// `PERF_RECORD_MMAP` or `PERF_RECORD_MMAP2`: executable mappings, and data
/// ones when the events ask for them (`mmap_data`).
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
    /// From MMAP2 without a build id; None when unknown (inode 0).
    pub inode: Option<FileInode>,
    pub prot: u32,
    pub flags: u32,
    pub sample_id: SampleId,
}

impl Mmap {
    /// Whether the mapping holds code (a data mapping names nothing a
    /// sample runs in).
    pub fn is_code(&self) -> bool {
        self.prot & PROT_EXEC != 0
    }
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

/// `PERF_RECORD_SWITCH` (per-task events) or `PERF_RECORD_SWITCH_CPU_WIDE`
/// (per-CPU events): a thread left or took a CPU. The thread is the
/// trailer's pid/tid (the one switching out, or in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Switch {
    /// Switching out (`PERF_RECORD_MISC_SWITCH_OUT`); else in.
    pub out: bool,
    /// Switched out while still runnable (`PERF_RECORD_MISC_SWITCH_OUT_PREEMPT`):
    /// waiting for a CPU, not blocked.
    pub preempted: bool,
    pub sample_id: SampleId,
}

/// `PERF_RECORD_CGROUP` (`attr.cgroup`): a cgroup's id and path, emitted by
/// the kernel when the cgroup is created and synthesized by the recorder
/// for those that existed at the start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupRecord {
    pub id: u64,
    /// From the hierarchy's root: `/`, `/system.slice/nginx.service`.
    pub path: String,
    pub sample_id: SampleId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// Context switches (`attr.context_switch`).
    Switch(Switch),
    Sample(Sample<'a>),
    Mmap(Mmap),
    Comm(Comm),
    Fork(TaskEvent),
    Exit(TaskEvent),
    Lost(Lost),
    LostSamples(Lost),
    Throttle(Throttle),
    Cgroup(CgroupRecord),
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
            Record::Switch(s) => Record::Switch(s),
            Record::Cgroup(c) => Record::Cgroup(c),
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
            Record::Switch(s) => s.sample_id.time,
            Record::Cgroup(c) => c.sample_id.time,
            Record::FinishedRound | Record::Other { .. } => None,
        }
    }
}
