//! rprof's integration tests, one binary: end-to-end recordings checked
//! against ground truth and Linux perf, and the symbolizer on compiled fixtures.

mod mutations;
mod record_report;
mod symbolize;
mod util;
