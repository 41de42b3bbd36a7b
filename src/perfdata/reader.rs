//! Reads perf.data files (rprof's and Linux perf's): plain files, files
//! whose records are zstd-compressed (`perf record -z`) and pipe-mode files
//! (`perf record -o -`, saved to disk). Never panics on malformed input:
//! every length is checked and errors say what is wrong.
//!
//! A pipe-mode file has no attrs section and no feature table: its attrs
//! come as HEADER_ATTR records and its features as HEADER_FEATURE records,
//! inline with the data. Opening it walks the records once to find them,
//! wherever they come (rprof writes its symbols at the end, as section
//! chunks: see [`super::pipe`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::compressed::{FeedError, ZstdStream};
use super::decode::Decoder;
use super::format::{
    feature, pipe, rprof_state, FILE_HEADER_SIZE, FILE_HEADER_SIZE_NO_FEATURES, FILE_SECTION_SIZE,
    MAGIC, MAGIC_SWAPPED, PIPE_HEADER_SIZE,
};
use super::order::Ordered;
use super::records::Record;
use crate::abi::cursor::{c_string, Cursor};
use crate::abi::{misc, record_type, ATTR_SIZE_VER0, EVENT_HEADER_SIZE};
use crate::abi::{sample, EventAttr};

/// Pages of a memory-mapped file are released in steps of this many bytes
/// once read (see [`Records::release_before`]).
const RELEASE_STEP: usize = 8 << 20;

/// The most one COMPRESSED record may decompress to. perf sizes its buffer
/// by the recording's mmap size (512 KiB by default); this leaves room for
/// any ring size while bounding what a corrupt record can allocate.
pub(super) const MAX_UNPACKED_PER_RECORD: usize = 64 << 20;
/// The most decompressed bytes held at once: one record's output behind
/// the largest record (u16 size) still waiting for its rest. More means a
/// record claims more bytes than the stream holds (e.g. an AUXTRACE size).
const MAX_UNPACKED_BUFFERED: usize = MAX_UNPACKED_PER_RECORD + u16::MAX as usize;
/// The most a COMPRESSED record may decompress to, as a multiple of its
/// payload. The highest ratio measured on real data is ~1600
/// (`perf record --compression-level=22 --call-graph=dwarf,65528 -m 16M`
/// of a spinning loop: 64 KiB stack copies that repeat sample after
/// sample); ordinary `perf record -z -g` files stay under 20. Each real
/// sample differs at least in its time stamp, which caps them near 5000;
/// zstd itself reaches ~32000 (a 4-byte RLE block makes 128 KiB), which is
/// what a decompression bomb uses.
pub(super) const MAX_UNPACK_RATIO: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is empty: the recording wrote nothing (was it stopped before it started?)")]
    Empty { path: PathBuf },
    #[error("{path} is not a perf.data file (no PERFILE2 magic); give a file written by `rprof record` or `perf record`")]
    NotPerfData { path: PathBuf },
    #[error("{path}: corrupt header: {detail}")]
    BadHeader { path: PathBuf, detail: String },
}

/// Host facts from the feature sections, where present.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub hostname: Option<String>,
    pub osrelease: Option<String>,
    pub arch: Option<String>,
    /// (online, available), as in [`super::FeatureData::nrcpus`].
    pub nrcpus: Option<(u32, u32)>,
    pub cmdline: Vec<String>,
    /// Event names by attr index (HEADER_EVENT_DESC), empty if absent.
    pub event_names: Vec<String>,
    pub build_ids: Vec<(i32, Vec<u8>, String)>,
}

/// An opened perf.data file (memory-mapped).
pub struct PerfFile {
    bytes: Source,
    layout: Layout,
}

/// A pipe-mode file's HEADER_ATTR records, so that the record iterator can
/// build its decoder from the attrs declared so far, as perf does.
#[derive(Debug, Default)]
struct PipeAttrs {
    /// File offset of each attr's record, in file order (= attr order).
    offsets: Vec<usize>,
    /// Sample ids of each attr.
    ids: Vec<Vec<u64>>,
}

/// The file's bytes: mapped when opened from disk, owned for tests.
enum Source {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Source {
    fn as_slice(&self) -> &[u8] {
        match self {
            Source::Mapped(m) => m,
            Source::Owned(v) => v,
        }
    }
}

impl PerfFile {
    pub fn open(path: &Path) -> Result<PerfFile, ReadError> {
        let open_err = |source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_err)?;
        Self::from_file(file, path)
    }

    /// Reads an opened file (a regular file is mapped; a pipe or device,
    /// e.g. standard input, is read to its end). `path` names it in errors.
    pub fn from_file(mut file: File, path: &Path) -> Result<PerfFile, ReadError> {
        let open_err = |source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        };
        let meta = file.metadata().map_err(open_err)?;
        let bytes = if meta.is_file() {
            if meta.len() == 0 {
                return Err(ReadError::Empty {
                    path: path.to_path_buf(),
                });
            }
            match crate::sys::map_read_only(&file) {
                Ok(map) => Source::Mapped(map),
                Err(_) => {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(open_err)?;
                    Source::Owned(bytes)
                }
            }
        } else {
            // A pipe or device (`-i /dev/stdin`) has no length: read what
            // it really delivers.
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes).map_err(open_err)?;
            Source::Owned(bytes)
        };
        Self::parse(bytes, path)
    }

    /// For tests and benches: parse an in-memory file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<PerfFile, ReadError> {
        Self::parse(Source::Owned(bytes), Path::new("<memory>"))
    }

    fn parse(bytes: Source, path: &Path) -> Result<PerfFile, ReadError> {
        let layout = Layout::parse(bytes.as_slice(), path)?;
        Ok(PerfFile { bytes, layout })
    }

    pub fn attrs(&self) -> &[EventAttr] {
        self.layout.decoder.attrs()
    }

    pub fn metadata(&self) -> &Metadata {
        &self.layout.metadata
    }

    /// Raw bytes of a feature section (`format::feature::*`), if present.
    pub fn feature(&self, bit: u32) -> Option<&[u8]> {
        if let Some(bytes) = self.layout.chunked_features.get(&bit) {
            return Some(bytes);
        }
        let range = self.layout.features.get(&bit)?;
        self.bytes.as_slice().get(range.clone())
    }

    /// Problems found while opening the file (e.g. a header that was never
    /// finalized). The record iterators add their own.
    pub fn warnings(&self) -> &[String] {
        &self.layout.warnings
    }

    /// Records in file order. Stops at the first undecodable record with a
    /// warning (see [`Records::warnings`] after iterating) rather than an
    /// error, so a truncated recording still reports what it holds.
    ///
    /// Records inside COMPRESSED records (`perf record -z`) come out in
    /// place of the record that held them.
    pub fn records(&self) -> Records<'_> {
        Records {
            file: self,
            pos: self.layout.data.start,
            done: false,
            pipe_decoder: self
                .layout
                .pipe
                .as_ref()
                .map(|_| Decoder::new(Vec::new(), &[])),
            zstd: None,
            unpacked: Vec::new(),
            unpacked_pos: 0,
            max_buffered: MAX_UNPACKED_BUFFERED,
            stop_after_unpacked: None,
            malformed: 0,
            before_attrs: 0,
            warnings: Vec::new(),
            released_until: 0,
            last_raw: None,
        }
    }

    /// The data section from file offset `pos` on.
    fn data_from(&self, pos: usize) -> &[u8] {
        self.bytes
            .as_slice()
            .get(pos..self.layout.data.end)
            .unwrap_or_default()
    }

    /// The file's size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.as_slice().len()
    }

    /// Whether the file has no bytes (never true of an opened file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a pipe-mode file (`perf record -o -`).
    pub fn is_pipe_mode(&self) -> bool {
        self.layout.pipe.is_some()
    }

    /// All records in file order, owned, plus every warning (opening and
    /// decoding). This holds the whole recording in memory: for tests and
    /// small tools; reports stream with [`PerfFile::ordered`].
    pub fn read_records(&self) -> (Vec<Record<'static>>, Vec<String>) {
        let mut iter = self.records();
        let records: Vec<Record<'static>> = iter.by_ref().map(Record::into_owned).collect();
        let mut warnings = self.layout.warnings.clone();
        warnings.append(&mut iter.warnings);
        (records, warnings)
    }

    /// The records in time order, streamed: merged within FINISHED_ROUND
    /// windows as perf does, within a bounded reorder buffer otherwise.
    /// See [`Ordered`].
    pub fn ordered(&self) -> Ordered<'_> {
        Ordered::new(self.records(), self.layout.warnings.clone())
    }
}

/// Iterator over the data section's records; see [`PerfFile::records`].
pub struct Records<'a> {
    file: &'a PerfFile,
    pos: usize,
    done: bool,
    /// Pipe mode: decodes with the attrs declared so far.
    pipe_decoder: Option<Decoder>,
    /// The zstd stream of the COMPRESSED records, from the first one on.
    zstd: Option<Box<ZstdStream>>,
    /// Decompressed records not handed out yet, from `unpacked_pos` on; a
    /// record cut off at the end continues in the next COMPRESSED record.
    unpacked: Vec<u8>,
    unpacked_pos: usize,
    /// The most `unpacked` may hold ([`MAX_UNPACKED_BUFFERED`]; less in tests).
    max_buffered: usize,
    /// A decompression error: reported once the records decoded before it
    /// are handed out.
    stop_after_unpacked: Option<String>,
    malformed: usize,
    before_attrs: usize,
    warnings: Vec<String>,
    /// File pages before this offset have left the resident set.
    released_until: usize,
    /// The bytes (header included) of the record handed out last, when it
    /// came straight from the file rather than out of compressed data.
    last_raw: Option<&'a [u8]>,
}

/// Why a framed record yields nothing.
enum Skip {
    /// Shorter than its event's sample layout says.
    Malformed,
    /// A pipe-mode sample before any HEADER_ATTR: no layout to read it with.
    BeforeAttrs,
}

impl<'a> Records<'a> {
    /// Warnings collected so far (complete once the iterator is exhausted).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The bytes of the record handed out last, header included, as the
    /// file holds them; `None` for records from compressed data (they were
    /// not written as such) and before the first.
    pub fn last_raw(&self) -> Option<&'a [u8]> {
        self.last_raw
    }

    /// The file offset of the next record to read.
    pub(super) fn position(&self) -> usize {
        self.pos
    }

    /// The caller holds nothing from the file before `offset`: let those
    /// pages leave the resident set (memory-mapped files only; it only
    /// bounds RSS, so a failure changes nothing else).
    pub(super) fn release_before(&mut self, offset: usize) {
        if offset < self.released_until.saturating_add(RELEASE_STEP) {
            return;
        }
        if let Source::Mapped(map) = &self.file.bytes {
            let _ = crate::sys::drop_resident(map, self.released_until..offset);
        }
        self.released_until = offset;
    }

    /// Whether every event's samples carry a timestamp (PERF_SAMPLE_TIME):
    /// without one, time order is meaningless and file order stands.
    pub(super) fn all_events_timed(&self) -> bool {
        let attrs = self.file.layout.decoder.attrs();
        !attrs.is_empty() && attrs.iter().all(|a| a.sample_type & sample::TIME != 0)
    }

    /// Ends the iteration, turning the counters into warnings.
    fn finish(&mut self, problem: Option<String>) {
        self.done = true;
        self.warnings.extend(problem);
        if self.malformed > 0 {
            self.warnings.push(format!(
                "{} records were shorter than their event's sample layout says and were skipped",
                self.malformed
            ));
        }
        if self.before_attrs > 0 {
            self.warnings.push(format!(
                "{} samples came before any event attr (HEADER_ATTR record) and were skipped",
                self.before_attrs
            ));
        }
    }

    fn decoder(&self) -> &Decoder {
        self.pipe_decoder
            .as_ref()
            .unwrap_or(&self.file.layout.decoder)
    }

    fn decode<'b>(&self, frame: &Frame<'b>) -> Result<Record<'b>, Skip> {
        let decoder = self.decoder();
        if frame.kind == record_type::SAMPLE && decoder.attrs().is_empty() {
            return Err(Skip::BeforeAttrs);
        }
        decoder
            .decode(frame.kind, frame.misc, frame.body)
            .ok_or(Skip::Malformed)
    }

    fn count(&mut self, skip: Skip) {
        match skip {
            Skip::Malformed => self.malformed += 1,
            Skip::BeforeAttrs => self.before_attrs += 1,
        }
    }

    /// Pipe mode: the HEADER_ATTR record at `at` declares one more attr.
    fn attr_declared(&mut self, at: usize) {
        let (Some(pipe), Some(current)) = (&self.file.layout.pipe, &self.pipe_decoder) else {
            return;
        };
        let declared = pipe.offsets.partition_point(|&offset| offset <= at);
        if declared != current.attrs().len() {
            let attrs = self.file.layout.decoder.attrs();
            self.pipe_decoder = Some(Decoder::new(
                attrs.get(..declared).unwrap_or(attrs).to_vec(),
                pipe.ids.get(..declared).unwrap_or(&pipe.ids),
            ));
        }
    }

    /// Decompresses one COMPRESSED record (at file offset `at`) behind the
    /// records still waiting in `unpacked`; its records come out in its place.
    /// Its output is bounded by its size ([`MAX_UNPACK_RATIO`]), by
    /// [`MAX_UNPACKED_PER_RECORD`] and by the room left in the buffer.
    fn unpack(&mut self, payload: &[u8], at: usize) -> Result<(), String> {
        self.unpacked.drain(..self.unpacked_pos);
        self.unpacked_pos = 0;
        let zstd = match &mut self.zstd {
            Some(zstd) => zstd,
            None => self.zstd.insert(Box::new(ZstdStream::new()?)),
        };
        let by_ratio = payload.len().saturating_mul(MAX_UNPACK_RATIO);
        let room = self.max_buffered.saturating_sub(self.unpacked.len());
        let max_out = by_ratio.min(MAX_UNPACKED_PER_RECORD).min(room);
        let problem = match zstd.feed(payload, &mut self.unpacked, max_out) {
            Ok(()) => return Ok(()),
            Err(FeedError::Corrupt(e)) => {
                return Err(format!(
                    "the compressed records from file offset {at} on cannot be decompressed \
                     ({e}); showing the records before them"
                ))
            }
            Err(FeedError::TooLarge) if max_out == room => format!(
                "the records decompressed up to file offset {at} would hold more than {} bytes \
                 waiting for the rest of one record: a record inside the compressed data \
                 claims more bytes than there are; the file is corrupt from here on",
                self.max_buffered
            ),
            Err(FeedError::TooLarge) if max_out == by_ratio => format!(
                "the compressed record at file offset {at} decompresses to more than \
                 {MAX_UNPACK_RATIO} times its {} bytes, far more than real perf data does: \
                 the file is corrupt or crafted (a decompression bomb); it was not decoded",
                payload.len()
            ),
            Err(FeedError::TooLarge) => format!(
                "the compressed record at file offset {at} decompresses to more than {} MiB, \
                 more than any perf ring buffer holds: the file is corrupt or crafted; it \
                 was not decoded",
                MAX_UNPACKED_PER_RECORD >> 20
            ),
        };
        Err(format!("{problem}; showing the records before it"))
    }

    /// Tests: a smaller bound on the decompressed bytes held at once.
    #[cfg(test)]
    pub(super) fn with_max_buffered(mut self, max: usize) -> Self {
        self.max_buffered = max;
        self
    }

    /// Tests: the decompressed bytes held now.
    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.unpacked.len()
    }

    /// The next decompressed record, if a whole one is waiting.
    /// Its call chain is copied out: the buffer is reused for the next one.
    fn next_unpacked(&mut self) -> Option<Result<Record<'static>, Skip>> {
        let rest = self.unpacked.get(self.unpacked_pos..).unwrap_or_default();
        let (len, decoded) = match frame(rest, None) {
            Step::Record(frame) => (frame.len, self.decode(&frame).map(Record::into_owned)),
            // The rest of the record is in the next COMPRESSED record.
            Step::End | Step::Cut(_) => return None,
            Step::Stop(problem) => {
                self.finish(Some(problem));
                return None;
            }
        };
        self.unpacked_pos += len;
        Some(decoded)
    }
}

/// The zstd bytes of a COMPRESSED (all of the body) or COMPRESSED2 record
/// (`u64 data_size`, then the data, padded to 8 bytes).
fn compressed_payload(kind: u32, body: &[u8]) -> Option<&[u8]> {
    if kind == record_type::COMPRESSED {
        return Some(body);
    }
    let mut c = Cursor::new(body);
    let size = usize::try_from(c.u64()?).ok()?;
    c.bytes(size)
}

fn truncated(left: usize) -> String {
    format!(
        "file is truncated: {left} bytes at the end could not be decoded; showing what it holds"
    )
}

/// One record, framed but not decoded.
struct Frame<'a> {
    kind: u32,
    misc: u16,
    body: &'a [u8],
    /// Bytes to the next record.
    len: usize,
}

enum Step<'a> {
    Record(Frame<'a>),
    End,
    /// The bytes end inside a record; how many are left.
    Cut(usize),
    /// The data cannot be framed past here; the reason, as a warning.
    Stop(String),
}

/// Frames the record at the start of `rest` without decoding its body.
/// `offset` is its file offset, `None` inside decompressed data.
fn frame(rest: &[u8], offset: Option<usize>) -> Step<'_> {
    if rest.is_empty() {
        return Step::End;
    }
    let mut c = Cursor::new(rest);
    let (Some(kind), Some(misc), Some(size)) = (c.u32(), c.u16(), c.u16()) else {
        return Step::Cut(rest.len());
    };
    let size = usize::from(size);
    if size < EVENT_HEADER_SIZE {
        let place = match offset {
            Some(at) => format!("record at file offset {at}"),
            None => "a record inside compressed data".into(),
        };
        return Step::Stop(format!(
            "{place} has size {size}, less than its own header: the data is corrupt from \
             here on; showing the records before it"
        ));
    }
    let Some(body) = rest.get(EVENT_HEADER_SIZE..size) else {
        return Step::Cut(rest.len());
    };
    // Payloads that follow the record, outside its size.
    let after = match kind {
        record_type::AUXTRACE => Cursor::new(body)
            .u64()
            .and_then(|n| usize::try_from(n).ok()),
        // perf pads tracing data to 8 bytes and skips the padding too.
        record_type::HEADER_TRACING_DATA => Cursor::new(body)
            .u32()
            .and_then(|n| usize::try_from(n).ok()?.checked_add(7))
            .map(|n| n & !7),
        _ => Some(0),
    };
    match after.and_then(|n| size.checked_add(n)) {
        Some(len) if len <= rest.len() => Step::Record(Frame {
            kind,
            misc,
            body,
            len,
        }),
        _ => Step::Cut(rest.len()),
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        while !self.done {
            self.last_raw = None;
            // What the last COMPRESSED record held comes first, in its place.
            match self.next_unpacked() {
                Some(Ok(record)) => return Some(record),
                Some(Err(skip)) => {
                    self.count(skip);
                    continue;
                }
                None if self.done => break,
                None => {
                    if let Some(problem) = self.stop_after_unpacked.take() {
                        self.finish(Some(problem));
                        break;
                    }
                }
            }
            let file: &'a PerfFile = self.file;
            let in_unfinished_tail = file
                .layout
                .unfinished_from
                .is_some_and(|from| self.pos >= from);
            let frame = match frame(file.data_from(self.pos), Some(self.pos)) {
                Step::Record(frame) => frame,
                Step::Cut(_) | Step::Stop(_) if in_unfinished_tail => {
                    self.finish(None);
                    break;
                }
                Step::End => {
                    let left = self.unpacked.len() - self.unpacked_pos;
                    self.finish((left > 0).then(|| {
                        format!(
                            "the compressed data ends inside a record: {left} bytes could not \
                             be decoded; showing what it holds"
                        )
                    }));
                    break;
                }
                Step::Cut(left) => {
                    self.finish(Some(truncated(left)));
                    break;
                }
                Step::Stop(problem) => {
                    self.finish(Some(problem));
                    break;
                }
            };
            let at = self.pos;
            self.pos += frame.len;
            match frame.kind {
                record_type::COMPRESSED | record_type::COMPRESSED2 => {
                    let payload = compressed_payload(frame.kind, frame.body);
                    let unpacked = payload
                        .ok_or_else(|| {
                            format!("compressed record at file offset {at} is cut short")
                        })
                        .and_then(|payload| self.unpack(payload, at));
                    if let Err(problem) = unpacked {
                        self.stop_after_unpacked = Some(problem);
                    }
                    continue;
                }
                record_type::HEADER_ATTR => self.attr_declared(at),
                _ => {}
            }
            match self.decode(&frame) {
                Ok(record) => {
                    self.last_raw = file.data_from(at).get(..frame.len);
                    return Some(record);
                }
                Err(skip) => self.count(skip),
            }
        }
        None
    }
}

/// Everything `PerfFile` learns from the header and the feature sections
/// (in pipe mode: from the HEADER_* records).
struct Layout {
    decoder: Decoder,
    /// Byte range of the data section, clamped to the file.
    data: Range<usize>,
    /// See [`DataLayout::unfinished_from`].
    unfinished_from: Option<usize>,
    /// Feature sections by bit, each checked to lie inside the file.
    features: BTreeMap<u32, Range<usize>>,
    /// Pipe mode: sections rprof wrote as chunks ([`pipe::SECTION_CHUNK_MAGIC`]),
    /// reassembled; they take precedence over `features`.
    chunked_features: BTreeMap<u32, Vec<u8>>,
    metadata: Metadata,
    /// Problems found while opening (not fatal): shown with the records' warnings.
    warnings: Vec<String>,
    /// Pipe mode: where the attrs were declared.
    pipe: Option<PipeAttrs>,
}

/// The start of the file: a full header, or pipe mode's magic and size.
enum Header {
    File(FileHeader),
    Pipe,
}

/// `struct perf_file_header`, as read.
struct FileHeader {
    attr_size: u64,
    attrs: (u64, u64),
    data: (u64, u64),
    features: [u8; 32],
    /// rprof's recording state (`format::rprof_state`); 0 in perf's files.
    state: u64,
}

impl Layout {
    fn parse(bytes: &[u8], path: &Path) -> Result<Layout, ReadError> {
        let bad = |detail: String| ReadError::BadHeader {
            path: path.to_path_buf(),
            detail,
        };
        let header = match read_file_header(bytes, path)? {
            Header::File(header) => header,
            Header::Pipe => return Self::parse_pipe(bytes, path),
        };
        let mut warnings = Vec::new();
        let (attrs, ids) = read_attrs(bytes, &header, &mut warnings).map_err(bad)?;
        let DataLayout {
            data,
            features_at,
            unfinished_from,
        } = data_range(bytes, &header, &mut warnings).map_err(bad)?;
        let features = match features_at {
            Some(at) => feature_ranges(bytes, at, &header.features, &mut warnings),
            None => BTreeMap::new(),
        };
        let metadata = read_metadata(bytes, &features, &mut warnings);
        Ok(Layout {
            decoder: Decoder::new(attrs, &ids),
            data,
            unfinished_from,
            features,
            metadata,
            warnings,
            chunked_features: BTreeMap::new(),
            pipe: None,
        })
    }

    /// Pipe mode: one pass over the records for the attrs, the features and
    /// the build ids. Framing problems are left for the record iterator to
    /// report; what comes before them is used.
    fn parse_pipe(bytes: &[u8], path: &Path) -> Result<Layout, ReadError> {
        let data = PIPE_HEADER_SIZE as usize..bytes.len();
        let mut attrs = Vec::new();
        let mut pipe = PipeAttrs::default();
        let mut features = BTreeMap::new();
        let mut build_ids = Vec::new();
        let mut chunks = SectionChunks::default();
        let mut warnings = Vec::new();
        let mut pos = data.start;
        while let Step::Record(frame) = frame(bytes.get(pos..).unwrap_or_default(), Some(pos)) {
            let body_at = pos + EVENT_HEADER_SIZE;
            match frame.kind {
                record_type::HEADER_ATTR => match read_pipe_attr(frame.body) {
                    Some((attr, ids)) => {
                        attrs.push(attr);
                        pipe.offsets.push(pos);
                        pipe.ids.push(ids);
                    }
                    None => warnings.push(format!(
                        "the event attr record at file offset {pos} is malformed; ignored"
                    )),
                },
                record_type::HEADER_FEATURE => {
                    let bit = Cursor::new(frame.body).u64();
                    match bit.and_then(|b| u32::try_from(b).ok()) {
                        Some(bit) if bit < feature::FEAT_BITS => {
                            features.insert(bit, body_at + 8..body_at + frame.body.len());
                        }
                        _ => warnings.push(format!(
                            "the feature record at file offset {pos} is malformed; ignored"
                        )),
                    }
                }
                record_type::HEADER_EVENT_TYPE => {
                    if let Err(problem) = chunks.add(frame.body) {
                        warnings.push(format!("the record at file offset {pos} {problem}"));
                    }
                }
                record_type::HEADER_BUILD_ID => {
                    let record = bytes.get(pos..body_at + frame.body.len());
                    match record.and_then(read_build_ids) {
                        Some(mut ids) => build_ids.append(&mut ids),
                        None => warnings.push(format!(
                            "the build id record at file offset {pos} is malformed; ignored"
                        )),
                    }
                }
                _ => {}
            }
            pos += frame.len;
        }
        if attrs.is_empty() {
            return Err(ReadError::BadHeader {
                path: path.to_path_buf(),
                detail: "this pipe-mode file declares no events (no HEADER_ATTR record): \
                         the recording was cut short before it started"
                    .into(),
            });
        }
        let mut metadata = read_metadata(bytes, &features, &mut warnings);
        metadata.build_ids.append(&mut build_ids);
        let chunked_features = chunks.finish(&mut warnings);
        Ok(Layout {
            decoder: Decoder::new(attrs, &pipe.ids),
            data,
            // A pipe has no recorded size: a cut-off end is reported as such.
            unfinished_from: None,
            features,
            metadata,
            warnings,
            chunked_features,
            pipe: Some(pipe),
        })
    }
}

/// Feature sections that come in chunks (pipe mode, written by rprof; see
/// [`pipe::SECTION_CHUNK_MAGIC`]), wherever they appear in the stream.
#[derive(Default)]
struct SectionChunks {
    /// Per bit: the size the chunks declare, and the bytes so far.
    sections: BTreeMap<u32, (u64, Vec<u8>)>,
}

impl SectionChunks {
    /// Takes one HEADER_EVENT_TYPE body. Records without rprof's magic
    /// (perf's event types, before 2013) are ignored, as perf does. A chunk
    /// at offset 0 starts the section over: a later copy replaces an
    /// earlier one. On error, says what is wrong with the record.
    fn add(&mut self, body: &[u8]) -> Result<(), &'static str> {
        let mut c = Cursor::new(body);
        if c.u64() != Some(pipe::SECTION_CHUNK_MAGIC) {
            return Ok(());
        }
        let (Some(bit), Some(total), Some(offset)) = (c.u64(), c.u64(), c.u64()) else {
            return Err("is a cut-short section chunk; ignored");
        };
        let bit = u32::try_from(bit)
            .ok()
            .filter(|&b| b < feature::FEAT_BITS)
            .ok_or("is a section chunk for an impossible feature bit; ignored")?;
        if offset == 0 {
            self.sections.insert(bit, (total, Vec::new()));
        }
        let Some((declared, bytes)) = self.sections.get_mut(&bit) else {
            return Err("is a section chunk without the chunks before it; ignored");
        };
        if *declared != total || offset != bytes.len() as u64 || offset > total {
            self.sections.remove(&bit);
            return Err("is a section chunk out of place; the section is ignored");
        }
        let data = c.bytes(c.remaining()).unwrap_or_default();
        let take = usize::try_from(total - offset).map_or(data.len(), |left| left.min(data.len()));
        bytes.extend_from_slice(data.get(..take).unwrap_or_default());
        Ok(())
    }

    /// The complete sections; a warning for each one cut short.
    fn finish(self, warnings: &mut Vec<String>) -> BTreeMap<u32, Vec<u8>> {
        let mut complete = BTreeMap::new();
        for (bit, (total, bytes)) in self.sections {
            if bytes.len() as u64 == total {
                complete.insert(bit, bytes);
            } else if bit == feature::RPROF_SYMBOLS {
                warnings.push(format!(
                    "the embedded symbols end after {} of their {total} bytes (the recording \
                     was stopped while writing them); names come from this machine's binaries",
                    bytes.len()
                ));
            } else {
                warnings.push(format!(
                    "feature section {bit} ends after {} of its {total} bytes; ignored",
                    bytes.len()
                ));
            }
        }
        complete
    }
}

/// PERF_RECORD_HEADER_ATTR's body: the attr (its own size), then u64 ids.
fn read_pipe_attr(body: &[u8]) -> Option<(EventAttr, Vec<u64>)> {
    let attr = EventAttr::from_bytes(body)?;
    let declared = Cursor::new(body.get(4..)?).u32()?;
    let ids = body.get(usize::try_from(declared.max(ATTR_SIZE_VER0)).ok()?..)?;
    let ids = Cursor::new(ids).u64s((ids.len() / 8) as u64)?;
    Some((attr, ids))
}

fn read_file_header(bytes: &[u8], path: &Path) -> Result<Header, ReadError> {
    let path = path.to_path_buf();
    let bad = |detail: &str| ReadError::BadHeader {
        path: path.clone(),
        detail: detail.to_string(),
    };
    let truncated = || bad("the file ends inside the header (truncated?)");
    if bytes.is_empty() {
        return Err(ReadError::Empty { path: path.clone() });
    }
    let Some(magic) = bytes.get(..8) else {
        return Err(if MAGIC.starts_with(bytes) {
            truncated()
        } else {
            ReadError::NotPerfData { path: path.clone() }
        });
    };
    if magic == MAGIC_SWAPPED {
        return Err(bad(
            "written on a host of the other byte order, which rprof does not read",
        ));
    }
    if magic == b"PERFFILE" {
        return Err(bad(
            "version 1 perf.data (perf before 2011) is not supported",
        ));
    }
    if magic != MAGIC {
        return Err(ReadError::NotPerfData { path: path.clone() });
    }
    let mut c = Cursor::new(bytes);
    c.skip(8).ok_or_else(truncated)?;
    let size = c.u64().ok_or_else(truncated)?;
    if size == PIPE_HEADER_SIZE {
        return Ok(Header::Pipe);
    }
    if size != FILE_HEADER_SIZE && size != FILE_HEADER_SIZE_NO_FEATURES {
        return Err(bad(&format!("unexpected header size {size}")));
    }
    let attr_size = c.u64().ok_or_else(truncated)?;
    let mut section = || Some((c.u64()?, c.u64()?));
    let attrs = section().ok_or_else(truncated)?;
    let data = section().ok_or_else(truncated)?;
    let (state, _) = section().ok_or_else(truncated)?;
    let mut features = [0u8; 32];
    if size == FILE_HEADER_SIZE {
        features = c.array().ok_or_else(truncated)?;
    }
    Ok(Header::File(FileHeader {
        attr_size,
        attrs,
        data,
        features,
        state,
    }))
}

/// `(offset, size)` from the file as a checked range inside `bytes`.
fn range_in(bytes: &[u8], (offset, size): (u64, u64)) -> Option<Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    (end <= bytes.len()).then_some(start..end)
}

type AttrsAndIds = (Vec<EventAttr>, Vec<Vec<u64>>);

fn read_attrs(
    bytes: &[u8],
    header: &FileHeader,
    warnings: &mut Vec<String>,
) -> Result<AttrsAndIds, String> {
    let entry_size = usize::try_from(header.attr_size).unwrap_or(usize::MAX);
    let min = ATTR_SIZE_VER0 as usize + FILE_SECTION_SIZE as usize;
    if entry_size < min || entry_size > 1 << 16 {
        return Err(format!("attr size {} is out of range", header.attr_size));
    }
    let section = range_in(bytes, header.attrs)
        .ok_or("the attrs section lies past the end of the file (truncated?)")?;
    let table = bytes.get(section).unwrap_or_default();
    if table.len() < entry_size {
        return Err("the file has no events (empty attrs section)".into());
    }
    let mut attrs = Vec::new();
    let mut ids = Vec::new();
    for (index, entry) in table.chunks_exact(entry_size).enumerate() {
        let (attr_bytes, ids_section) = entry.split_at(entry_size - FILE_SECTION_SIZE as usize);
        let attr = EventAttr::from_bytes(attr_bytes)
            .ok_or_else(|| format!("event {index}: attr declares more bytes than it has"))?;
        let mut c = Cursor::new(ids_section);
        let section = (c.u64().unwrap_or(0), c.u64().unwrap_or(0));
        let event_ids = range_in(bytes, section)
            .and_then(|r| Cursor::new(bytes.get(r.clone())?).u64s((r.len() / 8) as u64));
        if event_ids.is_none() {
            warnings.push(format!(
                "event {index}: its sample ids lie past the end of the file; samples may be \
                 attributed to the first event"
            ));
        }
        attrs.push(attr);
        ids.push(event_ids.unwrap_or_default());
    }
    Ok((attrs, ids))
}

/// Where the data section lies, clamped to the file.
struct DataLayout {
    data: Range<usize>,
    /// Where the feature table starts, when it can be trusted.
    features_at: Option<usize>,
    /// Past this offset the data is the unfinished tail of a recording that
    /// was killed: records are read while they frame, and the first bytes
    /// that do not end the reading quietly (the open already warned).
    unfinished_from: Option<usize>,
}

fn data_range(
    bytes: &[u8],
    header: &FileHeader,
    warnings: &mut Vec<String>,
) -> Result<DataLayout, String> {
    let (offset, size) = header.data;
    let start = usize::try_from(offset)
        .ok()
        .filter(|&s| s <= bytes.len())
        .ok_or("the data section starts past the end of the file (truncated?)")?;
    let has_features = header.features.iter().any(|&b| b != 0);
    let recorded_end = start.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
    // perf sets its feature bits at the start and the data size only at the
    // end; rprof refreshes the size as it goes and sets the bits at the end.
    // Either way a killed recording leaves records past the recorded size.
    // rprof's state word says so even when nothing went past it.
    let unfinished = match header.state {
        rprof_state::RECORDING | rprof_state::DISK_FULL => true,
        // Whatever follows the data is a partly written feature table.
        rprof_state::DATA_COMPLETE => false,
        _ if size == 0 => start < bytes.len(),
        _ => !has_features && recorded_end < bytes.len(),
    };
    if header.state == rprof_state::DATA_COMPLETE && !has_features {
        warnings.push(
            "rprof was stopped while it embedded symbols: the records are complete, the names \
             come from this machine's binaries"
                .into(),
        );
    }
    if unfinished {
        let (why, unfinished_from) = if header.state == rprof_state::DISK_FULL {
            // The size covers what landed, which may end inside a record.
            ("stopped early because the disk was full", start)
        } else {
            (
                "not finished cleanly (killed?)",
                recorded_end.min(bytes.len()),
            )
        };
        warnings.push(format!(
            "the recording was {why}; reading the records up to the end of the file"
        ));
        return Ok(DataLayout {
            data: start..bytes.len(),
            features_at: None,
            unfinished_from: Some(unfinished_from),
        });
    }
    match range_in(bytes, header.data) {
        Some(range) => {
            let end = range.end;
            Ok(DataLayout {
                data: range,
                features_at: has_features.then_some(end),
                unfinished_from: None,
            })
        }
        None => {
            if has_features {
                warnings.push("the feature sections lie past the end of the file; ignored".into());
            }
            Ok(DataLayout {
                data: start..bytes.len(),
                features_at: None,
                unfinished_from: None,
            })
        }
    }
}

/// The feature table: one `perf_file_section` per set bit, in bit order.
fn feature_ranges(
    bytes: &[u8],
    table_at: usize,
    bitmap: &[u8; 32],
    warnings: &mut Vec<String>,
) -> BTreeMap<u32, Range<usize>> {
    let mut c = Cursor::new(bytes.get(table_at..).unwrap_or_default());
    let mut features = BTreeMap::new();
    for bit in 0..feature::FEAT_BITS {
        let set = bitmap
            .get((bit / 8) as usize)
            .is_some_and(|byte| byte & (1 << (bit % 8)) != 0);
        if !set {
            continue;
        }
        let Some(section) = c.u64().zip(c.u64()) else {
            warnings
                .push("the feature section table is cut short; some metadata is missing".into());
            break;
        };
        match range_in(bytes, section) {
            Some(range) => {
                features.insert(bit, range);
            }
            None => warnings.push(format!(
                "feature section {bit} lies outside the file; ignored"
            )),
        }
    }
    features
}

fn read_metadata(
    bytes: &[u8],
    features: &BTreeMap<u32, Range<usize>>,
    warnings: &mut Vec<String>,
) -> Metadata {
    let mut meta = Metadata::default();
    for (&bit, range) in features {
        let raw = bytes.get(range.clone()).unwrap_or_default();
        let mut c = Cursor::new(raw);
        let ok = match bit {
            feature::HOSTNAME => c.perf_string().map(|s| meta.hostname = Some(s)),
            feature::OSRELEASE => c.perf_string().map(|s| meta.osrelease = Some(s)),
            feature::ARCH => c.perf_string().map(|s| meta.arch = Some(s)),
            feature::NRCPUS => c.u32().zip(c.u32()).map(|(available, online)| {
                meta.nrcpus = Some((online, available));
            }),
            feature::CMDLINE => read_strings(&mut c).map(|v| meta.cmdline = v),
            feature::EVENT_DESC => read_event_names(&mut c).map(|v| meta.event_names = v),
            feature::BUILD_ID => read_build_ids(raw).map(|v| meta.build_ids = v),
            _ => Some(()),
        };
        if ok.is_none() {
            warnings.push(format!("feature section {bit} is malformed; ignored"));
        }
    }
    meta
}

/// HEADER_CMDLINE: u32 count, then strings.
fn read_strings(c: &mut Cursor<'_>) -> Option<Vec<String>> {
    let n = c.u32()?;
    (0..n).map(|_| c.perf_string()).collect()
}

/// HEADER_EVENT_DESC: u32 nr, u32 attr size, then per event: attr, u32
/// nr_ids, name, ids.
fn read_event_names(c: &mut Cursor<'_>) -> Option<Vec<String>> {
    let nr = c.u32()?;
    let attr_size = usize::try_from(c.u32()?).ok()?;
    let mut names = Vec::new();
    for _ in 0..nr {
        c.skip(attr_size)?;
        let nr_ids = c.u32()?;
        names.push(c.perf_string()?);
        c.skip_n(u64::from(nr_ids), 8)?;
    }
    Some(names)
}

/// HEADER_BUILD_ID: `perf_record_header_build_id` entries (header, pid,
/// 24-byte build id area, NUL-padded file name).
fn read_build_ids(raw: &[u8]) -> Option<Vec<(i32, Vec<u8>, String)>> {
    const FIXED: usize = EVENT_HEADER_SIZE + 4 + 24;
    let mut c = Cursor::new(raw);
    let mut out = Vec::new();
    while c.remaining() > 0 {
        let _kind = c.u32()?;
        let misc = c.u16()?;
        let size = usize::from(c.u16()?);
        let pid = c.i32()?;
        let area = c.bytes(24)?;
        let name = c.bytes(size.checked_sub(FIXED)?)?;
        // Old files have no size byte: build ids were 20-byte SHA-1s.
        let len = if misc & misc::BUILD_ID_SIZE != 0 {
            usize::from(area.get(20).copied().unwrap_or(20)).min(20)
        } else {
            20
        };
        out.push((pid, area.get(..len)?.to_vec(), c_string(name)));
    }
    Some(out)
}
