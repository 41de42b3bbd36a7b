//! The `rprof` binary: parse flags, run the subcommand, print the error chain.

use std::io::{self, Write};
use std::process::ExitCode;

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

/// The error's causes, less those whose text a message above already
/// quotes (errors that name their cause in their own text, such as
/// "cannot open FILE: No such file or directory").
fn causes_not_yet_said(err: &anyhow::Error) -> Vec<String> {
    let mut said = err.to_string();
    let mut causes = Vec::new();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !said.contains(&text) {
            said.push_str(&text);
            causes.push(text);
        }
    }
    causes
}

fn main() -> ExitCode {
    let cli = Cli::parse_ordered();
    let result = match &cli.command {
        Command::Record(args) => commands::record::run(args).map(|code| code.unwrap_or(0)),
        Command::Report(args) => commands::report::run(args).map(|()| 0),
        Command::Stat(args) => commands::stat::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::List(args) => commands::list::run(args).map(|()| 0),
        Command::Completions(args) => io::stdout()
            .write_all(&rprof::cli::completions::render(args.shell))
            .map(|()| 0)
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rprof: error: {err}");
            for cause in causes_not_yet_said(&err) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
