//! Reads perf.data files (rprof's and Linux perf's). Never panics on
//! malformed input: every length is checked and errors say what is wrong.

use std::path::{Path, PathBuf};

use super::attr::EventAttr;
use super::records::Record;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
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
    pub nrcpus: Option<(u32, u32)>,
    pub cmdline: Vec<String>,
    /// Event names by attr index (HEADER_EVENT_DESC), empty if absent.
    pub event_names: Vec<String>,
    pub build_ids: Vec<(i32, Vec<u8>, String)>,
}

/// An opened perf.data file (memory-mapped).
pub struct PerfFile {
    _private: (),
}

impl PerfFile {
    pub fn open(path: &Path) -> Result<PerfFile, ReadError> {
        let _ = path;
        todo!("perfdata helper")
    }

    /// For tests and benches: parse an in-memory file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<PerfFile, ReadError> {
        let _ = bytes;
        todo!("perfdata helper")
    }

    pub fn attrs(&self) -> &[EventAttr] {
        todo!("perfdata helper")
    }

    pub fn metadata(&self) -> &Metadata {
        todo!("perfdata helper")
    }

    /// Raw bytes of a feature section (`format::feature::*`), if present.
    pub fn feature(&self, bit: u32) -> Option<&[u8]> {
        let _ = bit;
        todo!("perfdata helper")
    }

    /// Records in file order. Stops at the first undecodable record with a
    /// warning (see [`PerfFile::warnings`] after iterating) rather than an error,
    /// so a truncated recording still reports what it holds.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        todo!("perfdata helper");
        #[allow(unreachable_code)]
        std::iter::empty()
    }

    /// All records ordered by time (stable; records without a timestamp keep
    /// their place after the record before them), plus warnings (truncation,
    /// unknown records) collected while decoding.
    pub fn sorted_records(&self) -> (Vec<Record>, Vec<String>) {
        todo!("perfdata helper")
    }
}
