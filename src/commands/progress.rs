//! Progress bars on standard error: drawn when it is a terminal, nothing
//! at all in a pipe or a log.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::Progress;

/// indicatif's bar behind the stages' [`Progress`].
pub struct TerminalProgress {
    bar: ProgressBar,
}

impl TerminalProgress {
    /// A bar on stderr, hidden unless stderr is a terminal.
    pub fn on_stderr() -> TerminalProgress {
        TerminalProgress::drawn(std::io::stderr().is_terminal())
    }

    /// A bar on stderr when `drawn`, else one that draws nothing.
    fn drawn(drawn: bool) -> TerminalProgress {
        let target = if drawn {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("rprof: {msg} [{bar:30}] {percent:>3}% ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        TerminalProgress { bar }
    }
}

impl Progress for TerminalProgress {
    fn begin(&self, what: &str, total: u64) {
        self.bar.reset();
        self.bar.set_length(total);
        self.bar.set_message(what.to_string());
        // Redrawn on a timer too: one big module may take seconds.
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn advance(&self, units: u64) {
        self.bar.inc(units);
    }

    fn end(&self) {
        self.bar.disable_steady_tick();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_is_drawn_only_for_a_terminal() {
        assert!(TerminalProgress::drawn(false).bar.is_hidden());
        let shown = TerminalProgress::drawn(true);
        shown.begin("reading records", 100);
        shown.advance(40);
        assert_eq!(shown.bar.position(), 40);
        assert_eq!(shown.bar.length(), Some(100));
        shown.end();
        assert!(shown.bar.is_finished());
    }
}
