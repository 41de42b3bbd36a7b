//! Command-line flags: `args` holds the raw clap structs, `man` renders the
//! man pages and shell completions from them. `commands` turns the raw flags into validated
//! stage configs.

pub mod args;
pub mod completions;
pub mod diff_args;
pub mod man;
pub mod push_args;
pub mod stat_args;
pub mod target_args;

pub use args::{Cli, Command, RecordArgs, ReportArgs};
pub use diff_args::DiffArgs;
pub use push_args::PushArgs;
pub use stat_args::StatArgs;
pub use target_args::TargetArgs;
