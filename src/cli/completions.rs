//! Shell completion scripts generated from the clap definitions; a test
//! keeps the copies in `completions/` in sync, as for the man pages.

use clap::{Command, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// The completion script for `shell`.
pub fn render(shell: Shell) -> Vec<u8> {
    let mut command = visible_only(&Cli::command()).version(env!("CARGO_PKG_VERSION"));
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "rprof", &mut script);
    script
}

/// The scripts kept in `completions/`: (file name, script).
pub fn render_shipped() -> Vec<(&'static str, Vec<u8>)> {
    [
        ("rprof.bash", Shell::Bash),
        ("_rprof", Shell::Zsh),
        ("rprof.fish", Shell::Fish),
    ]
    .into_iter()
    .map(|(name, shell)| (name, render(shell)))
    .collect()
}

/// `command` without its hidden arguments (perf's flags that rprof only
/// parses to refuse): clap_complete's bash script would offer them.
fn visible_only(command: &Command) -> Command {
    let mut visible = Command::new(command.get_name().to_string()).args(
        command
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .cloned(),
    );
    if let Some(about) = command.get_about() {
        visible = visible.about(about.clone());
    }
    for sub in command.get_subcommands() {
        visible = visible.subcommand(visible_only(sub));
    }
    visible
}
