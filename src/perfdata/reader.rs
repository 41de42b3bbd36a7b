//! Reads perf.data files (rprof's and Linux perf's). Never panics on
//! malformed input: every length is checked and errors say what is wrong.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::attr::EventAttr;
use super::cursor::{c_string, Cursor};
use super::decode::Decoder;
use super::format::{
    feature, misc, record_type, ATTR_SIZE_VER0, EVENT_HEADER_SIZE, FILE_HEADER_SIZE,
    FILE_HEADER_SIZE_NO_FEATURES, FILE_SECTION_SIZE, MAGIC, MAGIC_SWAPPED, PIPE_HEADER_SIZE,
};
use super::records::Record;

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
    #[error("{path}: perf pipe-mode files are not supported yet; record to a file with -o")]
    PipeMode { path: PathBuf },
    #[error("{path}: corrupt header: {detail}")]
    BadHeader { path: PathBuf, detail: String },
    #[error("{path}: corrupt RPROF_SYMBOLS section: {detail}")]
    BadSymbols { path: PathBuf, detail: String },
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
    decoder: Decoder,
    /// Byte range of the data section, clamped to the file.
    data: Range<usize>,
    /// Feature sections by bit, each checked to lie inside the file.
    features: BTreeMap<u32, Range<usize>>,
    metadata: Metadata,
    /// Problems found while opening (not fatal): shown with the records' warnings.
    warnings: Vec<String>,
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
        let len = file.metadata().map_err(open_err)?.len();
        if len == 0 {
            return Err(ReadError::Empty {
                path: path.to_path_buf(),
            });
        }
        let bytes = match map_read_only(&file) {
            Ok(map) => Source::Mapped(map),
            // Not mappable (a pipe or special file): read it instead.
            Err(_) => Source::Owned(std::fs::read(path).map_err(open_err)?),
        };
        Self::parse(bytes, path)
    }

    /// For tests and benches: parse an in-memory file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<PerfFile, ReadError> {
        Self::parse(Source::Owned(bytes), Path::new("<memory>"))
    }

    fn parse(bytes: Source, path: &Path) -> Result<PerfFile, ReadError> {
        let layout = Layout::parse(bytes.as_slice(), path)?;
        Ok(PerfFile {
            bytes,
            decoder: layout.decoder,
            data: layout.data,
            features: layout.features,
            metadata: layout.metadata,
            warnings: layout.warnings,
        })
    }

    pub fn attrs(&self) -> &[EventAttr] {
        self.decoder.attrs()
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Raw bytes of a feature section (`format::feature::*`), if present.
    pub fn feature(&self, bit: u32) -> Option<&[u8]> {
        let range = self.features.get(&bit)?;
        self.bytes.as_slice().get(range.clone())
    }

    /// Problems found while opening the file (e.g. a header that was never
    /// finalized). The record iterators add their own.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Records in file order. Stops at the first undecodable record with a
    /// warning (see [`Records::warnings`] after iterating) rather than an
    /// error, so a truncated recording still reports what it holds.
    pub fn records(&self) -> Records<'_> {
        Records {
            file: self,
            pos: self.data.start,
            done: false,
            compressed: 0,
            malformed: 0,
            warnings: Vec::new(),
        }
    }

    /// All records in file order, plus every warning (opening and decoding).
    pub fn read_records(&self) -> (Vec<Record>, Vec<String>) {
        let mut iter = self.records();
        let records: Vec<Record> = iter.by_ref().collect();
        let mut warnings = self.warnings.clone();
        warnings.append(&mut iter.warnings);
        (records, warnings)
    }

    /// All records ordered by time (stable; records without a timestamp keep
    /// their place after the record before them), plus warnings (truncation,
    /// unknown records) collected while decoding.
    pub fn sorted_records(&self) -> (Vec<Record>, Vec<String>) {
        let (records, warnings) = self.read_records();
        let mut last = 0;
        let mut keyed: Vec<(u64, Record)> = records
            .into_iter()
            .map(|r| {
                last = r.time().unwrap_or(last);
                (last, r)
            })
            .collect();
        keyed.sort_by_key(|(time, _)| *time); // stable
        (keyed.into_iter().map(|(_, r)| r).collect(), warnings)
    }
}

#[allow(unsafe_code)]
fn map_read_only(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the map is read-only and private to this process. If another
    // process truncates the file while we read it, accesses past the new
    // end fault (SIGBUS); rprof accepts that risk like perf and every other
    // mmap-based reader, and never hands out data that outlives the map.
    unsafe { Mmap::map(file) }
}

/// Iterator over the data section's records; see [`PerfFile::records`].
pub struct Records<'a> {
    file: &'a PerfFile,
    pos: usize,
    done: bool,
    compressed: usize,
    malformed: usize,
    warnings: Vec<String>,
}

impl<'a> Records<'a> {
    /// Warnings collected so far (complete once the iterator is exhausted).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Ends the iteration, turning the counters into warnings.
    fn finish(&mut self, problem: Option<String>) {
        self.done = true;
        self.warnings.extend(problem);
        if self.compressed > 0 {
            self.warnings.push(format!(
                "{} compressed records (perf record -z) were skipped: rprof cannot \
                 decompress them yet; record without -z",
                self.compressed
            ));
        }
        if self.malformed > 0 {
            self.warnings.push(format!(
                "{} records were shorter than their event's sample layout says and were skipped",
                self.malformed
            ));
        }
    }

    fn truncated(left: usize) -> Step<'a> {
        Step::Stop(format!(
            "file is truncated: {left} bytes at the end could not be decoded; showing what it holds"
        ))
    }

    /// Frames the record at `pos` without decoding its body.
    fn frame(&self) -> Step<'a> {
        let file: &'a PerfFile = self.file;
        let rest = file
            .bytes
            .as_slice()
            .get(self.pos..file.data.end)
            .unwrap_or_default();
        if rest.is_empty() {
            return Step::End;
        }
        let mut c = Cursor::new(rest);
        let (Some(kind), Some(misc), Some(size)) = (c.u32(), c.u16(), c.u16()) else {
            return Self::truncated(rest.len());
        };
        let size = usize::from(size);
        if size < EVENT_HEADER_SIZE {
            return Step::Stop(format!(
                "record at file offset {} has size {size}, less than its own header: the data \
                 is corrupt from here on; showing the records before it",
                self.pos
            ));
        }
        let Some(body) = rest.get(EVENT_HEADER_SIZE..size) else {
            return Self::truncated(rest.len());
        };
        let mut len = size;
        if kind == record_type::AUXTRACE {
            // The AUX payload follows the record, outside its size.
            let payload = Cursor::new(body)
                .u64()
                .and_then(|n| usize::try_from(n).ok());
            match payload.and_then(|n| len.checked_add(n)) {
                Some(total) if total <= rest.len() => len = total,
                _ => return Self::truncated(rest.len()),
            }
        }
        Step::Record(Frame {
            kind,
            misc,
            body,
            len,
        })
    }
}

/// One record in the data section, framed but not decoded.
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
    /// The data cannot be framed past here; the reason, as a warning.
    Stop(String),
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        while !self.done {
            let frame = match self.frame() {
                Step::Record(frame) => frame,
                Step::End => {
                    self.finish(None);
                    break;
                }
                Step::Stop(problem) => {
                    self.finish(Some(problem));
                    break;
                }
            };
            self.pos += frame.len;
            if frame.kind == record_type::COMPRESSED {
                self.compressed += 1;
            }
            match self.file.decoder.decode(frame.kind, frame.misc, frame.body) {
                Some(record) => return Some(record),
                None => self.malformed += 1,
            }
        }
        None
    }
}

/// Everything `PerfFile` learns from the header and the feature sections.
struct Layout {
    decoder: Decoder,
    data: Range<usize>,
    features: BTreeMap<u32, Range<usize>>,
    metadata: Metadata,
    warnings: Vec<String>,
}

/// `struct perf_file_header`, as read.
struct FileHeader {
    attr_size: u64,
    attrs: (u64, u64),
    data: (u64, u64),
    features: [u8; 32],
}

impl Layout {
    fn parse(bytes: &[u8], path: &Path) -> Result<Layout, ReadError> {
        let bad = |detail: String| ReadError::BadHeader {
            path: path.to_path_buf(),
            detail,
        };
        let header = read_file_header(bytes, path)?;
        let mut warnings = Vec::new();
        let (attrs, ids) = read_attrs(bytes, &header, &mut warnings).map_err(bad)?;
        let (data, features_at) = data_range(bytes, &header, &mut warnings).map_err(bad)?;
        let features = match features_at {
            Some(at) => feature_ranges(bytes, at, &header.features, &mut warnings),
            None => BTreeMap::new(),
        };
        let metadata = read_metadata(bytes, &features, &mut warnings);
        Ok(Layout {
            decoder: Decoder::new(attrs, &ids),
            data,
            features,
            metadata,
            warnings,
        })
    }
}

fn read_file_header(bytes: &[u8], path: &Path) -> Result<FileHeader, ReadError> {
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
        return Err(ReadError::PipeMode { path: path.clone() });
    }
    if size != FILE_HEADER_SIZE && size != FILE_HEADER_SIZE_NO_FEATURES {
        return Err(bad(&format!("unexpected header size {size}")));
    }
    let attr_size = c.u64().ok_or_else(truncated)?;
    let mut section = || Some((c.u64()?, c.u64()?));
    let attrs = section().ok_or_else(truncated)?;
    let data = section().ok_or_else(truncated)?;
    let _event_types = section().ok_or_else(truncated)?;
    let mut features = [0u8; 32];
    if size == FILE_HEADER_SIZE {
        features = c.array().ok_or_else(truncated)?;
    }
    Ok(FileHeader {
        attr_size,
        attrs,
        data,
        features,
    })
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

/// The data section, clamped to the file, and where the feature table
/// starts when it can be trusted.
fn data_range(
    bytes: &[u8],
    header: &FileHeader,
    warnings: &mut Vec<String>,
) -> Result<(Range<usize>, Option<usize>), String> {
    let (offset, size) = header.data;
    let start = usize::try_from(offset)
        .ok()
        .filter(|&s| s <= bytes.len())
        .ok_or("the data section starts past the end of the file (truncated?)")?;
    let has_features = header.features.iter().any(|&b| b != 0);
    if size == 0 && !has_features && start < bytes.len() {
        // Killed before the header was refreshed: the rest is records.
        warnings.push(
            "the header's data size is 0 (the recording was not finished cleanly?); \
             reading records up to the end of the file"
                .into(),
        );
        return Ok((start..bytes.len(), None));
    }
    match range_in(bytes, header.data) {
        Some(range) => {
            let end = range.end;
            Ok((range, has_features.then_some(end)))
        }
        None => {
            if has_features {
                warnings.push("the feature sections lie past the end of the file; ignored".into());
            }
            Ok((start..bytes.len(), None))
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
