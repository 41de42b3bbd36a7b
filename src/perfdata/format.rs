//! perf.data layout constants (tools/perf/util/header.h, include/uapi/linux/perf_event.h).

pub const MAGIC: &[u8; 8] = b"PERFILE2";
/// `MAGIC` as written by a host of the other byte order.
pub const MAGIC_SWAPPED: &[u8; 8] = b"2ELIFREP";

/// `struct perf_file_header`: magic, size, attr_size, three sections, 256-bit feature bitmap.
pub const FILE_HEADER_SIZE: u64 = 104;
/// Header size of files from before feature bits existed (no bitmap).
pub const FILE_HEADER_SIZE_NO_FEATURES: u64 = 72;
/// `struct perf_pipe_file_header`: magic and size only.
pub const PIPE_HEADER_SIZE: u64 = 16;
/// Byte offsets inside the file header.
pub const HEADER_DATA_OFFSET_AT: u64 = 40;
pub const HEADER_DATA_SIZE_AT: u64 = 48;
pub const HEADER_FEATURES_AT: usize = 72;
/// The offset field of the header's `event_types` section, which perf has
/// ignored since 2013 (it writes zeros): rprof keeps its [`rprof_state`] there.
pub const HEADER_STATE_AT: u64 = 56;

/// What rprof's writer leaves in [`HEADER_STATE_AT`], so a report can tell a
/// finished recording from one that was cut short, and why. Rewritten in
/// place (no extra space), so it can be set on a full disk too.
pub mod rprof_state {
    /// Finished (the final header), or a file rprof did not write.
    pub const FINISHED: u64 = 0;
    /// Still recording: a file left in this state was killed.
    pub const RECORDING: u64 = u64::from_le_bytes(*b"RPROFREC");
    /// Every record is on disk; rprof was stopped while it embedded symbols.
    pub const DATA_COMPLETE: u64 = u64::from_le_bytes(*b"RPROFDAT");
    /// A write failed for lack of space: the data ends early (and the
    /// feature sections are missing).
    pub const DISK_FULL: u64 = u64::from_le_bytes(*b"RPROFENS");
}
/// Pipe mode (`-o -`): records stand in for the file's sections.
pub mod pipe {
    /// The most bytes one record may take: its size is a u16 (kept 8-aligned).
    pub const MAX_RECORD_SIZE: usize = 65528;
    /// First u64 of a section chunk, rprof's carrier for feature sections
    /// Linux perf must not see as HEADER_FEATURE records (perf 6.1 `report`
    /// stops at a feature bit it does not know: "failed: wrong feature ID").
    /// A chunk is a `HEADER_EVENT_TYPE` (65) record, a type perf has skipped
    /// since 2013: magic, u64 feature bit, u64 section size, u64 offset of
    /// this chunk in the section, then the chunk's bytes (zero-padded to 8).
    pub const SECTION_CHUNK_MAGIC: u64 = u64::from_le_bytes(*b"RPROFSEC");
    /// Bytes of a section chunk before its data: header, magic, bit, size, offset.
    pub const SECTION_CHUNK_HEADER: usize = 8 + 4 * 8;
}
/// `struct perf_file_section`: u64 offset, u64 size.
pub const FILE_SECTION_SIZE: u64 = 16;

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
    /// u32 version, type, level, ratio, mmap_len (`perf record -z`).
    pub const COMPRESSED: u32 = 27;
    /// u32 version, u32 clockid, u64 wall-clock ns, u64 clockid ns: the
    /// sample clock's reading at a known wall-clock time (`perf record -k`).
    pub const CLOCK_DATA: u32 = 29;
    /// rprof's embedded symbol table. Far above perf's last feature (~32),
    /// below `HEADER_FEAT_BITS` (256): perf skips bits it does not know.
    pub const RPROF_SYMBOLS: u32 = 200;
    /// Present when `rprof record` unwound the DWARF-mode user stacks
    /// itself: the file holds call chains, not stack copies
    /// ([`super::UnwoundStacks`]).
    pub const RPROF_UNWOUND: u32 = 201;
    /// The tracefs `format` files of the recorded tracepoints, so the
    /// report can name the fields of their raw data (perf keeps these in
    /// HEADER_TRACING_DATA, a larger blob rprof does not write):
    /// u32 count, then each file as a perf string ([`encode_trace_formats`]).
    pub const RPROF_TRACE_FORMATS: u32 = 202;
    pub const FEAT_BITS: u32 = 256;
}

/// The RPROF_UNWOUND section: what `rprof record --call-graph dwarf` did
/// when it unwound the copied stacks and kept only the call chains.
/// Six u64s: version (1), stacks unwound, stacks truncated, bytes of stack
/// copied per sample, register and stack bytes dropped, bytes kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnwoundStacks {
    pub unwound: u64,
    pub truncated: u64,
    pub stack_bytes: u64,
    pub dropped_bytes: u64,
    pub kept_bytes: u64,
}

impl UnwoundStacks {
    const VERSION: u64 = 1;

    pub fn to_bytes(&self) -> Vec<u8> {
        [
            Self::VERSION,
            self.unwound,
            self.truncated,
            self.stack_bytes,
            self.dropped_bytes,
            self.kept_bytes,
        ]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect()
    }

    /// `None` for a section of another version or size.
    pub fn from_bytes(bytes: &[u8]) -> Option<UnwoundStacks> {
        let mut values = bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()));
        if bytes.len() != 48 || values.next()? != Self::VERSION {
            return None;
        }
        let mut next = || values.next().unwrap_or(0);
        Some(UnwoundStacks {
            unwound: next(),
            truncated: next(),
            stack_bytes: next(),
            dropped_bytes: next(),
            kept_bytes: next(),
        })
    }
}

/// The RPROF_TRACE_FORMATS section: u32 count, then one perf string
/// (u32 padded length, NUL-padded text) per tracefs format file.
pub fn encode_trace_formats(formats: &[String]) -> Vec<u8> {
    let mut w = crate::abi::cursor::ByteWriter::default();
    w.u32(u32::try_from(formats.len()).unwrap_or(u32::MAX));
    for format in formats {
        w.perf_string(format);
    }
    w.buf
}

/// The format files of an RPROF_TRACE_FORMATS section; a damaged section
/// gives the files read before the damage.
pub fn decode_trace_formats(bytes: &[u8]) -> Vec<String> {
    let mut c = crate::abi::cursor::Cursor::new(bytes);
    let count = c.u32().unwrap_or(0);
    // Each entry takes at least its 4-byte length: a count beyond that is damage.
    let plausible = (c.remaining() / 4).min(count as usize);
    let mut formats = Vec::with_capacity(plausible);
    for _ in 0..plausible {
        match c.perf_string() {
            Some(text) => formats.push(text),
            None => break,
        }
    }
    formats
}
