//! The recording file: the perf.data layout (`PERFILE2`), written by
//! `record` and read by `report`. One reader serves rprof's files and files
//! written by Linux `perf record`.
//!
//! rprof adds one feature section, [`format::feature::RPROF_SYMBOLS`], a bit
//! far above anything perf defines; perf only walks the bits it knows, so it
//! skips the section while rprof finds its symbol table there.

mod compressed;
mod decode;
pub mod format;
mod order;
pub mod pipe;
pub mod reader;
pub mod records;
pub mod writer;

pub use crate::abi::EventAttr;
pub use order::Ordered;
pub use pipe::PipeWriter;
pub use reader::{Metadata, PerfFile, ReadError, Records};
pub use records::{
    Comm, Lost, Mmap, Record, Sample, SampleId, TaskEvent, Throttle, UserRegs, REGS_ABI_64,
};
pub use writer::{DataSink, FeatureData, PerfDataWriter, WriteError};

#[cfg(test)]
mod tests;
