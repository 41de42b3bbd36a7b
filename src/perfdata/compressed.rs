//! `PERF_RECORD_COMPRESSED` payloads (`perf record -z`): zstd data that
//! decompresses to ordinary records.
//!
//! perf compresses with one streaming context per recording
//! (`ZSTD_compressStream` + `ZSTD_flushStream`, tools/perf/util/zstd.c):
//! the first record starts a single zstd frame, every later record carries
//! the next flushed blocks of that same frame, back-references reach into
//! the output of earlier records, and the frame never ends. A block may even
//! straddle two records. So one decoder lives across records, like perf's
//! `zstd_decompress_stream`, and each record's output is handed out at once.
//!
//! ruzstd's [`FrameDecoder`] holds back the last window of output until the
//! frame ends (later blocks may copy from it). To hand out everything at
//! once, each frame gets an empty last block right after its header (so it
//! counts as finished and drains completely; ruzstd decodes the real blocks
//! after it all the same), and after each drain the window is fed back as
//! raw blocks: raw blocks leave the entropy tables and repeat offsets alone,
//! so later blocks decode against the same history as before. The fed-back
//! bytes are skipped at the next drain. A drain copies the window twice, so
//! the reader drains once per run of consecutive COMPRESSED records.

use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// zstd's frame magic number, as stored (little-endian 0xFD2FB528).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// `Block_Maximum_Size` cap (RFC 8878 3.1.1.2.4).
const MAX_BLOCK: usize = 128 * 1024;
/// The largest window rprof accepts: what `perf record -z` writes at its
/// highest level (22: windowLog 27).
const MAX_WINDOW: u64 = 128 << 20;
/// Blocks are decoded in groups that produce at most this much, so the
/// per-record limit is checked as the output grows.
const GROUP_BOUND: usize = 8 << 20;

const BLOCK_RAW: u32 = 0;
const BLOCK_RLE: u32 = 1;
const BLOCK_COMPRESSED: u32 = 2;

/// The frame being decoded, from its header.
#[derive(Debug, Clone, Copy)]
struct Frame {
    window: usize,
    checksum: bool,
}

/// One zstd stream continued across `PERF_RECORD_COMPRESSED` records.
pub(crate) struct ZstdStream {
    decoder: FrameDecoder,
    frame: Option<Frame>,
    /// Compressed bytes not decoded yet (a frame header or block cut off at
    /// the end of a record).
    pending: Vec<u8>,
    /// Bytes at the front of the decoder's buffer that were handed out
    /// already (the window fed back after the last drain).
    history: usize,
    /// The most one record may decompress to.
    limit: usize,
}

impl ZstdStream {
    /// `limit`: the most one record's payload may decompress to.
    pub fn new(limit: usize) -> ZstdStream {
        let mut decoder = FrameDecoder::new();
        decoder.set_max_window_size(MAX_WINDOW);
        ZstdStream {
            decoder,
            frame: None,
            pending: Vec::new(),
            history: 0,
            limit,
        }
    }

    /// Decodes one record's payload. Its output waits in the decoder for
    /// [`Self::drain`] (so that a run of records costs one drain), except
    /// where a frame ends: then everything so far goes to `out` first. An
    /// error means the stream is corrupt; nothing after it decodes.
    pub fn feed(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.pending.extend_from_slice(payload);
        let mut produced = 0usize;
        loop {
            let frame = match self.frame {
                Some(frame) => frame,
                None => match self.start_frame()? {
                    Some(frame) => frame,
                    None => return Ok(()), // the header is not complete yet
                },
            };
            let scan = scan_blocks(&self.pending, frame)?;
            if scan.blocks == 0 {
                return Ok(());
            }
            let before = self.undrained();
            self.decode(scan.len, scan.blocks)?;
            self.pending.drain(..scan.len);
            produced += self.undrained().saturating_sub(before);
            if produced > self.limit {
                return Err(format!(
                    "a compressed record decompresses to more than {} bytes",
                    self.limit
                ));
            }
            if scan.ends_frame {
                self.frame = None;
                self.drain(out)?;
            }
        }
    }

    /// Decompressed bytes waiting for [`Self::drain`].
    pub fn undrained(&self) -> usize {
        self.decoder.can_collect().saturating_sub(self.history)
    }

    /// Appends everything decoded since the last drain to `out`.
    pub fn drain(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if self.undrained() == 0 {
            return Ok(());
        }
        let all = self.decoder.collect().unwrap_or_default();
        let new = all
            .get(self.history..)
            .ok_or("zstd decoder lost its history")?;
        out.extend_from_slice(new);
        self.history = 0;
        let Some(frame) = self.frame else {
            return Ok(()); // the frame ended: no later block refers back
        };
        // Feed the window back as raw blocks, to be skipped at the next drain.
        let keep = all.len().min(frame.window);
        let tail = all.get(all.len() - keep..).unwrap_or_default();
        let block = frame.window.clamp(1, MAX_BLOCK);
        let mut raw = Vec::with_capacity(keep + 3 * (keep / block + 1));
        for chunk in tail.chunks(block) {
            let header = (u32::try_from(chunk.len()).unwrap_or(0) << 3) | (BLOCK_RAW << 1);
            raw.extend_from_slice(&header.to_le_bytes()[..3]);
            raw.extend_from_slice(chunk);
        }
        let mut source = &raw[..];
        self.decoder
            .decode_blocks(
                &mut source,
                BlockDecodingStrategy::UptoBlocks(tail.chunks(block).count()),
            )
            .map_err(|e| format!("zstd decoder refused its own history: {e}"))?;
        self.history = keep;
        Ok(())
    }

    /// Starts the frame at the front of `pending`, once its header is whole.
    fn start_frame(&mut self) -> Result<Option<Frame>, String> {
        let Some(header) = frame_header(&self.pending)? else {
            return Ok(None);
        };
        if header.window > MAX_WINDOW {
            return Err(format!(
                "its zstd window is {} bytes, more than rprof accepts ({MAX_WINDOW})",
                header.window
            ));
        }
        self.decoder
            .init(self.pending.get(..header.len).unwrap_or_default())
            .map_err(|e| format!("bad zstd frame header: {e}"))?;
        self.pending.drain(..header.len);
        // An empty last block: the frame counts as finished from here on,
        // so drains take everything; the real blocks still decode after it.
        let mut last = vec![1, 0, 0]; // last block, raw, 0 bytes
        if header.checksum {
            last.extend([0; 4]); // read after a last block; never checked
        }
        let mut source = &last[..];
        self.decoder
            .decode_blocks(&mut source, BlockDecodingStrategy::UptoBlocks(1))
            .map_err(|e| format!("zstd decoder refused to start: {e}"))?;
        let frame = Frame {
            window: usize::try_from(header.window).unwrap_or(usize::MAX),
            checksum: header.checksum,
        };
        self.frame = Some(frame);
        self.history = 0;
        Ok(Some(frame))
    }

    /// Decodes the first `blocks` blocks of `pending` (`len` bytes).
    fn decode(&mut self, len: usize, blocks: usize) -> Result<(), String> {
        let mut source = self.pending.get(..len).unwrap_or_default();
        self.decoder
            .decode_blocks(&mut source, BlockDecodingStrategy::UptoBlocks(blocks))
            .map_err(|e| format!("corrupt zstd data: {e}"))?;
        if !source.is_empty() {
            return Err("corrupt zstd data: a block did not decode to its stated size".into());
        }
        Ok(())
    }
}

/// A zstd frame header, as far as rprof needs it.
struct FrameHeader {
    len: usize,
    window: u64,
    checksum: bool,
}

/// Parses the frame header at the start of `bytes`; `None` until it is whole.
fn frame_header(bytes: &[u8]) -> Result<Option<FrameHeader>, String> {
    let (Some(magic), Some(&descriptor)) = (bytes.get(..4), bytes.get(4)) else {
        return if ZSTD_MAGIC.starts_with(bytes) {
            Ok(None)
        } else {
            Err("compressed data does not start with a zstd frame".into())
        };
    };
    if magic != ZSTD_MAGIC {
        return Err("compressed data does not start with a zstd frame".into());
    }
    let single_segment = descriptor & 0x20 != 0;
    let dict_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let size_len = match descriptor >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let window_at = 5;
    let size_at = window_at + usize::from(!single_segment) + dict_len;
    let len = size_at + size_len;
    let Some(size_bytes) = bytes.get(size_at..len) else {
        return Ok(None);
    };
    let window = if single_segment {
        // The window is the whole content; a 2-byte size is stored minus 256.
        let mut le = [0u8; 8];
        le[..size_len].copy_from_slice(size_bytes);
        let size = u64::from_le_bytes(le);
        if size_len == 2 {
            size + 256
        } else {
            size
        }
    } else {
        let w = bytes.get(window_at).copied().unwrap_or(0);
        let base = 1u64 << (10 + (w >> 3));
        base + (base / 8) * u64::from(w & 7)
    };
    Ok(Some(FrameHeader {
        len,
        window,
        checksum: descriptor & 4 != 0,
    }))
}

/// The run of complete blocks at the front of the pending bytes.
struct BlockScan {
    blocks: usize,
    len: usize,
    /// The run ends with the frame's last block (and its checksum).
    ends_frame: bool,
}

/// Finds the complete blocks at the front of `bytes`: at least one, and
/// no more than could decompress to [`GROUP_BOUND`] bytes, so that the
/// output limit is checked before much memory is spent.
fn scan_blocks(bytes: &[u8], frame: Frame) -> Result<BlockScan, String> {
    let mut scan = BlockScan {
        blocks: 0,
        len: 0,
        ends_frame: false,
    };
    let mut bound = 0usize;
    while let Some(header) = bytes.get(scan.len..scan.len + 3) {
        let header =
            u32::from(header[0]) | (u32::from(header[1]) << 8) | (u32::from(header[2]) << 16);
        let last = header & 1 != 0;
        let kind = (header >> 1) & 3;
        let size = (header >> 3) as usize;
        if size > MAX_BLOCK {
            return Err(format!("corrupt zstd data: a block of {size} bytes"));
        }
        let (stored, output) = match kind {
            BLOCK_RAW => (size, size),
            BLOCK_RLE => (1, size),
            BLOCK_COMPRESSED => (size, frame.window.min(MAX_BLOCK)),
            _ => return Err("corrupt zstd data: reserved block type".into()),
        };
        let end = scan.len + 3 + stored + if last && frame.checksum { 4 } else { 0 };
        bound += output;
        if end > bytes.len() || (scan.blocks > 0 && bound > GROUP_BOUND) {
            break; // continues in the next record, or in the next group
        }
        scan.blocks += 1;
        scan.len = end;
        if last {
            scan.ends_frame = true;
            break;
        }
    }
    Ok(scan)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use ruzstd::encoding::{compress_to_vec, CompressionLevel};

    /// Repetitive but varying bytes, like a ring buffer full of records, so
    /// later blocks copy from what earlier blocks produced.
    fn ring_like(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(b"PERF_RECORD_SAMPLE cpu-clock ");
            out.extend_from_slice(&(state % 4096).to_le_bytes());
            out.extend(std::iter::repeat(b'.').take((state % 50) as usize));
        }
        out.truncate(len);
        out
    }

    /// Blocks of `frame` after its header: (offset, stored length, last).
    fn blocks(frame: &[u8]) -> Vec<(usize, usize, bool)> {
        let header = frame_header(frame).unwrap().unwrap();
        let mut pos = header.len;
        let mut out = Vec::new();
        loop {
            let h = u32::from(frame[pos])
                | (u32::from(frame[pos + 1]) << 8)
                | (u32::from(frame[pos + 2]) << 16);
            let size = (h >> 3) as usize;
            let stored = 3 + if (h >> 1) & 3 == BLOCK_RLE { 1 } else { size };
            out.push((pos, stored, h & 1 != 0));
            if h & 1 != 0 {
                return out;
            }
            pos += stored;
        }
    }

    /// The frame as perf writes it: never finished (no last block, no checksum).
    pub(in crate::perfdata) fn endless(frame: &[u8]) -> Vec<u8> {
        let &(at, stored, _) = blocks(frame).last().unwrap();
        let mut out = frame[..at + stored].to_vec();
        out[at] &= !1;
        out
    }

    /// Feeds `stream` cut at `cuts`, returning the output after each piece.
    fn feed(stream: &[u8], cuts: &[usize]) -> Result<Vec<Vec<u8>>, String> {
        let mut zstd = ZstdStream::new(64 << 20);
        let mut outputs = Vec::new();
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain([&stream.len()]) {
            zstd.feed(&stream[from..to], &mut out)?;
            zstd.drain(&mut out)?;
            assert_eq!(zstd.undrained(), 0);
            outputs.push(out.clone());
            from = to;
        }
        Ok(outputs)
    }

    #[test]
    fn one_stream_across_records_decodes_in_full_at_every_cut() {
        let data = ring_like(1 << 20);
        let frame = compress_to_vec(&data[..], CompressionLevel::Fastest);
        let stream = endless(&frame);
        assert!(blocks(&frame).len() >= 4, "want several blocks");
        let cuts: Vec<usize> = (1..40).map(|i| i * stream.len() / 40 + i % 7).collect();
        let outputs = feed(&stream, &cuts).unwrap();
        assert_eq!(outputs.last().unwrap(), &data);
        // Never holds output back: after the piece that completes a block,
        // everything up to that block's end is out.
        assert!(outputs.windows(2).all(|w| data.starts_with(&w[0])));
    }

    #[test]
    fn each_record_output_is_handed_out_at_once() {
        let data = ring_like(600_000);
        let frame = compress_to_vec(&data[..], CompressionLevel::Fastest);
        let stream = endless(&frame);
        // Cut exactly after each block, as perf's flushes do.
        let cuts: Vec<usize> = blocks(&stream.iter().copied().chain([1, 0, 0]).collect::<Vec<_>>())
            .iter()
            .map(|&(at, stored, _)| at + stored)
            .filter(|&end| end < stream.len())
            .collect();
        let outputs = feed(&stream, &cuts).unwrap();
        let sizes: Vec<usize> = outputs.iter().map(Vec::len).collect();
        assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
        assert_eq!(outputs.last().unwrap(), &data);
    }

    #[test]
    fn finished_frames_restart_at_the_next_frame() {
        let a = ring_like(300_000);
        let b = ring_like(200_000);
        let mut stream = compress_to_vec(&a[..], CompressionLevel::Fastest);
        stream.extend(compress_to_vec(&b[..], CompressionLevel::Uncompressed));
        let outputs = feed(&stream, &[5, 1000, stream.len() / 2]).unwrap();
        assert_eq!(outputs.last().unwrap(), &[a, b].concat());
    }

    #[test]
    fn corrupt_streams_are_errors_not_panics() {
        let data = ring_like(300_000);
        let stream = endless(&compress_to_vec(&data[..], CompressionLevel::Fastest));
        assert!(feed(b"not zstd at all", &[]).is_err());
        assert!(feed(&[0x28; 13], &[]).is_err());
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut errors = 0;
        for _ in 0..300 {
            let mut bad = stream.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % bad.len();
                bad[at] ^= (state >> 32) as u8 | 1;
            }
            errors += usize::from(feed(&bad, &[bad.len() / 3]).is_err());
        }
        assert!(errors > 0);
    }

    #[test]
    fn output_beyond_the_limit_is_refused() {
        // Frame header (window 1 MiB), then RLE blocks of 128 KiB each.
        let mut stream = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50];
        for _ in 0..100 {
            let h = ((MAX_BLOCK as u32) << 3) | (BLOCK_RLE << 1);
            stream.extend_from_slice(&h.to_le_bytes()[..3]);
            stream.push(b'x');
        }
        let mut out = Vec::new();
        let mut zstd = ZstdStream::new(1 << 20);
        let err = zstd.feed(&stream, &mut out).unwrap_err();
        assert!(err.contains("more than"), "{err}");
        assert!(zstd.undrained() <= GROUP_BOUND + MAX_BLOCK);
        let mut zstd = ZstdStream::new(64 << 20);
        zstd.feed(&stream, &mut out).unwrap();
        zstd.drain(&mut out).unwrap();
        assert_eq!(out.len(), 100 * MAX_BLOCK);
    }
}
