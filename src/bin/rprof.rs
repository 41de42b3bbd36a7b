//! The `rprof` binary: parse flags, run the subcommand, print the error chain.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use rprof::cli::{Cli, Command};
use rprof::commands;

/// A write to a closed pipe (`rprof report | head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Record(args) => commands::record::run(args).map(|code| code.unwrap_or(0)),
        Command::Report(args) => commands::report::run(args).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rprof: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
