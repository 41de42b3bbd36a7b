//! perf.data layout constants (tools/perf/util/header.h, include/uapi/linux/perf_event.h).

pub const MAGIC: &[u8; 8] = b"PERFILE2";

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
    pub const HEADER_ATTR: u32 = 64;
    pub const FINISHED_ROUND: u32 = 68;
    pub const COMPRESSED: u32 = 81;
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
    /// On MMAP2: the record carries a build id instead of dev/inode.
    pub const MMAP_BUILD_ID: u16 = 1 << 14;
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

/// Feature bits (`HEADER_*`).
pub mod feature {
    pub const TRACING_DATA: u32 = 1;
    pub const BUILD_ID: u32 = 2;
    pub const HOSTNAME: u32 = 3;
    pub const OSRELEASE: u32 = 4;
    pub const VERSION: u32 = 5;
    pub const ARCH: u32 = 6;
    pub const NRCPUS: u32 = 7;
    pub const CPUDESC: u32 = 8;
    pub const CPUID: u32 = 9;
    pub const TOTAL_MEM: u32 = 10;
    pub const CMDLINE: u32 = 11;
    pub const EVENT_DESC: u32 = 12;
    /// rprof's embedded symbol table. Far above perf's last feature (~32),
    /// below `HEADER_FEAT_BITS` (256): perf skips bits it does not know.
    pub const RPROF_SYMBOLS: u32 = 200;
    pub const FEAT_BITS: u32 = 256;
}
