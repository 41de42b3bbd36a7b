//! The kernel's perf_event ABI, as plain Rust: `perf_event_attr` and its
//! bits, record types, `misc` bits and call-chain markers. Both the
//! syscall side (`sys`) and the file side (`perfdata`) build on it; it
//! depends on neither.

pub mod attr;
pub(crate) mod cursor;

pub use attr::{event_type, flag, hardware, sample, software, EventAttr};

/// `struct perf_event_header`: u32 type, u16 misc, u16 size.
pub const EVENT_HEADER_SIZE: usize = 8;

/// perf pads the strings it writes (file names, feature strings) to this (`NAME_ALIGN`).
pub const NAME_ALIGN: usize = 64;

/// `PERF_ATTR_SIZE_VER0`: the smallest attr any file holds.
pub const ATTR_SIZE_VER0: u32 = 64;
/// `PERF_ATTR_SIZE_VER7` (up to `sig_data`): the largest attr perf 6.1 reads.
pub const ATTR_SIZE_VER7: u32 = 128;

/// `PERF_FORMAT_*` bits of `read_format`.
pub mod read_format {
    pub const TOTAL_TIME_ENABLED: u64 = 1 << 0;
    pub const TOTAL_TIME_RUNNING: u64 = 1 << 1;
    pub const ID: u64 = 1 << 2;
    pub const GROUP: u64 = 1 << 3;
    pub const LOST: u64 = 1 << 4;
}

/// `PERF_SAMPLE_BRANCH_HW_INDEX`: branch stacks carry a u64 hw_idx.
pub const BRANCH_HW_INDEX: u64 = 1 << 17;

/// `PERF_RECORD_*` (kernel) and perf's user record types (64 and up).
pub mod record_type {
    pub const MMAP: u32 = 1;
    pub const LOST: u32 = 2;
    pub const COMM: u32 = 3;
    pub const EXIT: u32 = 4;
    pub const THROTTLE: u32 = 5;
    pub const UNTHROTTLE: u32 = 6;
    pub const FORK: u32 = 7;
    pub const READ: u32 = 8;
    pub const SAMPLE: u32 = 9;
    pub const MMAP2: u32 = 10;
    pub const AUX: u32 = 11;
    pub const ITRACE_START: u32 = 12;
    pub const LOST_SAMPLES: u32 = 13;
    pub const SWITCH: u32 = 14;
    pub const SWITCH_CPU_WIDE: u32 = 15;
    pub const NAMESPACES: u32 = 16;
    pub const KSYMBOL: u32 = 17;
    pub const BPF_EVENT: u32 = 18;
    pub const CGROUP: u32 = 19;
    pub const TEXT_POKE: u32 = 20;
    /// Pipe mode: an attr followed by its sample ids.
    pub const HEADER_ATTR: u32 = 64;
    pub const HEADER_EVENT_TYPE: u32 = 65;
    /// Pipe mode: followed by `size` bytes of tracing data that the header's size omits.
    pub const HEADER_TRACING_DATA: u32 = 66;
    /// Pipe mode: one entry of the HEADER_BUILD_ID feature section.
    pub const HEADER_BUILD_ID: u32 = 67;
    pub const FINISHED_ROUND: u32 = 68;
    pub const ID_INDEX: u32 = 69;
    pub const AUXTRACE_INFO: u32 = 70;
    /// Followed by `size` bytes of AUX data that the header's size omits.
    pub const AUXTRACE: u32 = 71;
    pub const THREAD_MAP: u32 = 73;
    pub const CPU_MAP: u32 = 74;
    pub const STAT_CONFIG: u32 = 75;
    pub const STAT: u32 = 76;
    pub const STAT_ROUND: u32 = 77;
    pub const EVENT_UPDATE: u32 = 78;
    pub const TIME_CONV: u32 = 79;
    /// Pipe mode: u64 feature bit, then that feature section's bytes.
    pub const HEADER_FEATURE: u32 = 80;
    /// zstd-compressed records (`perf record -z`), one stream across records.
    pub const COMPRESSED: u32 = 81;
    /// perf 6.15+: `u64 data_size`, then the zstd bytes padded to 8.
    pub const COMPRESSED2: u32 = 83;
    pub const FINISHED_INIT: u32 = 82;
}

/// `PERF_RECORD_MISC_*`.
pub mod misc {
    pub const CPUMODE_MASK: u16 = 7;
    pub const CPUMODE_UNKNOWN: u16 = 0;
    pub const KERNEL: u16 = 1;
    pub const USER: u16 = 2;
    pub const HYPERVISOR: u16 = 3;
    pub const GUEST_KERNEL: u16 = 4;
    pub const GUEST_USER: u16 = 5;
    /// On COMM: the comm changed because of exec.
    pub const COMM_EXEC: u16 = 1 << 13;
    /// On MMAP/MMAP2 (same bit as COMM_EXEC): a data, not an executable, mapping.
    pub const MMAP_DATA: u16 = 1 << 13;
    /// On MMAP2: the record carries a build id instead of dev/inode.
    pub const MMAP_BUILD_ID: u16 = 1 << 14;
    /// On SWITCH/SWITCH_CPU_WIDE: the thread switched out (else in).
    pub const SWITCH_OUT: u16 = 1 << 13;
    /// On a switch-out: the thread was still runnable (preempted).
    pub const SWITCH_OUT_PREEMPT: u16 = 1 << 14;
    /// On HEADER_BUILD_ID entries: the build id's length is in its `size` byte.
    pub const BUILD_ID_SIZE: u16 = 1 << 15;
}

/// `PERF_CONTEXT_*` markers inside call chains.
pub mod context {
    pub const HV: u64 = (-32i64) as u64;
    pub const KERNEL: u64 = (-128i64) as u64;
    pub const USER: u64 = (-512i64) as u64;
    pub const GUEST: u64 = (-2048i64) as u64;
    pub const GUEST_KERNEL: u64 = (-2176i64) as u64;
    pub const GUEST_USER: u64 = (-2560i64) as u64;
    /// Anything at or above this is a marker, not an address.
    pub const MAX: u64 = (-4095i64) as u64;
}
