//! `PERF_RECORD_COMPRESSED` payloads (`perf record -z`): zstd data that
//! decompresses to ordinary records.
//!
//! perf compresses with one streaming context per recording
//! (`ZSTD_compressStream` + `ZSTD_flushStream`, tools/perf/util/zstd.c):
//! the first record starts a single zstd frame, every later record carries
//! the next flushed blocks of that same frame, back-references reach into
//! the output of earlier records, and the frame never ends. So one
//! streaming decoder lives across records, as in perf's
//! `zstd_decompress_stream`; libzstd hands out everything each record's
//! bytes decode to at once.

use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};

/// The largest window rprof accepts: what `perf record -z` writes at its
/// highest level (22: windowLog 27).
const MAX_WINDOW_LOG: u32 = 27;
/// Output is produced in pieces of this size.
const CHUNK: usize = 256 * 1024;

/// Why a record's payload yields no (more) records.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FeedError {
    /// The stream is corrupt; nothing after it decodes.
    Corrupt(String),
    /// The payload decompresses to more than the `max_out` it was given.
    /// What it produced is dropped: output past a bound is not trusted.
    TooLarge,
}

/// One zstd stream continued across `PERF_RECORD_COMPRESSED` records.
pub(crate) struct ZstdStream {
    decoder: Decoder<'static>,
    /// Scratch output, kept across records.
    chunk: Vec<u8>,
}

impl ZstdStream {
    pub fn new() -> Result<ZstdStream, String> {
        let mut decoder = Decoder::new().map_err(|e| e.to_string())?;
        decoder
            .set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))
            .map_err(|e| e.to_string())?;
        Ok(ZstdStream {
            decoder,
            chunk: Vec::new(),
        })
    }

    /// Decodes one record's payload, appending what it decodes to to `out`,
    /// at most `max_out` bytes: decoding stops within one chunk of the bound,
    /// so a bomb costs no more than the bound, in memory and in time.
    pub fn feed(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<(), FeedError> {
        let before = out.len();
        let mut input = InBuffer::around(payload);
        self.chunk.resize(CHUNK, 0);
        loop {
            let mut output = OutBuffer::around(&mut self.chunk[..]);
            self.decoder
                .run(&mut input, &mut output)
                .map_err(|e| FeedError::Corrupt(e.to_string()))?;
            let written = output.pos();
            if out.len() - before + written > max_out {
                out.truncate(before);
                return Err(FeedError::TooLarge);
            }
            // Grown as usual, but never past the bound.
            let needed = out.len() + written;
            if needed > out.capacity() {
                let target = (out.capacity() * 2).clamp(needed, before.saturating_add(max_out));
                out.reserve_exact(target - out.len());
            }
            out.extend_from_slice(&self.chunk[..written]);
            // Done when the input is used up and the decoder had room to
            // spare (it flushed all it holds).
            if input.pos() == payload.len() && written < CHUNK {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
pub(in crate::perfdata) mod tests {
    use super::*;
    use zstd::stream::raw::Encoder;

    /// Compresses `data` the way perf does: one frame that never ends,
    /// flushed after every `piece` input bytes; returns the flushed pieces
    /// (one COMPRESSED record's payload each).
    pub(in crate::perfdata) fn perf_like_stream(data: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut encoder = Encoder::new(1).unwrap();
        let mut pieces = Vec::new();
        for chunk in data.chunks(piece.max(1)) {
            let mut payload = Vec::new();
            let mut input = InBuffer::around(chunk);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let mut output = OutBuffer::around(&mut buf[..]);
                encoder.run(&mut input, &mut output).unwrap();
                let pos = output.pos();
                payload.extend_from_slice(&buf[..pos]);
                if input.pos() == chunk.len() {
                    break;
                }
            }
            loop {
                let mut output = OutBuffer::around(&mut buf[..]);
                let left = encoder.flush(&mut output).unwrap();
                let pos = output.pos();
                payload.extend_from_slice(&buf[..pos]);
                if left == 0 {
                    break;
                }
            }
            pieces.push(payload);
        }
        pieces
    }

    fn ring_like(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 7) % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    #[test]
    fn one_stream_across_records_hands_out_each_records_output_at_once() {
        let data = ring_like(1 << 20);
        let pieces = perf_like_stream(&data, 40_000);
        assert!(pieces.len() > 10);
        let mut zstd = ZstdStream::new().unwrap();
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            zstd.feed(piece, &mut out, 64 << 20).unwrap();
            // Everything compressed so far is out, nothing held back.
            assert_eq!(out.len(), ((i + 1) * 40_000).min(data.len()));
        }
        assert_eq!(out, data);
    }

    #[test]
    fn corrupt_streams_are_errors_not_panics() {
        let mut zstd = ZstdStream::new().unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            zstd.feed(b"this is not zstd data at all", &mut out, 64 << 20),
            Err(FeedError::Corrupt(_))
        ));
        let data = ring_like(100_000);
        let mut pieces = perf_like_stream(&data, 10_000);
        for (i, piece) in pieces.iter_mut().enumerate() {
            if let Some(b) = piece.get_mut(i % 17 + 5) {
                *b ^= 0x5a;
            }
        }
        let mut zstd = ZstdStream::new().unwrap();
        for piece in &pieces {
            if zstd.feed(piece, &mut out, 64 << 20).is_err() {
                break;
            }
        }
    }

    #[test]
    fn output_beyond_the_bound_is_refused_and_dropped() {
        let data = vec![0u8; 1 << 20];
        let pieces = perf_like_stream(&data, data.len());
        let mut zstd = ZstdStream::new().unwrap();
        let mut out = b"earlier".to_vec();
        let err = zstd.feed(&pieces[0], &mut out, 1000);
        assert_eq!(err, Err(FeedError::TooLarge));
        // What came before stays; nothing of the refused record is kept.
        assert_eq!(out, b"earlier");
    }

    #[test]
    fn output_exactly_at_the_bound_is_accepted() {
        let data = ring_like(300_000);
        let pieces = perf_like_stream(&data, data.len());
        let mut zstd = ZstdStream::new().unwrap();
        let mut out = Vec::new();
        zstd.feed(&pieces[0], &mut out, data.len()).unwrap();
        assert_eq!(out, data);
    }
}
