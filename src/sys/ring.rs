//! The mmap'd perf ring buffer: one metadata page, then 2^n data pages.
//!
//! The kernel writes whole records at `data_head` and never past our
//! `data_tail`; we copy `[tail, head)` out (at most two pieces when it wraps),
//! then publish the new tail. The record walking over the copied bytes is
//! pure ([`copy_ring`], [`count_records`]) so tests drive it on fake rings.

use std::ops::{AddAssign, Range};
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use perf_event_open_sys::bindings::perf_event_mmap_page;

use super::{PerfEvent, SysError};
use crate::abi::record_type;

/// What one drain saw, counted from the 8-byte record headers only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Bytes copied out.
    pub bytes: u64,
    pub records: u64,
    /// `PERF_RECORD_SAMPLE` records.
    pub samples: u64,
    /// Samples lost: the `lost` field of `PERF_RECORD_LOST` (ring full) plus
    /// that of `PERF_RECORD_LOST_SAMPLES`.
    pub lost: u64,
    /// `PERF_RECORD_THROTTLE` records.
    pub throttles: u64,
    /// Bytes dropped because the ring state or a record header was
    /// inconsistent (should never happen; kept so it is visible).
    pub malformed_bytes: u64,
}

impl AddAssign for DrainStats {
    fn add_assign(&mut self, o: DrainStats) {
        self.bytes += o.bytes;
        self.records += o.records;
        self.samples += o.samples;
        self.lost += o.lost;
        self.throttles += o.throttles;
        self.malformed_bytes += o.malformed_bytes;
    }
}

/// The byte ranges of the data area that hold `[tail, head)`: one range, or
/// two when the region wraps past the end. None when the positions are
/// inconsistent (`head - tail` larger than the ring).
pub fn ring_segments(
    data_size: usize,
    tail: u64,
    head: u64,
) -> Option<(Range<usize>, Range<usize>)> {
    let avail = head.wrapping_sub(tail);
    if data_size == 0 || avail > data_size as u64 {
        return None;
    }
    let avail = avail as usize;
    let start = (tail % data_size as u64) as usize;
    let first_len = avail.min(data_size - start);
    Some((start..start + first_len, 0..avail - first_len))
}

/// Counts records in `bytes` (which must start at a record boundary) by
/// their headers. Returns the stats and the length of the well-formed prefix.
pub fn count_records(bytes: &[u8]) -> (DrainStats, usize) {
    let mut stats = DrainStats::default();
    let mut pos = 0usize;
    while bytes.len() - pos >= 8 {
        let kind = read_u32(bytes, pos);
        let size = usize::from(read_u16(bytes, pos + 6));
        if size < 8 || size > bytes.len() - pos {
            break;
        }
        stats.records += 1;
        match kind {
            record_type::SAMPLE => stats.samples += 1,
            record_type::LOST if size >= 24 => stats.lost += read_u64(bytes, pos + 16),
            record_type::LOST_SAMPLES if size >= 16 => stats.lost += read_u64(bytes, pos + 8),
            record_type::THROTTLE => stats.throttles += 1,
            _ => {}
        }
        pos += size;
    }
    stats.bytes = pos as u64;
    stats.malformed_bytes = (bytes.len() - pos) as u64;
    (stats, pos)
}

/// Copies `[tail, head)` of a ring data area into `out` contiguously and
/// counts its records. Bytes after a malformed header are not kept.
pub fn copy_ring(data: &[u8], tail: u64, head: u64, out: &mut Vec<u8>) -> DrainStats {
    match ring_segments(data.len(), tail, head) {
        Some((first, second)) => append_and_count(&data[first], &data[second], out),
        None => DrainStats {
            malformed_bytes: head.wrapping_sub(tail),
            ..DrainStats::default()
        },
    }
}

fn append_and_count(first: &[u8], second: &[u8], out: &mut Vec<u8>) -> DrainStats {
    let start = out.len();
    out.reserve(first.len() + second.len());
    out.extend_from_slice(first);
    out.extend_from_slice(second);
    let (stats, good) = count_records(&out[start..]);
    out.truncate(start + good);
    stats
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

/// A mapped ring buffer. Unmapped on drop.
#[derive(Debug)]
pub struct RingBuffer {
    base: NonNull<u8>,
    map_len: usize,
    data_offset: usize,
    data_size: usize,
    tail: u64,
}

impl RingBuffer {
    /// Maps 1 + `data_pages` pages on `event` (`data_pages` a power of two).
    pub fn new(event: &PerfEvent, data_pages: usize) -> Result<RingBuffer, SysError> {
        if !data_pages.is_power_of_two() {
            return Err(SysError::Other(format!(
                "ring buffer size must be a power of two pages, got {data_pages}"
            )));
        }
        let page = super::page_size();
        let map_len = data_pages
            .checked_add(1)
            .and_then(|n| n.checked_mul(page))
            .ok_or_else(|| {
                SysError::Other(format!("ring buffer of {data_pages} pages is too large"))
            })?;
        // SAFETY: a fresh shared mapping of a perf event fd; the kernel picks
        // the address, and we check for MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                event.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let source = std::io::Error::last_os_error();
            let kib = map_len / 1024;
            // The kernel refuses a ring over the locked-memory limit with
            // EPERM; ENOMEM when it cannot pin the pages.
            if matches!(source.raw_os_error(), Some(libc::EPERM | libc::ENOMEM)) {
                return Err(SysError::RingOverLockLimit { kib, source });
            }
            return Err(SysError::Other(format!(
                "mmap of a {kib} KiB perf ring buffer: {source}"
            )));
        }
        let base = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| SysError::Other("mmap returned NULL".into()))?;
        let mut ring = RingBuffer {
            base,
            map_len,
            data_offset: page,
            data_size: data_pages * page,
            tail: 0,
        };
        // Kernels since 4.1 publish the data area; older ones use page 1 on.
        let (offset, size) = ring.header_data_area();
        if offset != 0 && size != 0 && offset.checked_add(size) == Some(map_len) {
            ring.data_offset = offset;
            ring.data_size = size;
        }
        ring.tail = ring.tail_field().load(Ordering::Relaxed);
        Ok(ring)
    }

    fn page(&self) -> *mut perf_event_mmap_page {
        self.base.as_ptr().cast::<perf_event_mmap_page>()
    }

    fn header_data_area(&self) -> (usize, usize) {
        let page = self.page();
        // SAFETY: the first mapped page is the kernel's perf_event_mmap_page;
        // data_offset/data_size are written once at mmap time.
        let (offset, size) = unsafe {
            (
                std::ptr::addr_of!((*page).data_offset).read_volatile(),
                std::ptr::addr_of!((*page).data_size).read_volatile(),
            )
        };
        (
            usize::try_from(offset).unwrap_or(0),
            usize::try_from(size).unwrap_or(0),
        )
    }

    fn head_field(&self) -> &AtomicU64 {
        // SAFETY: data_head is an 8-byte aligned u64 inside the mapping, which
        // lives as long as `self`; the kernel only updates it atomically.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.page()).data_head)) }
    }

    fn tail_field(&self) -> &AtomicU64 {
        // SAFETY: as for data_head; data_tail is written by us and read by the kernel.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.page()).data_tail)) }
    }

    /// True when the kernel has written records we have not read.
    pub fn has_data(&self) -> bool {
        self.head_field().load(Ordering::Acquire) != self.tail
    }

    /// Copies every complete record into `out` (contiguously, also when the
    /// ring wrapped) and frees the space in the ring.
    pub fn drain(&mut self, out: &mut Vec<u8>) -> DrainStats {
        // Acquire pairs with the kernel's store of data_head: the record bytes
        // before head are visible once we see head.
        let head = self.head_field().load(Ordering::Acquire);
        if head == self.tail {
            return DrainStats::default();
        }
        let stats = match ring_segments(self.data_size, self.tail, head) {
            Some((first, second)) => {
                // SAFETY: both ranges lie inside the data area (ring_segments
                // bounds them by data_size) and cover [tail, head), which the
                // kernel does not write until we publish a new tail.
                let (a, b) = unsafe {
                    let data = self.base.as_ptr().add(self.data_offset);
                    (
                        std::slice::from_raw_parts(data.add(first.start), first.len()),
                        std::slice::from_raw_parts(data.add(second.start), second.len()),
                    )
                };
                append_and_count(a, b, out)
            }
            None => DrainStats {
                malformed_bytes: head.wrapping_sub(self.tail),
                ..DrainStats::default()
            },
        };
        self.tail = head;
        // Release: our reads of the records happen before the kernel may reuse the space.
        self.tail_field().store(head, Ordering::Release);
        stats
    }
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        // SAFETY: base/map_len are exactly what mmap returned; no references
        // into the mapping outlive `self`.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.map_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32, size: u16, fill: u8) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&kind.to_ne_bytes());
        r.extend_from_slice(&0u16.to_ne_bytes());
        r.extend_from_slice(&size.to_ne_bytes());
        r.resize(usize::from(size).max(8), fill);
        r
    }

    fn lost(n: u64) -> Vec<u8> {
        let mut r = record(record_type::LOST, 24, 0);
        r[8..16].copy_from_slice(&77u64.to_ne_bytes());
        r[16..24].copy_from_slice(&n.to_ne_bytes());
        r
    }

    /// Writes `bytes` into a ring of `size` starting at absolute position `pos`.
    fn put(ring: &mut [u8], pos: u64, bytes: &[u8]) {
        let n = ring.len() as u64;
        for (i, b) in bytes.iter().enumerate() {
            ring[((pos + i as u64) % n) as usize] = *b;
        }
    }

    #[test]
    fn segments_without_and_with_wrap() {
        assert_eq!(ring_segments(64, 8, 40), Some((8..40, 0..0)));
        assert_eq!(ring_segments(64, 48, 80), Some((48..64, 0..16)));
        assert_eq!(ring_segments(64, 128, 128), Some((0..0, 0..0)));
        assert_eq!(ring_segments(64, 0, 65), None);
    }

    #[test]
    fn counts_samples_lost_and_throttles() {
        let mut bytes = Vec::new();
        bytes.extend(record(record_type::SAMPLE, 48, 1));
        bytes.extend(lost(5));
        bytes.extend(record(record_type::THROTTLE, 32, 2));
        let mut ls = record(record_type::LOST_SAMPLES, 16, 0);
        ls[8..16].copy_from_slice(&3u64.to_ne_bytes());
        bytes.extend(ls);
        bytes.extend(record(record_type::SAMPLE, 40, 3));
        bytes.extend(record(record_type::MMAP2, 64, 4));
        let (stats, good) = count_records(&bytes);
        assert_eq!(good, bytes.len());
        assert_eq!(stats.records, 6);
        assert_eq!(stats.samples, 2);
        assert_eq!(stats.lost, 8);
        assert_eq!(stats.throttles, 1);
        assert_eq!(stats.malformed_bytes, 0);
    }

    #[test]
    fn record_straddling_the_end_is_copied_contiguously() {
        let mut ring = vec![0u8; 64];
        let a = record(record_type::SAMPLE, 24, 0xaa);
        let b = record(record_type::SAMPLE, 32, 0xbb);
        let c = lost(9);
        // Start at 48: `a` fits 48..72 -> wraps after 16 bytes.
        let start = 64 * 3 + 48;
        put(&mut ring, start, &a);
        put(&mut ring, start + 24, &b);
        let mut out = vec![0xee];
        let stats = copy_ring(&ring, start, start + 56, &mut out);
        assert_eq!(stats.samples, 2);
        assert_eq!(stats.bytes, 56);
        assert_eq!(&out[1..25], &a[..]);
        assert_eq!(&out[25..57], &b[..]);
        // The header itself wraps: LOST record at 40 of the next lap (16 bytes to the end).
        let pos = start + 56 + 56;
        put(&mut ring, pos, &c);
        let mut out = Vec::new();
        let stats = copy_ring(&ring, pos, pos + 24, &mut out);
        assert_eq!(out, c);
        assert_eq!(stats.lost, 9);
        assert_eq!(stats.records, 1);
    }

    #[test]
    fn malformed_header_stops_and_truncates() {
        let mut bytes = record(record_type::SAMPLE, 16, 0);
        bytes.extend(record(record_type::SAMPLE, 4, 0)); // size < 8
        let mut out = Vec::new();
        let mut ring = bytes.clone();
        ring.resize(64, 0);
        let stats = copy_ring(&ring, 0, bytes.len() as u64, &mut out);
        assert_eq!(stats.samples, 1);
        assert_eq!(out.len(), 16);
        assert_eq!(stats.malformed_bytes, (bytes.len() - 16) as u64);
        let stats = copy_ring(&ring, 0, 1000, &mut out);
        assert_eq!(stats.malformed_bytes, 1000);
        assert_eq!(out.len(), 16);
    }
}
