//! `rprof diff`: what changed between two profiles, and whether the change
//! is more than noise.
//!
//! ```text
//! input     recordings, folded stacks, pprof -> stacks of
//!           function names with weight per 10 ms time bucket
//! stats     t distribution, Welch, Benjamini-Hochberg, batch means (pure)
//! compare   shares per function, self and inclusive; slice-level tests
//! output    top table, differential folded, JSON, differential flame graph
//! ```
//!
//! The method is described in docs/diff.md.

pub mod compare;
pub mod input;
pub mod output;
pub mod stats;

pub use compare::{compare, DiffOptions, DiffResult, FunctionDiff, Verdict};
pub use input::{Functions, Input, InputKind};

/// Errors of reading diff inputs.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("cannot read {path}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--event {wanted}: {name} has no such sample type (it has: {has})")]
    NoSampleType {
        name: String,
        wanted: String,
        has: String,
    },
    #[error("{name}: cannot read the pprof profile")]
    Pprof {
        name: String,
        #[source]
        source: crate::output::pprof::PprofError,
    },
    #[error("{0}: no stacks in it")]
    Empty(String),
    #[error(
        "{0}: not a recording (perf.data), folded stacks (`stack count` lines) or pprof profile"
    )]
    Unknown(String),
}
