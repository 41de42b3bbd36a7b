//! Record bodies -> [`Record`]s, given the file's attrs. Framing (headers,
//! sizes, truncation) is the reader's job; this only interprets one body.

use std::collections::HashMap;

use std::borrow::Cow;

use super::records::{
    CgroupRecord, Comm, CpuMode, FileInode, Lost, Mmap, Record, Sample, SampleId, Switch,
    TaskEvent, Throttle, UserRegs, PROT_EXEC, PROT_READ,
};
use crate::abi::cursor::{c_string, Cursor};
use crate::abi::{flag, sample, EventAttr};
use crate::abi::{misc, read_format, record_type, BRANCH_HW_INDEX};

/// The `sample_id_all` trailer fields, in kernel order.
const TRAILER_FIELDS: [u64; 6] = [
    sample::TID,
    sample::TIME,
    sample::ID,
    sample::STREAM_ID,
    sample::CPU,
    sample::IDENTIFIER,
];

/// How a record names the attr it belongs to (perf's `id_pos`/`is_pos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdLookup {
    /// One attr, or no way to tell: everything is attr 0.
    FirstAttr,
    /// Every attr samples IDENTIFIER: first u64 of a sample, last of a trailer.
    Identifier,
    /// Identical sample types with ID: the id sits at the same place in all.
    SameLayoutId,
}

/// Decodes record bodies for one file's set of events.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    attrs: Vec<EventAttr>,
    ids: HashMap<u64, usize>,
    lookup: IdLookup,
    /// Stands in for a missing attr (a file with none decodes nothing).
    fallback: EventAttr,
}

impl Decoder {
    /// `ids[i]` are the sample ids of `attrs[i]`.
    pub fn new(attrs: Vec<EventAttr>, ids: &[Vec<u64>]) -> Decoder {
        let ids = ids
            .iter()
            .enumerate()
            .flat_map(|(index, ids)| ids.iter().map(move |&id| (id, index)))
            .collect();
        let lookup = match attrs.first() {
            Some(first) if attrs.len() > 1 => {
                if attrs
                    .iter()
                    .all(|a| a.sample_type & sample::IDENTIFIER != 0)
                {
                    IdLookup::Identifier
                } else if first.sample_type & sample::ID != 0
                    && attrs.iter().all(|a| a.sample_type == first.sample_type)
                {
                    IdLookup::SameLayoutId
                } else {
                    IdLookup::FirstAttr
                }
            }
            _ => IdLookup::FirstAttr,
        };
        Decoder {
            attrs,
            ids,
            lookup,
            fallback: EventAttr::default(),
        }
    }

    pub fn attrs(&self) -> &[EventAttr] {
        &self.attrs
    }

    /// Decodes one record body; `None` when the body is too short for what
    /// its attr says it holds.
    pub fn decode<'b>(&self, kind: u32, misc: u16, body: &'b [u8]) -> Option<Record<'b>> {
        if kind == record_type::SAMPLE {
            let index = self.sample_attr_index(body);
            return decode_sample(misc, body, self.attr(index), index).map(Record::Sample);
        }
        if !is_kernel_record_with_trailer(kind) {
            return Some(match kind {
                record_type::FINISHED_ROUND => Record::FinishedRound,
                _ => Record::Other { kind },
            });
        }
        let attr = self.attr(self.trailer_attr_index(body));
        let (payload, sample_id) = split_trailer(body, attr)?;
        decode_non_sample(kind, misc, payload, sample_id)
    }

    fn attr(&self, index: usize) -> &EventAttr {
        self.attrs.get(index).unwrap_or(&self.fallback)
    }

    fn index_of(&self, id: Option<u64>) -> usize {
        id.and_then(|id| self.ids.get(&id).copied()).unwrap_or(0)
    }

    fn sample_attr_index(&self, body: &[u8]) -> usize {
        let first = self.attr(0).sample_type;
        let offset = match self.lookup {
            IdLookup::FirstAttr => return 0,
            IdLookup::Identifier => 0,
            IdLookup::SameLayoutId => {
                let before_id = sample::IP | sample::TID | sample::TIME | sample::ADDR;
                8 * (first & before_id).count_ones() as usize
            }
        };
        self.index_of(Cursor::new(body.get(offset..).unwrap_or_default()).u64())
    }

    fn trailer_attr_index(&self, body: &[u8]) -> usize {
        let first = self.attr(0);
        if !first.has_flag(flag::SAMPLE_ID_ALL) {
            return 0;
        }
        let from_end = match self.lookup {
            IdLookup::FirstAttr => return 0,
            IdLookup::Identifier => 8,
            IdLookup::SameLayoutId => {
                let after_id = sample::STREAM_ID | sample::CPU;
                8 * (1 + (first.sample_type & after_id).count_ones() as usize)
            }
        };
        let at = body.len().checked_sub(from_end);
        self.index_of(at.and_then(|at| Cursor::new(body.get(at..)?).u64()))
    }
}

/// Kernel record types that carry a `sample_id_all` trailer. perf's own
/// records (64 and up) never do.
fn is_kernel_record_with_trailer(kind: u32) -> bool {
    kind < record_type::HEADER_ATTR && kind != record_type::SAMPLE
}

fn cpumode(misc: u16) -> CpuMode {
    match misc & misc::CPUMODE_MASK {
        misc::KERNEL => CpuMode::Kernel,
        misc::USER => CpuMode::User,
        misc::HYPERVISOR => CpuMode::Hypervisor,
        misc::GUEST_KERNEL => CpuMode::GuestKernel,
        misc::GUEST_USER => CpuMode::GuestUser,
        _ => CpuMode::Unknown,
    }
}

/// Splits off the `sample_id_all` trailer (when the attr asks for one).
fn split_trailer<'a>(body: &'a [u8], attr: &EventAttr) -> Option<(&'a [u8], SampleId)> {
    if !attr.has_flag(flag::SAMPLE_ID_ALL) {
        return Some((body, SampleId::default()));
    }
    let st = attr.sample_type;
    let fields = TRAILER_FIELDS.iter().filter(|&&f| st & f != 0).count();
    let at = body.len().checked_sub(8 * fields)?;
    let (payload, trailer) = body.split_at(at);
    let mut c = Cursor::new(trailer);
    let mut id = SampleId::default();
    if st & sample::TID != 0 {
        id.pid = Some(c.u32()?);
        id.tid = Some(c.u32()?);
    }
    if st & sample::TIME != 0 {
        id.time = Some(c.u64()?);
    }
    if st & sample::ID != 0 {
        id.id = Some(c.u64()?);
    }
    if st & sample::STREAM_ID != 0 {
        c.skip(8)?;
    }
    if st & sample::CPU != 0 {
        id.cpu = Some(c.u32()?);
        c.skip(4)?;
    }
    if st & sample::IDENTIFIER != 0 {
        id.id = Some(c.u64()?);
    }
    Some((payload, id))
}

/// A `PERF_RECORD_SAMPLE` body, fields in the kernel's output order.
fn decode_sample<'b>(
    misc: u16,
    body: &'b [u8],
    attr: &EventAttr,
    attr_index: usize,
) -> Option<Sample<'b>> {
    let st = attr.sample_type;
    let has = |bit: u64| st & bit != 0;
    let mut c = Cursor::new(body);
    let mut s = Sample {
        attr_index,
        cpumode: cpumode(misc),
        period: default_period(attr),
        ..Sample::default()
    };
    if has(sample::IDENTIFIER) {
        s.id = Some(c.u64()?);
    }
    if has(sample::IP) {
        s.ip = c.u64()?;
    }
    if has(sample::TID) {
        s.pid = c.u32()?;
        s.tid = c.u32()?;
    }
    if has(sample::TIME) {
        s.time = c.u64()?;
    }
    if has(sample::ADDR) {
        c.skip(8)?;
    }
    if has(sample::ID) {
        s.id = Some(c.u64()?);
    }
    if has(sample::STREAM_ID) {
        c.skip(8)?;
    }
    if has(sample::CPU) {
        s.cpu = c.u32()?;
        c.skip(4)?; // reserved
    }
    if has(sample::PERIOD) {
        s.period = c.u64()?;
    }
    if has(sample::READ) {
        skip_read_values(&mut c, attr.read_format)?;
    }
    if has(sample::CALLCHAIN) {
        let nr = c.u64()?;
        s.callchain = c.u64_slice(nr)?;
    }
    // RAW is borrowed; BRANCH_STACK is not kept, but walking it checks the
    // record is consistent; the user registers and stack are borrowed.
    if has(sample::RAW) {
        // The size includes the kernel's padding to a u64 boundary.
        let size = c.u32()?;
        s.raw = Cow::Borrowed(c.bytes(usize::try_from(size).ok()?)?);
    }
    skip_branches(&mut c, attr)?;
    user_regs_and_stack(&mut c, attr, &mut s)?;
    if has(sample::CGROUP) {
        s.cgroup = Some(cgroup_id(&mut c, attr)?);
    }
    Some(s)
}

/// The fields between STACK_USER and CGROUP, skipped, then the cgroup id.
/// (AUX, though bit 20, is written last, after the page sizes.)
fn cgroup_id(c: &mut Cursor<'_>, attr: &EventAttr) -> Option<u64> {
    let has = |bit: u64| attr.sample_type & bit != 0;
    let fixed = [
        sample::WEIGHT | sample::WEIGHT_STRUCT, // one u64 either way
        sample::DATA_SRC,
        sample::TRANSACTION,
    ];
    c.skip(8 * fixed.iter().filter(|&&bits| has(bits)).count())?;
    if has(sample::REGS_INTR) {
        let abi = c.u64()?;
        if abi != 0 {
            c.skip(8 * attr.sample_regs_intr.count_ones() as usize)?;
        }
    }
    if has(sample::PHYS_ADDR) {
        c.skip(8)?;
    }
    c.u64()
}

/// perf's rule: without PERF_SAMPLE_PERIOD a sample weighs the attr's fixed
/// period; frequency-mode attrs have no fixed period, so 1.
fn default_period(attr: &EventAttr) -> u64 {
    if attr.is_freq() || attr.sample_period_or_freq == 0 {
        1
    } else {
        attr.sample_period_or_freq
    }
}

/// `struct read_format` as laid out for the attr's `read_format`.
fn skip_read_values(c: &mut Cursor<'_>, format: u64) -> Option<()> {
    let has = |bit: u64| format & bit != 0;
    let times = usize::from(has(read_format::TOTAL_TIME_ENABLED))
        + usize::from(has(read_format::TOTAL_TIME_RUNNING));
    let per_value = 1 + usize::from(has(read_format::ID)) + usize::from(has(read_format::LOST));
    if has(read_format::GROUP) {
        let nr = c.u64()?;
        c.skip(8 * times)?;
        c.skip_n(nr, 8 * per_value)
    } else {
        c.skip(8 * (per_value + times))
    }
}

/// BRANCH_STACK, skipped.
fn skip_branches(c: &mut Cursor<'_>, attr: &EventAttr) -> Option<()> {
    let has = |bit: u64| attr.sample_type & bit != 0;
    if has(sample::BRANCH_STACK) {
        let nr = c.u64()?;
        if attr.branch_sample_type & BRANCH_HW_INDEX != 0 {
            c.skip(8)?;
        }
        c.skip_n(nr, 24)?; // from, to, flags
    }
    Some(())
}

/// REGS_USER and STACK_USER, borrowed from the body; later fields are
/// fixed-size or not needed, and trailing bytes are ignored. Every length is
/// checked against the bytes the record really has.
fn user_regs_and_stack<'b>(c: &mut Cursor<'b>, attr: &EventAttr, s: &mut Sample<'b>) -> Option<()> {
    let has = |bit: u64| attr.sample_type & bit != 0;
    if has(sample::REGS_USER) {
        let abi = c.u64()?;
        if abi != 0 {
            let mask = attr.sample_regs_user;
            let values = c.bytes(8 * mask.count_ones() as usize)?;
            s.user_regs = Some(UserRegs {
                abi,
                mask,
                values: Cow::Borrowed(values),
            });
        }
    }
    if has(sample::STACK_USER) {
        let size = c.u64()?;
        if size != 0 {
            let data = c.bytes_u64(size)?;
            // What the kernel could really copy (it stops at a fault).
            let dyn_size = c.u64()?;
            let used = usize::try_from(dyn_size).map_or(data.len(), |d| d.min(data.len()));
            s.user_stack = Cow::Borrowed(&data[..used]);
        }
    }
    Some(())
}

fn decode_non_sample(
    kind: u32,
    misc: u16,
    payload: &[u8],
    sample_id: SampleId,
) -> Option<Record<'static>> {
    let mut c = Cursor::new(payload);
    let record = match kind {
        record_type::MMAP => Record::Mmap(decode_mmap(&mut c, misc, false, sample_id)?),
        record_type::MMAP2 => Record::Mmap(decode_mmap(&mut c, misc, true, sample_id)?),
        record_type::COMM => Record::Comm(Comm {
            pid: c.u32()?,
            tid: c.u32()?,
            comm: c_string(c.bytes(c.remaining())?),
            exec: misc & misc::COMM_EXEC != 0,
            sample_id,
        }),
        record_type::FORK => Record::Fork(decode_task(&mut c, sample_id)?),
        record_type::EXIT => Record::Exit(decode_task(&mut c, sample_id)?),
        record_type::LOST => Record::Lost(Lost {
            id: c.u64()?,
            lost: c.u64()?,
            sample_id,
        }),
        record_type::LOST_SAMPLES => Record::LostSamples(Lost {
            id: sample_id.id.unwrap_or(0),
            lost: c.u64()?,
            sample_id,
        }),
        record_type::THROTTLE | record_type::UNTHROTTLE => Record::Throttle(Throttle {
            time: c.u64()?,
            id: c.u64()?,
            unthrottle: kind == record_type::UNTHROTTLE,
            sample_id,
        }),
        // SWITCH has no payload; SWITCH_CPU_WIDE adds the other thread's
        // pid/tid, which the trailer's thread makes unnecessary here.
        record_type::SWITCH | record_type::SWITCH_CPU_WIDE => Record::Switch(Switch {
            out: misc & misc::SWITCH_OUT != 0,
            preempted: misc & misc::SWITCH_OUT_PREEMPT != 0,
            sample_id,
        }),
        record_type::CGROUP => Record::Cgroup(CgroupRecord {
            id: c.u64()?,
            path: c_string(c.bytes(c.remaining())?),
            sample_id,
        }),
        _ => Record::Other { kind },
    };
    Some(record)
}

fn decode_task(c: &mut Cursor<'_>, sample_id: SampleId) -> Option<TaskEvent> {
    Some(TaskEvent {
        pid: c.u32()?,
        ppid: c.u32()?,
        tid: c.u32()?,
        ptid: c.u32()?,
        time: c.u64()?,
        sample_id,
    })
}

fn decode_mmap(c: &mut Cursor<'_>, misc: u16, v2: bool, sample_id: SampleId) -> Option<Mmap> {
    let mut m = Mmap {
        cpumode: cpumode(misc),
        pid: c.u32()?,
        tid: c.u32()?,
        start: c.u64()?,
        len: c.u64()?,
        pgoff: c.u64()?,
        sample_id,
        ..Mmap::default()
    };
    if v2 {
        // Either `size, 3 reserved bytes, build id[20]` or `maj, min, ino,
        // ino_generation`. The kernel (seen on 6.18) also sets the build-id
        // flag on records of events that never asked for build ids, over
        // device/inode bytes, once another event asked. The kernel and rprof
        // write a build id as 1 to 20 bytes, zero reserved bytes and zeros
        // after it; anything else is device/inode (docs/file-format.md,
        // "Build ids").
        let size = usize::from(c.u8()?);
        let rest: [u8; 23] = c.array()?; // reserved[3], build id[20]
        let is_build_id = misc & misc::MMAP_BUILD_ID != 0
            && (1..=20).contains(&size)
            && rest[..3].iter().all(|&b| b == 0)
            && rest[3 + size..].iter().all(|&b| b == 0);
        if is_build_id {
            m.build_id = Some(rest[3..3 + size].to_vec());
        } else {
            let mut raw = [0u8; 24];
            raw[0] = size as u8;
            raw[1..].copy_from_slice(&rest);
            let u32_at =
                |at: usize| u32::from_ne_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
            let mut ino = [0u8; 8];
            ino.copy_from_slice(&raw[8..16]);
            let ino = u64::from_ne_bytes(ino);
            m.inode = (ino != 0).then(|| FileInode {
                major: u32_at(0),
                minor: u32_at(4),
                ino,
            });
        }
        m.prot = c.u32()?;
        m.flags = c.u32()?;
    } else {
        // MMAP (v1) has no prot; the DATA bit tells data from code.
        m.prot = if misc & misc::MMAP_DATA != 0 {
            PROT_READ
        } else {
            PROT_READ | PROT_EXEC
        };
    }
    m.filename = c_string(c.bytes(c.remaining())?);
    Some(m)
}
