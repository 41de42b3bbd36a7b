//! Aggregation: samples -> resolved stacks -> interned stacks with weights.

use crate::perfdata::PerfFile;
use crate::symbolize::ModuleRequest;

/// Every unique (module, lookup address) that the file's samples touch,
/// grouped per module: what `record` symbolizes before it exits.
pub fn symbol_requests(file: &PerfFile) -> Vec<ModuleRequest> {
    let _ = file;
    todo!("aggregate")
}
