//! Writes a perf.data file incrementally: header, attrs, the data section as
//! it arrives from the rings, then feature sections at [`PerfDataWriter::finish`].
//!
//! Safety of the output path: the file is created with mode 0600 and
//! `O_EXCL|O_NOFOLLOW` after an existing regular file was renamed to
//! `FILE.old` (as perf does); a symlink at the path is refused, never
//! followed. The header's data size is refreshed on every
//! [`PerfDataWriter::flush`], so a recording killed mid-way is still a
//! readable file.

use std::path::{Path, PathBuf};

use super::attr::EventAttr;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: is a symbolic link; rprof does not write through symlinks (choose another -o path)")]
    Symlink { path: PathBuf },
    #[error("cannot create {path}: {source} (choose a writable path with -o)")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
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
    /// (pid, build id bytes, file name) for HEADER_BUILD_ID; pid -1 for kernel.
    pub build_ids: Vec<(i32, Vec<u8>, String)>,
    /// Encoded `symbolize::SymbolTable` for the RPROF_SYMBOLS section.
    pub rprof_symbols: Option<Vec<u8>>,
}

/// One attr and the sample ids of the fds opened with it.
#[derive(Debug, Clone)]
pub struct AttrEntry {
    pub attr: EventAttr,
    pub ids: Vec<u64>,
}

pub struct PerfDataWriter {
    _private: (),
}

impl PerfDataWriter {
    /// Creates `path` safely (see module docs) and writes the header and attrs.
    pub fn create(path: &Path, attrs: &[AttrEntry]) -> Result<PerfDataWriter, WriteError> {
        let _ = (path, attrs);
        todo!("perfdata helper")
    }

    /// Appends raw records (already in perf record format, e.g. copied from a ring).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let _ = bytes;
        todo!("perfdata helper")
    }

    /// Bytes of data section written so far.
    pub fn data_size(&self) -> u64 {
        todo!("perfdata helper")
    }

    /// Flushes buffered data and rewrites the header's data size.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        todo!("perfdata helper")
    }

    pub fn path(&self) -> &Path {
        todo!("perfdata helper")
    }

    /// Writes feature sections and the final header; returns the file size.
    pub fn finish(self, features: &FeatureData) -> Result<u64, WriteError> {
        let _ = features;
        todo!("perfdata helper")
    }
}

/// Encoders for records rprof synthesizes (from /proc for running targets).
/// `sample_type` is the attr's, so the `sample_id_all` trailer matches what
/// the kernel writes for the same attr.
pub mod encode {
    use super::super::records::{Comm, Mmap, TaskEvent};

    pub fn comm(sample_type: u64, c: &Comm) -> Vec<u8> {
        let _ = (sample_type, c);
        todo!("perfdata helper")
    }
    /// Always MMAP2; uses the build-id form when `m.build_id` is set.
    pub fn mmap2(sample_type: u64, m: &Mmap) -> Vec<u8> {
        let _ = (sample_type, m);
        todo!("perfdata helper")
    }
    pub fn fork(sample_type: u64, t: &TaskEvent) -> Vec<u8> {
        let _ = (sample_type, t);
        todo!("perfdata helper")
    }
    pub fn finished_round() -> Vec<u8> {
        todo!("perfdata helper")
    }
}
