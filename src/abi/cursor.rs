//! Bounds-checked little helpers for the byte layouts: a reading cursor that
//! returns `None` instead of panicking, and an appending buffer for encoders.
//! perf.data is native-endian; rprof only targets little-endian hosts.

use std::borrow::Cow;

/// Reads native-endian integers from a slice; every read is bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes, advancing past them.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// The next `n` bytes where `n` came from the file as a u64.
    pub fn bytes_u64(&mut self, n: u64) -> Option<&'a [u8]> {
        self.bytes(usize::try_from(n).ok()?)
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    /// Skips `count` items of `size` bytes, with overflow checks.
    pub fn skip_n(&mut self, count: u64, size: usize) -> Option<()> {
        let total = usize::try_from(count).ok()?.checked_mul(size)?;
        self.skip(total)
    }

    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_ne_bytes)
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_ne_bytes)
    }

    pub fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_ne_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_ne_bytes)
    }

    /// `count` u64s; the count is checked against the bytes left before
    /// allocating, so a corrupt count cannot exhaust memory.
    pub fn u64s(&mut self, count: u64) -> Option<Vec<u64>> {
        let raw = self.bytes(usize::try_from(count).ok()?.checked_mul(8)?)?;
        Some(
            raw.chunks_exact(8)
                .filter_map(|c| c.try_into().ok().map(u64::from_ne_bytes))
                .collect(),
        )
    }

    /// `count` u64s, borrowed in place when the bytes are aligned for u64
    /// (they are in a memory-mapped file: records are 8-byte multiples), else
    /// copied. Checked against the bytes left like [`Cursor::u64s`].
    pub fn u64_slice(&mut self, count: u64) -> Option<Cow<'a, [u64]>> {
        let raw = self.bytes(usize::try_from(count).ok()?.checked_mul(8)?)?;
        match bytemuck::try_cast_slice::<u8, u64>(raw) {
            Ok(words) => Some(Cow::Borrowed(words)),
            Err(_) => Some(Cow::Owned(
                raw.chunks_exact(8)
                    .filter_map(|c| c.try_into().ok().map(u64::from_ne_bytes))
                    .collect(),
            )),
        }
    }

    /// A feature-section string: u32 length (padding and NUL included), bytes.
    pub fn perf_string(&mut self) -> Option<String> {
        let len = self.u32()?;
        let raw = self.bytes(usize::try_from(len).ok()?)?;
        Some(c_string(raw))
    }
}

/// Text up to the first NUL (or the whole slice), lossily decoded.
pub(crate) fn c_string(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Rounds `n` up to a multiple of `align` (a power of two).
pub(crate) fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

/// Appends native-endian values to a byte vector.
#[derive(Debug, Default)]
pub(crate) struct ByteWriter {
    pub buf: Vec<u8>,
}

impl ByteWriter {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// `s`, a NUL, then zeros up to a multiple of `align` bytes in all.
    pub fn padded_c_string(&mut self, s: &str, align: usize) -> &mut Self {
        let len = align_up(s.len() + 1, align);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.resize(self.buf.len() + len - s.len(), 0);
        self
    }

    /// A feature-section string: u32 padded length, then the padded bytes.
    pub fn perf_string(&mut self, s: &str) -> &mut Self {
        let len = align_up(s.len() + 1, super::NAME_ALIGN);
        self.u32(u32::try_from(len).unwrap_or(u32::MAX));
        self.padded_c_string(s, super::NAME_ALIGN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_reads_and_stops_at_end() {
        let data = [1u8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9];
        let mut c = Cursor::new(&data);
        assert_eq!(c.u32(), Some(1));
        assert_eq!(c.u64(), Some(2));
        assert_eq!(c.remaining(), 1);
        assert_eq!(c.u16(), None);
        assert_eq!(c.u8(), Some(9));
        assert_eq!(c.u8(), None);
    }

    #[test]
    fn huge_counts_fail_instead_of_allocating() {
        let mut c = Cursor::new(&[0u8; 16]);
        assert_eq!(c.u64s(u64::MAX), None);
        assert_eq!(c.skip_n(u64::MAX / 2, 24), None);
        assert_eq!(c.bytes_u64(u64::MAX), None);
    }

    #[test]
    fn perf_strings_round_trip_with_padding() {
        let mut w = ByteWriter::default();
        w.perf_string("vm");
        assert_eq!(w.buf.len(), 4 + 64);
        assert_eq!(&w.buf[..4], &64u32.to_ne_bytes());
        let mut c = Cursor::new(&w.buf);
        assert_eq!(c.perf_string().as_deref(), Some("vm"));
        assert_eq!(c.remaining(), 0);
        // 63 chars + NUL fill exactly 64; 64 chars need 128.
        let mut w = ByteWriter::default();
        w.perf_string(&"x".repeat(63)).perf_string(&"y".repeat(64));
        assert_eq!(w.buf.len(), 4 + 64 + 4 + 128);
    }
}
