//! Writes a pipe-mode perf.data stream (`record -o -`), the shape
//! `perf record -o -` writes: `PERFILE2` and a header size of 16, then
//! records only. The attrs come first as HEADER_ATTR records, the host
//! features as HEADER_FEATURE records (as perf does), then the data records
//! as they are drained from the rings. Nothing is ever rewritten: a stream
//! that ends after any record is a valid recording.
//!
//! What is only known at the end comes last: the sampled modules' build ids
//! as HEADER_BUILD_ID records, and rprof's symbol table as section chunks
//! ([`format::pipe`](super::format::pipe)): Linux perf 6.1 `report` stops at
//! a HEADER_FEATURE record whose bit it does not know, while it skips the
//! record type the chunks use.
//!
//! To embed symbols, the records are also written to an unlinked temporary
//! file ([`unlinked_temp_file`]) that [`DataSink::read_back`] maps, so the
//! end of a piped recording runs the same embedding as a file's, and memory
//! stays bounded by what the embedding keeps, not by the recording's length.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::format::{feature, pipe, MAGIC, PIPE_HEADER_SIZE};
use super::writer::{
    encode_build_id_records, encode_features, AttrEntry, DataSink, FeatureData, WriteError,
};
use super::{PerfFile, ReadError};
use crate::abi::cursor::{align_up, ByteWriter};
use crate::abi::{record_type, EVENT_HEADER_SIZE};

/// Data is written in chunks of about this size.
const BUFFER_SIZE: usize = 1 << 20;

/// A pipe-mode stream into `W` (standard output for `record -o -`).
pub struct PipeWriter<W: Write> {
    out: W,
    /// What `out` is, for messages ("standard output").
    name: String,
    copy: StreamCopy,
    buf: Vec<u8>,
    /// Stream bytes that reached `out`.
    written: u64,
    /// Finished, or stopped by a failed write: dropping writes nothing more.
    closed: bool,
}

/// The copy of the stream that symbol embedding reads back.
enum StreamCopy {
    /// None was asked for (no symbol embedding).
    Off,
    Kept(File),
    /// Writing it failed: the stream goes on without it, and symbols are
    /// not embedded.
    Failed(io::Error),
}

impl<W: Write> PipeWriter<W> {
    /// Writes the stream's start to `out` (and to `copy`, which should be
    /// an [`unlinked_temp_file`]): the pipe header, one HEADER_ATTR record
    /// per attr, and the host features of `features` (its build ids and
    /// symbols come at [`DataSink::finish`]).
    pub fn new(
        out: W,
        name: &str,
        copy: Option<File>,
        attrs: &[AttrEntry],
        features: &FeatureData,
    ) -> Result<PipeWriter<W>, WriteError> {
        let mut writer = PipeWriter {
            out,
            name: name.to_string(),
            copy: copy.map_or(StreamCopy::Off, StreamCopy::Kept),
            buf: Vec::with_capacity(BUFFER_SIZE),
            written: 0,
            closed: false,
        };
        let prologue = prologue(attrs, features)?;
        writer.emit(&prologue)?;
        Ok(writer)
    }

    /// Writes `bytes` to the stream and to the copy. A failed copy only
    /// ends the copy; a failed stream ends the recording.
    fn emit(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        if let Err(source) = self.out.write_all(bytes) {
            self.closed = true;
            return Err(if source.kind() == io::ErrorKind::BrokenPipe {
                WriteError::OutputClosed {
                    name: self.name.clone(),
                    written: self.written,
                }
            } else {
                WriteError::Stream {
                    name: self.name.clone(),
                    source,
                }
            });
        }
        self.written += bytes.len() as u64;
        if let StreamCopy::Kept(file) = &mut self.copy {
            if let Err(e) = file.write_all(bytes) {
                self.copy = StreamCopy::Failed(e);
            }
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), WriteError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let result = self.emit(&buf);
        self.buf = buf;
        self.buf.clear();
        result
    }
}

impl<W: Write> DataSink for PipeWriter<W> {
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        if self.buf.len() + bytes.len() > BUFFER_SIZE {
            self.write_buffer()?;
        }
        if bytes.len() >= BUFFER_SIZE {
            self.emit(bytes)
        } else {
            self.buf.extend_from_slice(bytes);
            Ok(())
        }
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        self.write_buffer()?;
        if let Err(source) = self.out.flush() {
            self.closed = true;
            return Err(WriteError::Stream {
                name: self.name.clone(),
                source,
            });
        }
        Ok(())
    }

    fn mark_data_complete(&mut self) -> Result<(), WriteError> {
        DataSink::flush(self)
    }

    fn read_back(&mut self) -> Result<PerfFile, ReadError> {
        let path = PathBuf::from(format!(
            "{}/(unlinked copy of the stream)",
            std::env::temp_dir().display()
        ));
        let open_err = |source| ReadError::Open {
            path: path.clone(),
            source,
        };
        match std::mem::replace(&mut self.copy, StreamCopy::Off) {
            StreamCopy::Kept(file) => {
                let reading = file.try_clone().map_err(open_err);
                self.copy = StreamCopy::Kept(file);
                PerfFile::from_file(reading?, &path)
            }
            StreamCopy::Failed(e) => Err(open_err(e)),
            StreamCopy::Off => Err(open_err(io::Error::other("no copy of the stream was kept"))),
        }
    }

    fn finish(mut self: Box<Self>, features: &FeatureData) -> Result<u64, WriteError> {
        DataSink::flush(&mut *self)?;
        // The copy has served; the end goes to the stream only.
        self.copy = StreamCopy::Off;
        let trailer = trailer(features);
        self.emit(&trailer)?;
        DataSink::flush(&mut *self)?;
        self.closed = true;
        Ok(self.written)
    }
}

impl<W: Write> Drop for PipeWriter<W> {
    /// A writer dropped without `finish` (an error path, a stopped
    /// recording) still writes out the records it accepted: the stream
    /// stays valid up to them.
    fn drop(&mut self) {
        if !self.closed {
            let _ = DataSink::flush(self);
        }
    }
}

/// The most sample ids one HEADER_ATTR record can declare after an attr
/// of `attr_size` bytes.
fn max_ids(attr_size: usize) -> usize {
    (usize::from(u16::MAX) - EVENT_HEADER_SIZE - attr_size) / 8
}

/// The pipe header, HEADER_ATTR records and HEADER_FEATURE records.
fn prologue(attrs: &[AttrEntry], features: &FeatureData) -> Result<Vec<u8>, WriteError> {
    let mut w = ByteWriter::default();
    w.bytes(MAGIC).u64(PIPE_HEADER_SIZE);
    for (index, entry) in attrs.iter().enumerate() {
        let attr = entry.attr.to_bytes_sized(entry.attr.file_size());
        let max = max_ids(attr.len());
        let ids = if entry.ids.len() <= max {
            &entry.ids[..]
        } else if attrs.len() == 1 {
            // With one event every sample is its sample, whatever its id
            // (perf and rprof alike): the ids are only for matching.
            &entry.ids[..max]
        } else {
            return Err(WriteError::TooManyIds {
                event: index,
                ids: entry.ids.len(),
                max,
            });
        };
        let size = EVENT_HEADER_SIZE + attr.len() + 8 * ids.len();
        w.u32(record_type::HEADER_ATTR)
            .u16(0)
            .u16(size as u16)
            .bytes(&attr);
        for &id in ids {
            w.u64(id);
        }
    }
    let host = FeatureData {
        build_ids: Vec::new(),
        rprof_symbols: None,
        rprof_unwound: None,
        perf_tracing_data: None,
        ..features.clone()
    };
    let attr_size = attrs
        .iter()
        .map(|e| e.attr.file_size())
        .max()
        .unwrap_or(crate::abi::ATTR_SIZE_VER7);
    for (bit, mut bytes) in encode_features(&host, attrs, attr_size) {
        if bit == feature::EVENT_DESC && !fits_feature_record(&bytes) {
            // Many threads: the names matter, the ids are in HEADER_ATTR.
            let without_ids: Vec<AttrEntry> = attrs
                .iter()
                .map(|e| AttrEntry {
                    attr: e.attr,
                    ids: Vec::new(),
                })
                .collect();
            bytes = encode_features(&host, &without_ids, attr_size)
                .into_iter()
                .find(|(b, _)| *b == bit)
                .map(|(_, bytes)| bytes)
                .unwrap_or_default();
        }
        // A section one record cannot hold (a command line of 64 KiB) is left out.
        if fits_feature_record(&bytes) {
            w.u32(record_type::HEADER_FEATURE)
                .u16(0)
                .u16((EVENT_HEADER_SIZE + 8 + bytes.len()) as u16)
                .u64(u64::from(bit))
                .bytes(&bytes);
        }
    }
    Ok(w.buf)
}

/// Whether a HEADER_FEATURE record can hold `section` (its size is a u16).
fn fits_feature_record(section: &[u8]) -> bool {
    EVENT_HEADER_SIZE + 8 + section.len() <= usize::from(u16::MAX)
}

/// What comes after the records: HEADER_BUILD_ID records, then the symbol
/// table as section chunks.
fn trailer(features: &FeatureData) -> Vec<u8> {
    let mut out = encode_build_id_records(&features.build_ids, record_type::HEADER_BUILD_ID);
    if let Some(symbols) = &features.rprof_symbols {
        out.extend(section_chunks(feature::RPROF_SYMBOLS, symbols));
    }
    if let Some(unwound) = &features.rprof_unwound {
        out.extend(section_chunks(feature::RPROF_UNWOUND, &unwound.to_bytes()));
    }
    out
}

/// `section` as HEADER_EVENT_TYPE records that each fit the u16 size (see
/// [`pipe::SECTION_CHUNK_MAGIC`]); an empty section is one empty chunk.
pub(super) fn section_chunks(bit: u32, section: &[u8]) -> Vec<u8> {
    let per_chunk = pipe::MAX_RECORD_SIZE - pipe::SECTION_CHUNK_HEADER;
    let mut w = ByteWriter::default();
    let mut offset = 0;
    loop {
        let chunk = &section[offset..section.len().min(offset + per_chunk)];
        let size = pipe::SECTION_CHUNK_HEADER + align_up(chunk.len(), 8);
        w.u32(record_type::HEADER_EVENT_TYPE)
            .u16(0)
            .u16(size as u16)
            .u64(pipe::SECTION_CHUNK_MAGIC)
            .u64(u64::from(bit))
            .u64(section.len() as u64)
            .u64(offset as u64)
            .bytes(chunk);
        w.buf
            .resize(w.buf.len() + align_up(chunk.len(), 8) - chunk.len(), 0);
        offset += chunk.len();
        if offset >= section.len() {
            break;
        }
    }
    w.buf
}

/// Creates a file no other process can open by name, for a copy of the
/// stream: `O_TMPFILE` in `dir` where the file system has it, else a new
/// file (`O_EXCL|O_NOFOLLOW`, so nothing that appears at the name is
/// followed) removed at once. Mode 0600 either way; the space is freed when
/// the file is closed, or when rprof dies.
pub fn unlinked_temp_file(dir: &Path) -> io::Result<File> {
    let tmpfile = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    if let Ok(file) = tmpfile {
        return Ok(file);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = io::Error::other("no temporary file name was free");
    for attempt in 0..16u32 {
        let path = dir.join(format!(
            ".rprof-stream-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}
