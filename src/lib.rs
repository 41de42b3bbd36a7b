//! rprof: a Linux sampling profiler.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! abi        perf_event_attr, record types, call-chain markers (plain data)
//! sys        perf_event_open, ioctls, mmap rings        (the only unsafe code)
//!  -> record    launch / attach / system-wide, drain rings into a file
//!  -> perfdata  the recording file (perf.data layout, PERFILE2): writer + reader
//!  -> process   threads, comms and mappings over time (pure, no OS access)
//!  -> unwind    call chains split into kernel / user frames; DWARF CFI for copied stacks
//!  -> symbolize per-module lazy contexts: ELF, DWARF lines + inlines, kallsyms, JIT maps
//!  -> aggregate interned stacks with explicit weights
//!  -> output    top table, call trees, folded stacks, flame graph SVG
//!
//! diff       two profiles compared by share, with slice-level significance tests
//! stat       counting runs (no sampling) printed like `perf stat`
//! push       interval profiles spooled on disk and sent to Pyroscope or Parca
//! ```
//!
//! `commands` glues the stages together for each subcommand; `src/bin/rprof.rs`
//! only parses flags, runs a command and prints the error chain.
#![deny(unsafe_code)]

pub mod abi;
pub mod aggregate;
pub mod cli;
pub mod commands;
pub mod diff;
pub mod event;
pub mod output;
pub mod perfdata;
pub mod process;
pub mod procfs;
pub mod progress;
pub mod push;
pub mod record;
pub mod stat;
pub mod symbolize;
pub mod sys;
pub mod unwind;
