//! Writes a perf.data file incrementally: header, attrs, the data section as
//! it arrives from the rings, then feature sections at [`PerfDataWriter::finish`].
//!
//! Safety of the output path: the file is created with mode 0600 and
//! `O_EXCL|O_NOFOLLOW` after an existing regular file was renamed to
//! `FILE.old` (as perf does); a symlink at the path is refused, never
//! followed. The header's data size is refreshed on every
//! [`PerfDataWriter::flush`], so a recording killed mid-way is still a
//! readable file, and the header's state word
//! ([`format::rprof_state`](super::format::rprof_state)) says until the
//! final header write that the recording is unfinished, or that the disk
//! filled up.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::format::{
    feature, rprof_state, FILE_HEADER_SIZE, FILE_SECTION_SIZE, HEADER_DATA_SIZE_AT,
    HEADER_STATE_AT, MAGIC,
};
use crate::abi::cursor::{align_up, ByteWriter};
use crate::abi::EventAttr;
use crate::abi::NAME_ALIGN;
use crate::abi::{misc, ATTR_SIZE_VER7, EVENT_HEADER_SIZE};
use crate::perfdata::{PerfFile, ReadError};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: is a symbolic link; rprof does not write through symlinks (choose another -o path)")]
    Symlink { path: PathBuf },
    #[error("{path} is a directory; give a file path for the recording, e.g. -o {}", path.join("rprof.data").display())]
    IsDirectory { path: PathBuf },
    #[error("{path} is not a regular file (a device, pipe or socket); recordings are written to regular files only: give a file path with -o")]
    NotRegularFile { path: PathBuf },
    #[error("cannot create {path}: {source} (choose a writable path with -o)")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the recording to {name}: {source}")]
    Stream {
        name: String,
        source: std::io::Error,
    },
    /// The reader of a pipe went away (EPIPE). Not an `io::Error` source:
    /// this is the end of a recording, not a quiet `rprof report | head`.
    #[error(
        "{name} was closed by its reader (broken pipe) after {written} bytes: the recording \
         stopped there"
    )]
    OutputClosed { name: String, written: u64 },
    #[error(
        "event {event} has {ids} sample ids (one per CPU and thread), more than a pipe-mode \
         stream can declare ({max}); record to a file with -o FILE, or fewer threads or CPUs"
    )]
    TooManyIds {
        event: usize,
        ids: usize,
        max: usize,
    },
    #[error(
        "writing {path}: {source}: the disk is full, so the recording stopped there; the \
         {written} bytes of records written before stay readable (`rprof report -i {path}`). \
         Free some space, or record to another file system with -o"
    )]
    DiskFull {
        path: PathBuf,
        /// Data bytes that reached the file.
        written: u64,
        source: std::io::Error,
    },
}

/// Feature sections written at the end (`HEADER_*`). Empty fields are omitted.
#[derive(Debug, Clone, Default)]
pub struct FeatureData {
    pub hostname: Option<String>,
    pub osrelease: Option<String>,
    pub version: Option<String>,
    pub arch: Option<String>,
    /// (online, available)
    pub nrcpus: Option<(u32, u32)>,
    pub cmdline: Vec<String>,
    /// Event names in attr order (HEADER_EVENT_DESC), with each attr's ids.
    pub event_names: Vec<String>,
    /// (pid, build id bytes, file name) for HEADER_BUILD_ID; pid is the
    /// machine's, -1 for the host (perf ignores host files under other pids).
    pub build_ids: Vec<(i32, Vec<u8>, String)>,
    /// Encoded `symbolize::SymbolTable` for the RPROF_SYMBOLS section.
    pub rprof_symbols: Option<Vec<u8>>,
    /// For the RPROF_UNWOUND section: set when `record` unwound the stacks.
    pub rprof_unwound: Option<super::UnwoundStacks>,
    /// Tracefs format files of the recorded tracepoints (RPROF_TRACE_FORMATS).
    pub trace_formats: Vec<String>,
    /// perf's HEADER_TRACING_DATA for those tracepoints, without which
    /// Linux perf refuses a file with tracepoint events. Files only: a
    /// pipe-mode stream would need a HEADER_TRACING_DATA record.
    pub perf_tracing_data: Option<Vec<u8>>,
}

/// Where `record` writes a recording: a perf.data file ([`PerfDataWriter`],
/// `-o FILE`) or a pipe-mode stream ([`PipeWriter`](super::pipe::PipeWriter),
/// `-o -`). The record loop only appends records and flushes; at the end
/// the recording reads its records back (to embed symbols), then finishes.
pub trait DataSink {
    /// Appends raw records (already in perf record format, e.g. copied from a ring).
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), WriteError>;
    /// Writes out buffered records (called about every 100 ms while recording).
    fn flush(&mut self) -> Result<(), WriteError>;
    /// Flushes; every record has been written, symbol embedding comes next.
    fn mark_data_complete(&mut self) -> Result<(), WriteError>;
    /// The records written so far, opened for reading (symbol embedding).
    fn read_back(&mut self) -> Result<PerfFile, ReadError>;
    /// Writes what comes after the records (feature sections, symbols) and
    /// returns the size of the whole recording in bytes.
    fn finish(self: Box<Self>, features: &FeatureData) -> Result<u64, WriteError>;
}

/// One attr and the sample ids of the fds opened with it.
#[derive(Debug, Clone)]
pub struct AttrEntry {
    pub attr: EventAttr,
    pub ids: Vec<u64>,
}

pub struct PerfDataWriter {
    file: File,
    path: PathBuf,
    attrs: Vec<AttrEntry>,
    /// Bytes per attr in this file (see [`EventAttr::file_size`]).
    attr_size: u32,
    attrs_section: (u64, u64),
    data_offset: u64,
    /// Data bytes accepted so far, buffered ones included.
    data_size: u64,
    /// Data bytes that reached the file.
    written: u64,
    /// The data size the header on disk states.
    header_data_size: u64,
    buf: Vec<u8>,
    /// Finished, or stopped by a failed write: dropping leaves the file alone.
    closed: bool,
}

/// Data is written in chunks of about this size.
const BUFFER_SIZE: usize = 1 << 20;

impl PerfDataWriter {
    /// Creates `path` safely (see module docs) and writes the header and attrs.
    pub fn create(path: &Path, attrs: &[AttrEntry]) -> Result<PerfDataWriter, WriteError> {
        let file = create_file(path)?;
        let attr_size = attrs
            .iter()
            .map(|e| e.attr.file_size())
            .max()
            .unwrap_or(ATTR_SIZE_VER7);
        let mut writer = PerfDataWriter {
            file,
            path: path.to_path_buf(),
            attrs: attrs.to_vec(),
            attr_size,
            attrs_section: (0, 0),
            data_offset: 0,
            data_size: 0,
            written: 0,
            header_data_size: 0,
            buf: Vec::with_capacity(BUFFER_SIZE),
            closed: false,
        };
        writer.write_prologue()?;
        Ok(writer)
    }

    /// Header, then each attr's ids, then the attrs (perf's order); the file
    /// position ends where the data section starts.
    fn write_prologue(&mut self) -> Result<(), WriteError> {
        let mut w = ByteWriter::default();
        w.bytes(&[0; FILE_HEADER_SIZE as usize]);
        let mut id_sections = Vec::new();
        for entry in &self.attrs {
            id_sections.push((w.buf.len() as u64, 8 * entry.ids.len() as u64));
            for &id in &entry.ids {
                w.u64(id);
            }
        }
        let attrs_offset = w.buf.len() as u64;
        for (entry, (offset, size)) in self.attrs.iter().zip(id_sections) {
            w.bytes(&entry.attr.to_bytes_sized(self.attr_size))
                .u64(offset)
                .u64(size);
        }
        self.attrs_section = (attrs_offset, w.buf.len() as u64 - attrs_offset);
        self.data_offset = w.buf.len() as u64;
        let header = self.header_bytes(0, &[0; 32], rprof_state::RECORDING);
        w.buf[..header.len()].copy_from_slice(&header);
        self.file.write_all(&w.buf).map_err(|e| self.io(e))
    }

    /// The file header; `state` goes into the `event_types` offset, which
    /// perf ignores (see [`rprof_state`]).
    fn header_bytes(&self, data_size: u64, features: &[u8; 32], state: u64) -> Vec<u8> {
        let mut w = ByteWriter::default();
        w.bytes(MAGIC)
            .u64(FILE_HEADER_SIZE)
            .u64(u64::from(self.attr_size) + FILE_SECTION_SIZE)
            .u64(self.attrs_section.0)
            .u64(self.attrs_section.1)
            .u64(self.data_offset)
            .u64(data_size)
            .u64(state) // event_types: ignored by perf
            .u64(0)
            .bytes(features);
        w.buf
    }

    fn io(&self, source: std::io::Error) -> WriteError {
        WriteError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends raw records (already in perf record format, e.g. copied from a ring).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        if self.buf.len() + bytes.len() > BUFFER_SIZE {
            self.write_buffer()?;
        }
        if bytes.len() >= BUFFER_SIZE {
            self.write_data(bytes)?;
        } else {
            self.buf.extend_from_slice(bytes);
        }
        self.data_size += bytes.len() as u64;
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), WriteError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.write_data(&buf);
        buf.clear();
        self.buf = buf;
        result
    }

    /// Appends at the end of the file, counting the bytes that land (a
    /// full disk may take part of a write).
    fn write_data(&mut self, mut bytes: &[u8]) -> Result<(), WriteError> {
        while !bytes.is_empty() {
            match self.file.write(bytes) {
                Ok(0) => return Err(self.fail(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.written += n as u64;
                    bytes = &bytes[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }

    /// A write after the prologue failed; the recording cannot go on. On a
    /// full disk the file keeps the data that landed (a partly written
    /// feature table is cut off) and the header, rewritten in place, covers
    /// it and says the disk filled up.
    fn fail(&mut self, source: io::Error) -> WriteError {
        self.closed = true;
        if !matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
            return self.io(source);
        }
        let _ = self.file.set_len(self.data_offset + self.written);
        let header = self.header_bytes(self.written, &[0; 32], rprof_state::DISK_FULL);
        let _ = self.file.write_all_at(&header, 0);
        WriteError::DiskFull {
            path: self.path.clone(),
            written: self.written,
            source,
        }
    }

    /// Bytes of data section written so far.
    pub fn data_size(&self) -> u64 {
        self.data_size
    }

    /// Flushes buffered data and rewrites the header's data size (one
    /// 8-byte pwrite, only when it changed), so a kill loses nothing that
    /// was flushed.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.write_buffer()?;
        if self.header_data_size != self.data_size {
            self.file
                .write_all_at(&self.data_size.to_ne_bytes(), HEADER_DATA_SIZE_AT)
                .map_err(|e| self.io(e))?;
            self.header_data_size = self.data_size;
        }
        Ok(())
    }

    /// Flushes, and marks every record as on disk: a file left this way
    /// (rprof interrupted while embedding symbols) is reported as complete
    /// but without embedded symbols, not as killed.
    pub fn mark_data_complete(&mut self) -> Result<(), WriteError> {
        self.flush()?;
        self.file
            .write_all_at(&rprof_state::DATA_COMPLETE.to_ne_bytes(), HEADER_STATE_AT)
            .map_err(|e| self.io(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes feature sections and the final header; returns the file size.
    pub fn finish(mut self, features: &FeatureData) -> Result<u64, WriteError> {
        self.write_buffer()?;
        debug_assert_eq!(self.written, self.data_size);
        let sections = encode_features(features, &self.attrs, self.attr_size);
        // The table sits right after the data; perf finds it there.
        let table_at = self.data_offset + self.data_size;
        let mut content_at = table_at + FILE_SECTION_SIZE * sections.len() as u64;
        let mut table = ByteWriter::default();
        let mut bitmap = [0u8; 32];
        for (bit, bytes) in &sections {
            table.u64(content_at).u64(bytes.len() as u64);
            content_at += bytes.len() as u64;
            bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
        }
        for (_, bytes) in &sections {
            table.bytes(bytes);
        }
        if let Err(e) = self.file.write_all(&table.buf) {
            return Err(self.fail(e));
        }
        let header = self.header_bytes(self.data_size, &bitmap, rprof_state::FINISHED);
        self.file.write_all_at(&header, 0).map_err(|e| self.io(e))?;
        self.closed = true;
        Ok(content_at)
    }
}

impl DataSink for PerfDataWriter {
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        PerfDataWriter::write_raw(self, bytes)
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        PerfDataWriter::flush(self)
    }

    fn mark_data_complete(&mut self) -> Result<(), WriteError> {
        PerfDataWriter::mark_data_complete(self)
    }

    fn read_back(&mut self) -> Result<PerfFile, ReadError> {
        PerfFile::open(&self.path)
    }

    fn finish(self: Box<Self>, features: &FeatureData) -> Result<u64, WriteError> {
        PerfDataWriter::finish(*self, features)
    }
}

impl Drop for PerfDataWriter {
    /// A writer dropped without `finish` (an error path) still leaves the
    /// records it accepted readable.
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.flush();
        }
    }
}

/// Refuses symlinks, moves an existing file to `PATH.old`, then creates
/// the file exclusively (so nothing swapped in meanwhile is followed).
fn create_file(path: &Path) -> Result<File, WriteError> {
    let create_err = |source| WriteError::Create {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(WriteError::Symlink {
                path: path.to_path_buf(),
            })
        }
        Ok(meta) if meta.is_file() => {
            let mut old = path.as_os_str().to_owned();
            old.push(".old");
            std::fs::rename(path, old).map_err(create_err)?;
        }
        Ok(meta) => return Err(not_a_file(path, &meta)),
        Err(_) => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| match std::fs::symlink_metadata(path) {
            // Something appeared at the path meanwhile: name what it is.
            Ok(meta) if !meta.is_file() => not_a_file(path, &meta),
            _ => create_err(source),
        })
}

/// The error for an output path that holds something other than a file.
fn not_a_file(path: &Path, meta: &std::fs::Metadata) -> WriteError {
    let path = path.to_path_buf();
    if meta.file_type().is_symlink() {
        WriteError::Symlink { path }
    } else if meta.is_dir() {
        WriteError::IsDirectory { path }
    } else {
        WriteError::NotRegularFile { path }
    }
}

/// Feature sections `(bit, bytes)` in increasing bit order, as perf 6.1
/// encodes them (tools/perf/util/header.c).
pub(super) fn encode_features(
    f: &FeatureData,
    attrs: &[AttrEntry],
    attr_size: u32,
) -> Vec<(u32, Vec<u8>)> {
    let string = |s: &str| {
        let mut w = ByteWriter::default();
        w.perf_string(s);
        w.buf
    };
    let mut out = Vec::new();
    if let Some(blob) = &f.perf_tracing_data {
        out.push((feature::TRACING_DATA, blob.clone()));
    }
    if !f.build_ids.is_empty() {
        out.push((feature::BUILD_ID, encode_build_ids(&f.build_ids)));
    }
    let strings = [
        (feature::HOSTNAME, &f.hostname),
        (feature::OSRELEASE, &f.osrelease),
        (feature::VERSION, &f.version),
        (feature::ARCH, &f.arch),
    ];
    for (bit, value) in strings {
        if let Some(value) = value {
            out.push((bit, string(value)));
        }
    }
    if let Some((online, available)) = f.nrcpus {
        let mut w = ByteWriter::default();
        w.u32(available).u32(online); // perf's order
        out.push((feature::NRCPUS, w.buf));
    }
    if !f.cmdline.is_empty() {
        let mut w = ByteWriter::default();
        w.u32(f.cmdline.len() as u32);
        for arg in &f.cmdline {
            w.perf_string(arg);
        }
        out.push((feature::CMDLINE, w.buf));
    }
    if !f.event_names.is_empty() && !attrs.is_empty() {
        out.push((
            feature::EVENT_DESC,
            encode_event_desc(&f.event_names, attrs, attr_size),
        ));
    }
    if let Some(symbols) = &f.rprof_symbols {
        out.push((feature::RPROF_SYMBOLS, symbols.clone()));
    }
    if let Some(unwound) = &f.rprof_unwound {
        out.push((feature::RPROF_UNWOUND, unwound.to_bytes()));
    }
    if !f.trace_formats.is_empty() {
        out.push((
            feature::RPROF_TRACE_FORMATS,
            super::format::encode_trace_formats(&f.trace_formats),
        ));
    }
    out.sort_by_key(|(bit, _)| *bit);
    out
}

/// HEADER_EVENT_DESC: u32 nr, u32 attr size, then per event: attr, u32
/// nr_ids, name, ids. Only attrs that have a name are described.
fn encode_event_desc(names: &[String], attrs: &[AttrEntry], attr_size: u32) -> Vec<u8> {
    let n = names.len().min(attrs.len());
    let mut w = ByteWriter::default();
    w.u32(n as u32).u32(attr_size);
    for (name, entry) in names.iter().zip(attrs) {
        w.bytes(&entry.attr.to_bytes_sized(attr_size))
            .u32(entry.ids.len() as u32);
        w.perf_string(name);
        for &id in &entry.ids {
            w.u64(id);
        }
    }
    w.buf
}

/// HEADER_BUILD_ID: one `perf_record_header_build_id` per file. perf writes
/// the machine's pid (-1 for the host) in every entry and marks kernel
/// images with MISC_KERNEL, everything else with MISC_USER.
fn encode_build_ids(ids: &[(i32, Vec<u8>, String)]) -> Vec<u8> {
    encode_build_id_records(ids, 0)
}

/// `perf_record_header_build_id` entries with `kind` as their record type:
/// 0 in the BUILD_ID feature section, HEADER_BUILD_ID (67) in a pipe.
pub(super) fn encode_build_id_records(ids: &[(i32, Vec<u8>, String)], kind: u32) -> Vec<u8> {
    let mut w = ByteWriter::default();
    for (pid, build_id, name) in ids {
        let len = build_id.len().min(20);
        let name_len = align_up(name.len().min(4000) + 1, NAME_ALIGN);
        let in_kernel = name.starts_with("[kernel.kallsyms]") || name.ends_with(".ko");
        let cpumode = if in_kernel { misc::KERNEL } else { misc::USER };
        let mut area = [0u8; 24];
        area[..len].copy_from_slice(&build_id[..len]);
        area[20] = len as u8;
        w.u32(kind)
            .u16(cpumode | misc::BUILD_ID_SIZE)
            .u16((EVENT_HEADER_SIZE + 4 + 24 + name_len) as u16)
            .i32(*pid)
            .bytes(&area);
        w.padded_c_string(truncate_str(name, 4000), NAME_ALIGN);
    }
    w.buf
}

/// At most `max` bytes of `s`, cut at a char boundary.
fn truncate_str(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Encoders for records rprof synthesizes (from /proc for running targets).
/// `sample_type` is the attr's, so the `sample_id_all` trailer matches what
/// the kernel writes for the same attr; pass 0 when the attr does not set
/// `sample_id_all`. Trailer fields left `None` are written as the record's
/// own pid/tid/time where it has them, else 0.
pub mod encode {
    use super::super::records::{CgroupRecord, Comm, CpuMode, Mmap, Sample, SampleId, TaskEvent};
    use super::truncate_str;
    use crate::abi::cursor::ByteWriter;
    use crate::abi::sample;
    use crate::abi::{misc, record_type};

    /// Longest file name written (PATH_MAX less the NUL), so records fit in u16.
    const MAX_FILENAME: usize = 4095;

    pub fn comm(sample_type: u64, c: &Comm) -> Vec<u8> {
        let mut body = ByteWriter::default();
        body.u32(c.pid)
            .u32(c.tid)
            .padded_c_string(truncate_str(&c.comm, MAX_FILENAME), 8);
        let id = with_task(c.sample_id, c.pid, c.tid);
        let misc = if c.exec { misc::COMM_EXEC } else { 0 };
        finish(record_type::COMM, misc, body, sample_type, &id)
    }

    /// Always MMAP2; uses the build-id form when `m.build_id` is set.
    pub fn mmap2(sample_type: u64, m: &Mmap) -> Vec<u8> {
        let mut body = ByteWriter::default();
        body.u32(m.pid)
            .u32(m.tid)
            .u64(m.start)
            .u64(m.len)
            .u64(m.pgoff);
        let mut misc = cpumode_bits(m.cpumode);
        // As the kernel and perf mark them: a mapping without code.
        if !m.is_code() && m.cpumode != CpuMode::Kernel {
            misc |= misc::MMAP_DATA;
        }
        match &m.build_id {
            Some(id) => {
                misc |= misc::MMAP_BUILD_ID;
                let len = id.len().min(20);
                let mut area = [0u8; 20];
                area[..len].copy_from_slice(&id[..len]);
                body.u8(len as u8).bytes(&[0; 3]).bytes(&area);
            }
            // maj, min, ino, ino_generation (not in /proc/PID/maps: 0).
            None => {
                let inode = m.inode.unwrap_or_default();
                body.u32(inode.major).u32(inode.minor).u64(inode.ino).u64(0);
            }
        }
        body.u32(m.prot).u32(m.flags);
        body.padded_c_string(truncate_str(&m.filename, MAX_FILENAME), 8);
        let id = with_task(m.sample_id, m.pid, m.tid);
        finish(record_type::MMAP2, misc, body, sample_type, &id)
    }

    pub fn fork(sample_type: u64, t: &TaskEvent) -> Vec<u8> {
        let mut body = ByteWriter::default();
        body.u32(t.pid)
            .u32(t.ppid)
            .u32(t.tid)
            .u32(t.ptid)
            .u64(t.time);
        let mut id = with_task(t.sample_id, t.pid, t.tid);
        id.time = id.time.or(Some(t.time));
        finish(record_type::FORK, 0, body, sample_type, &id)
    }

    /// A PERF_RECORD_SAMPLE with the fields `Sample` holds, in kernel order
    /// (for benches, fixtures and tests; the kernel writes the real ones).
    pub fn sample(sample_type: u64, s: &Sample) -> Vec<u8> {
        sample_with(sample_type, s, &[], &[])
    }

    /// As [`sample`], with READ values and bytes appended after the call chain.
    pub(crate) fn sample_with(sample_type: u64, s: &Sample, read: &[u64], extra: &[u8]) -> Vec<u8> {
        let has = |bit: u64| sample_type & bit != 0;
        let mut w = ByteWriter::default();
        if has(sample::IDENTIFIER) {
            w.u64(s.id.unwrap_or(0));
        }
        if has(sample::IP) {
            w.u64(s.ip);
        }
        if has(sample::TID) {
            w.u32(s.pid).u32(s.tid);
        }
        if has(sample::TIME) {
            w.u64(s.time);
        }
        if has(sample::ADDR) {
            w.u64(0xadd);
        }
        if has(sample::ID) {
            w.u64(s.id.unwrap_or(0));
        }
        if has(sample::STREAM_ID) {
            w.u64(0x5eed);
        }
        if has(sample::CPU) {
            w.u32(s.cpu).u32(0);
        }
        if has(sample::PERIOD) {
            w.u64(s.period);
        }
        for &v in read {
            w.u64(v);
        }
        if has(sample::CALLCHAIN) {
            w.u64(s.callchain.len() as u64);
            for &ip in s.callchain.iter() {
                w.u64(ip);
            }
        }
        if has(sample::RAW) {
            w.u32(s.raw.len() as u32).bytes(&s.raw);
        }
        w.bytes(extra);
        // What `extra` may hold ends before CGROUP (REGS_INTR, PHYS_ADDR).
        if has(sample::CGROUP) {
            w.u64(s.cgroup.unwrap_or(0));
        }
        let mut out = ByteWriter::default();
        out.u32(record_type::SAMPLE)
            .u16(cpumode_bits(s.cpumode))
            .u16(8 + w.buf.len() as u16)
            .bytes(&w.buf);
        out.buf
    }

    /// PERF_RECORD_CGROUP, as the kernel writes it (path NUL-padded to 8).
    pub fn cgroup(sample_type: u64, c: &CgroupRecord) -> Vec<u8> {
        let mut body = ByteWriter::default();
        body.u64(c.id)
            .padded_c_string(truncate_str(&c.path, MAX_FILENAME), 8);
        finish(record_type::CGROUP, 0, body, sample_type, &c.sample_id)
    }

    pub fn finished_round() -> Vec<u8> {
        finish(
            record_type::FINISHED_ROUND,
            0,
            ByteWriter::default(),
            0,
            &SampleId::default(),
        )
    }

    fn with_task(mut id: SampleId, pid: u32, tid: u32) -> SampleId {
        id.pid = id.pid.or(Some(pid));
        id.tid = id.tid.or(Some(tid));
        id
    }

    pub(crate) fn cpumode_bits(mode: CpuMode) -> u16 {
        match mode {
            CpuMode::Unknown => misc::CPUMODE_UNKNOWN,
            CpuMode::Kernel => misc::KERNEL,
            CpuMode::User => misc::USER,
            CpuMode::Hypervisor => misc::HYPERVISOR,
            CpuMode::GuestKernel => misc::GUEST_KERNEL,
            CpuMode::GuestUser => misc::GUEST_USER,
        }
    }

    /// Appends the `sample_id_all` trailer and prepends the header.
    fn finish(
        kind: u32,
        misc: u16,
        mut body: ByteWriter,
        sample_type: u64,
        id: &SampleId,
    ) -> Vec<u8> {
        let has = |bit: u64| sample_type & bit != 0;
        if has(sample::TID) {
            body.u32(id.pid.unwrap_or(0)).u32(id.tid.unwrap_or(0));
        }
        if has(sample::TIME) {
            body.u64(id.time.unwrap_or(0));
        }
        if has(sample::ID) {
            body.u64(id.id.unwrap_or(0));
        }
        if has(sample::STREAM_ID) {
            body.u64(id.id.unwrap_or(0));
        }
        if has(sample::CPU) {
            body.u32(id.cpu.unwrap_or(0)).u32(0);
        }
        if has(sample::IDENTIFIER) {
            body.u64(id.id.unwrap_or(0));
        }
        let size = super::EVENT_HEADER_SIZE + body.buf.len();
        let mut out = ByteWriter::default();
        out.u32(kind).u16(misc).u16(size as u16).bytes(&body.buf);
        out.buf
    }
}
