//! Progress of long work (reading a big recording, symbolizing many
//! modules), reported by the stages and drawn by the commands: a bar on a
//! terminal, nothing in a pipe. Stages only count; they never print.

/// Receives progress from a stage. `Sync`: symbolization reports from
/// several threads.
pub trait Progress: Sync {
    /// A phase begins: `what` is done in `total` units (bytes, modules).
    fn begin(&self, what: &str, total: u64);
    /// `units` more are done.
    fn advance(&self, units: u64);
    /// The phase is over.
    fn end(&self);
}

/// Reports nowhere (tests, benches, pipes).
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _what: &str, _total: u64) {}
    fn advance(&self, _units: u64) {}
    fn end(&self) {}
}
