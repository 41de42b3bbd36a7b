//! `perf_event_attr` as rprof's own plain struct: the kernel ABI and the
//! file format share this layout, but keeping our own type means the file
//! code never depends on the bindings' struct size.

use super::cursor::{ByteWriter, Cursor};
use super::{ATTR_SIZE_VER0, ATTR_SIZE_VER7};

/// `PERF_SAMPLE_*` bits.
pub mod sample {
    pub const IP: u64 = 1 << 0;
    pub const TID: u64 = 1 << 1;
    pub const TIME: u64 = 1 << 2;
    pub const ADDR: u64 = 1 << 3;
    pub const READ: u64 = 1 << 4;
    pub const CALLCHAIN: u64 = 1 << 5;
    pub const ID: u64 = 1 << 6;
    pub const CPU: u64 = 1 << 7;
    pub const PERIOD: u64 = 1 << 8;
    pub const STREAM_ID: u64 = 1 << 9;
    pub const RAW: u64 = 1 << 10;
    pub const BRANCH_STACK: u64 = 1 << 11;
    pub const REGS_USER: u64 = 1 << 12;
    pub const STACK_USER: u64 = 1 << 13;
    pub const WEIGHT: u64 = 1 << 14;
    pub const DATA_SRC: u64 = 1 << 15;
    pub const IDENTIFIER: u64 = 1 << 16;
    pub const TRANSACTION: u64 = 1 << 17;
    pub const REGS_INTR: u64 = 1 << 18;
    pub const PHYS_ADDR: u64 = 1 << 19;
    pub const AUX: u64 = 1 << 20;
    pub const CGROUP: u64 = 1 << 21;
    pub const DATA_PAGE_SIZE: u64 = 1 << 22;
    pub const CODE_PAGE_SIZE: u64 = 1 << 23;
    pub const WEIGHT_STRUCT: u64 = 1 << 24;
}

/// Bits of the attr's flag word (the C bitfield after `read_format`).
pub mod flag {
    pub const DISABLED: u64 = 1 << 0;
    pub const INHERIT: u64 = 1 << 1;
    pub const PINNED: u64 = 1 << 2;
    pub const EXCLUSIVE: u64 = 1 << 3;
    pub const EXCLUDE_USER: u64 = 1 << 4;
    pub const EXCLUDE_KERNEL: u64 = 1 << 5;
    pub const EXCLUDE_HV: u64 = 1 << 6;
    pub const EXCLUDE_IDLE: u64 = 1 << 7;
    pub const MMAP: u64 = 1 << 8;
    pub const COMM: u64 = 1 << 9;
    pub const FREQ: u64 = 1 << 10;
    pub const INHERIT_STAT: u64 = 1 << 11;
    pub const ENABLE_ON_EXEC: u64 = 1 << 12;
    pub const TASK: u64 = 1 << 13;
    pub const WATERMARK: u64 = 1 << 14;
    // bits 15-16: precise_ip
    pub const PRECISE_IP_SHIFT: u32 = 15;
    pub const MMAP_DATA: u64 = 1 << 17;
    pub const SAMPLE_ID_ALL: u64 = 1 << 18;
    pub const EXCLUDE_HOST: u64 = 1 << 19;
    pub const EXCLUDE_GUEST: u64 = 1 << 20;
    pub const EXCLUDE_CALLCHAIN_KERNEL: u64 = 1 << 21;
    pub const EXCLUDE_CALLCHAIN_USER: u64 = 1 << 22;
    pub const MMAP2: u64 = 1 << 23;
    pub const COMM_EXEC: u64 = 1 << 24;
    pub const USE_CLOCKID: u64 = 1 << 25;
    pub const CONTEXT_SWITCH: u64 = 1 << 26;
    pub const WRITE_BACKWARD: u64 = 1 << 27;
    pub const NAMESPACES: u64 = 1 << 28;
    pub const KSYMBOL: u64 = 1 << 29;
    pub const BPF_EVENT: u64 = 1 << 30;
    pub const AUX_OUTPUT: u64 = 1 << 31;
    pub const CGROUP: u64 = 1 << 32;
    pub const TEXT_POKE: u64 = 1 << 33;
    pub const BUILD_ID: u64 = 1 << 34;
    pub const INHERIT_THREAD: u64 = 1 << 35;
    pub const REMOVE_ON_EXEC: u64 = 1 << 36;
    pub const SIGTRAP: u64 = 1 << 37;
}

/// `PERF_TYPE_*`.
pub mod event_type {
    pub const HARDWARE: u32 = 0;
    pub const SOFTWARE: u32 = 1;
    pub const TRACEPOINT: u32 = 2;
    pub const HW_CACHE: u32 = 3;
    pub const RAW: u32 = 4;
    pub const BREAKPOINT: u32 = 5;
}

/// `PERF_COUNT_SW_*`.
pub mod software {
    pub const CPU_CLOCK: u64 = 0;
    pub const TASK_CLOCK: u64 = 1;
    pub const PAGE_FAULTS: u64 = 2;
    pub const CONTEXT_SWITCHES: u64 = 3;
    pub const CPU_MIGRATIONS: u64 = 4;
    pub const PAGE_FAULTS_MIN: u64 = 5;
    pub const PAGE_FAULTS_MAJ: u64 = 6;
    pub const ALIGNMENT_FAULTS: u64 = 7;
    pub const EMULATION_FAULTS: u64 = 8;
    pub const DUMMY: u64 = 9;
}

/// `PERF_COUNT_HW_*` (`enum perf_hw_id`).
pub mod hardware {
    pub const CPU_CYCLES: u64 = 0;
    pub const INSTRUCTIONS: u64 = 1;
    pub const CACHE_REFERENCES: u64 = 2;
    pub const CACHE_MISSES: u64 = 3;
    pub const BRANCH_INSTRUCTIONS: u64 = 4;
    pub const BRANCH_MISSES: u64 = 5;
    pub const BUS_CYCLES: u64 = 6;
    pub const REF_CPU_CYCLES: u64 = 9;
}

/// `perf_event_attr`, field for field (ABI size [`EventAttr::ABI_SIZE`]).
/// Unions are stored under one name: `sample_period_or_freq` holds
/// `sample_freq` when [`flag::FREQ`] is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventAttr {
    pub kind: u32,
    pub config: u64,
    pub sample_period_or_freq: u64,
    pub sample_type: u64,
    pub read_format: u64,
    pub flags: u64,
    pub wakeup_events_or_watermark: u32,
    pub bp_type: u32,
    pub config1: u64,
    pub config2: u64,
    pub branch_sample_type: u64,
    pub sample_regs_user: u64,
    pub sample_stack_user: u32,
    pub clockid: i32,
    pub sample_regs_intr: u64,
    pub aux_watermark: u32,
    pub sample_max_stack: u16,
    pub aux_sample_size: u32,
    pub sig_data: u64,
    pub config3: u64,
}

impl EventAttr {
    /// `PERF_ATTR_SIZE_VER8`: the layout up to and including `config3`.
    pub const ABI_SIZE: u32 = 136;

    pub fn has_flag(&self, bit: u64) -> bool {
        self.flags & bit != 0
    }

    pub fn is_freq(&self) -> bool {
        self.has_flag(flag::FREQ)
    }

    /// Encodes the attr as the kernel/file layout, `ABI_SIZE` bytes, native endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_sized(Self::ABI_SIZE)
    }

    /// The first `size` bytes of the layout (`size` clamped to
    /// `ATTR_SIZE_VER0..=ABI_SIZE`), with the `size` field saying so.
    /// Older readers (perf 6.1 knows 128 bytes) refuse attrs larger than
    /// their own, so files use the smallest size that holds every field.
    pub fn to_bytes_sized(&self, size: u32) -> Vec<u8> {
        let size = size.clamp(ATTR_SIZE_VER0, Self::ABI_SIZE);
        let mut w = ByteWriter::default();
        w.u32(self.kind)
            .u32(size)
            .u64(self.config)
            .u64(self.sample_period_or_freq)
            .u64(self.sample_type)
            .u64(self.read_format)
            .u64(self.flags)
            .u32(self.wakeup_events_or_watermark)
            .u32(self.bp_type)
            .u64(self.config1)
            .u64(self.config2)
            .u64(self.branch_sample_type)
            .u64(self.sample_regs_user)
            .u32(self.sample_stack_user)
            .i32(self.clockid)
            .u64(self.sample_regs_intr)
            .u32(self.aux_watermark)
            .u16(self.sample_max_stack)
            .u16(0) // __reserved_2
            .u32(self.aux_sample_size)
            .u32(0) // __reserved_3
            .u64(self.sig_data)
            .u64(self.config3);
        debug_assert_eq!(w.buf.len(), Self::ABI_SIZE as usize);
        w.buf.truncate(size as usize);
        w.buf
    }

    /// The size to store this attr with in a file: `PERF_ATTR_SIZE_VER7`
    /// unless a later field is in use.
    pub fn file_size(&self) -> u32 {
        if self.config3 != 0 {
            Self::ABI_SIZE
        } else {
            ATTR_SIZE_VER7
        }
    }

    /// Decodes an attr of any size (older files have shorter attrs; missing
    /// fields are zero). Fails only when `bytes` is shorter than its own
    /// declared size or shorter than `PERF_ATTR_SIZE_VER0` (64).
    pub fn from_bytes(bytes: &[u8]) -> Option<EventAttr> {
        let declared = u32::from_ne_bytes(bytes.get(4..8)?.try_into().ok()?);
        // A size of 0 means the original ABI (VER0).
        let size = usize::try_from(declared.max(ATTR_SIZE_VER0)).ok()?;
        if bytes.len() < size {
            return None;
        }
        // Copy into a full-size zeroed layout so absent fields read as zero
        // and fields newer than ours are ignored.
        let mut full = [0u8; Self::ABI_SIZE as usize];
        let n = size.min(full.len());
        full[..n].copy_from_slice(bytes.get(..n)?);
        Self::decode_full(&full)
    }

    fn decode_full(full: &[u8; Self::ABI_SIZE as usize]) -> Option<EventAttr> {
        let mut c = Cursor::new(full);
        let kind = c.u32()?;
        let _size = c.u32()?;
        let attr = EventAttr {
            kind,
            config: c.u64()?,
            sample_period_or_freq: c.u64()?,
            sample_type: c.u64()?,
            read_format: c.u64()?,
            flags: c.u64()?,
            wakeup_events_or_watermark: c.u32()?,
            bp_type: c.u32()?,
            config1: c.u64()?,
            config2: c.u64()?,
            branch_sample_type: c.u64()?,
            sample_regs_user: c.u64()?,
            sample_stack_user: c.u32()?,
            clockid: c.i32()?,
            sample_regs_intr: c.u64()?,
            aux_watermark: c.u32()?,
            sample_max_stack: {
                let v = c.u16()?;
                c.skip(2)?; // __reserved_2
                v
            },
            aux_sample_size: {
                let v = c.u32()?;
                c.skip(4)?; // __reserved_3
                v
            },
            sig_data: c.u64()?,
            config3: c.u64()?,
        };
        Some(attr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_attr() -> EventAttr {
        EventAttr {
            kind: event_type::SOFTWARE,
            config: software::CPU_CLOCK,
            sample_period_or_freq: 99,
            sample_type: sample::IP | sample::TID | sample::TIME | sample::CALLCHAIN,
            read_format: 0x14,
            flags: flag::DISABLED | flag::FREQ | flag::SAMPLE_ID_ALL | flag::MMAP2,
            wakeup_events_or_watermark: 7,
            bp_type: 8,
            config1: 9,
            config2: 10,
            branch_sample_type: 11,
            sample_regs_user: 0xff0fff,
            sample_stack_user: 8192,
            clockid: 1,
            sample_regs_intr: 13,
            aux_watermark: 14,
            sample_max_stack: 127,
            aux_sample_size: 15,
            sig_data: 16,
            config3: 17,
        }
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn round_trips_every_field() {
        let attr = sample_attr();
        let bytes = attr.to_bytes();
        assert_eq!(bytes.len(), EventAttr::ABI_SIZE as usize);
        assert_eq!(EventAttr::from_bytes(&bytes), Some(attr));
    }

    #[test]
    fn fields_sit_at_kernel_offsets() {
        // Offsets from linux/perf_event.h (checked against the bindgen layout).
        let attr = sample_attr();
        let b = attr.to_bytes();
        assert_eq!(u32_at(&b, 0), event_type::SOFTWARE);
        assert_eq!(u32_at(&b, 4), EventAttr::ABI_SIZE);
        assert_eq!(u64_at(&b, 8), software::CPU_CLOCK);
        assert_eq!(u64_at(&b, 16), 99);
        assert_eq!(u64_at(&b, 24), attr.sample_type);
        assert_eq!(u64_at(&b, 32), 0x14);
        assert_eq!(u64_at(&b, 40), attr.flags);
        assert_eq!(u32_at(&b, 48), 7);
        assert_eq!(u32_at(&b, 52), 8);
        assert_eq!(u64_at(&b, 56), 9);
        assert_eq!(u64_at(&b, 64), 10);
        assert_eq!(u64_at(&b, 72), 11);
        assert_eq!(u64_at(&b, 80), 0xff0fff);
        assert_eq!(u32_at(&b, 88), 8192);
        assert_eq!(u32_at(&b, 92), 1);
        assert_eq!(u64_at(&b, 96), 13);
        assert_eq!(u32_at(&b, 104), 14);
        assert_eq!(u16::from_ne_bytes([b[108], b[109]]), 127);
        assert_eq!(u16::from_ne_bytes([b[110], b[111]]), 0);
        assert_eq!(u32_at(&b, 112), 15);
        assert_eq!(u64_at(&b, 120), 16);
        assert_eq!(u64_at(&b, 128), 17);
    }

    #[test]
    fn layout_matches_bindings_size() {
        // The bindings carry config4 too (VER9, 144 bytes); ours stops before it.
        assert_eq!(
            std::mem::size_of::<perf_event_open_sys::bindings::perf_event_attr>(),
            EventAttr::ABI_SIZE as usize + 8
        );
    }

    #[test]
    fn short_attrs_zero_fill_missing_fields() {
        let attr = sample_attr();
        let b = attr.to_bytes_sized(ATTR_SIZE_VER0);
        assert_eq!(b.len(), 64);
        assert_eq!(u32_at(&b, 4), 64);
        let back = EventAttr::from_bytes(&b).unwrap();
        assert_eq!(back.config1, 9);
        assert_eq!(back.config2, 0);
        assert_eq!(back.sample_regs_user, 0);
        assert_eq!(back.config3, 0);
        assert_eq!(back.sample_type, attr.sample_type);
    }

    #[test]
    fn declared_size_is_honoured_even_in_a_longer_slice() {
        let attr = sample_attr();
        let mut b = attr.to_bytes_sized(ATTR_SIZE_VER7);
        b.extend_from_slice(&[0xaa; 16]); // e.g. the ids section after it
        let back = EventAttr::from_bytes(&b).unwrap();
        assert_eq!(back.sig_data, 16);
        assert_eq!(back.config3, 0);
    }

    #[test]
    fn size_zero_means_ver0() {
        let mut b = sample_attr().to_bytes();
        b[4..8].copy_from_slice(&0u32.to_ne_bytes());
        let back = EventAttr::from_bytes(&b[..64]).unwrap();
        assert_eq!(back.config1, 9);
        assert_eq!(back.config2, 0);
    }

    #[test]
    fn too_short_or_lying_sizes_fail() {
        let b = sample_attr().to_bytes();
        assert_eq!(EventAttr::from_bytes(&b[..63]), None);
        // Declares 136 bytes but only 100 are there.
        assert_eq!(EventAttr::from_bytes(&b[..100]), None);
        assert_eq!(EventAttr::from_bytes(&[]), None);
    }

    #[test]
    fn larger_newer_attrs_are_accepted() {
        let mut b = sample_attr().to_bytes();
        b.extend_from_slice(&[1; 8]); // config4
        b[4..8].copy_from_slice(&144u32.to_ne_bytes());
        assert_eq!(EventAttr::from_bytes(&b), Some(sample_attr()));
    }

    #[test]
    fn file_size_is_ver7_unless_config3_is_used() {
        let mut attr = sample_attr();
        assert_eq!(attr.file_size(), EventAttr::ABI_SIZE);
        attr.config3 = 0;
        assert_eq!(attr.file_size(), ATTR_SIZE_VER7);
    }
}
