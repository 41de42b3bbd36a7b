//! Shell completion scripts generated from the clap definitions; a test
//! keeps the copies in `completions/` in sync, as for the man pages.

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// The completion script for `shell`.
pub fn render(shell: Shell) -> Vec<u8> {
    let mut command = Cli::command();
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
