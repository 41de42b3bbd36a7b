//! Command-line flags. `args` holds the raw clap structs; the
//! `into_*_config` functions turn them into validated stage configs.

pub mod args;
pub mod man;

pub use args::{Cli, Command, RecordArgs, ReportArgs};
