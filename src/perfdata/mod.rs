//! The recording file: the perf.data layout (`PERFILE2`), written by
//! `record` and read by `report`. One reader serves rprof's files and files
//! written by Linux `perf record`.
//!
//! rprof adds feature sections far above anything perf defines:
//! [`format::feature::RPROF_SYMBOLS`] (its symbol table) and
//! [`format::feature::RPROF_UNWOUND`] (user stacks unwound while recording).
//! perf only walks the bits it knows, so it skips them.

mod compressed;
mod decode;
pub mod format;
mod order;
pub mod pipe;
pub mod reader;
pub mod records;
pub mod writer;

pub use crate::abi::EventAttr;
pub(crate) use decode::Decoder;
pub use format::UnwoundStacks;
pub use order::Ordered;
pub use pipe::PipeWriter;
pub use reader::{Metadata, PerfFile, ReadError, Records};
pub use records::{
    CgroupRecord, Comm, Lost, Mmap, Record, Sample, SampleId, Switch, TaskEvent, Throttle,
    UserRegs, REGS_ABI_64,
};
pub use writer::{DataSink, FeatureData, PerfDataWriter, WriteError};

#[cfg(test)]
mod tests;
