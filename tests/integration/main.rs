//! rprof's integration tests, one binary: end-to-end recordings checked
//! against ground truth and Linux perf, the symbolizer on compiled fixtures,
//! and rprof beside other profilers on the same host.

mod cli;
mod coexist;
mod diff;
mod dwarf;
mod dwarf_truth;
mod events;
mod flame;
mod model;
mod mutations;
mod offcpu;
mod pipe;
mod pprof;
mod push;
mod record_report;
mod rotate;
mod stat;
mod symbolize;
mod util;
