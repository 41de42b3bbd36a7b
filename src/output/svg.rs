//! Flame graph SVG, drawn by inferno from the folded lines.

use std::io::{self, Write};

use super::folded::Folded;
use super::Output;
use crate::aggregate::{Event, EventId, Profile};
use crate::event::Unit;

/// Options for the flame graph.
#[derive(Debug, Clone)]
pub struct FlameGraphSvg {
    /// Title at the top (default "Flame Graph").
    pub title: String,
    /// Line under the title (default none).
    pub subtitle: Option<String>,
    /// The event to draw (default: the first).
    pub event: EventId,
}

impl Default for FlameGraphSvg {
    fn default() -> Self {
        FlameGraphSvg {
            title: "Flame Graph".to_string(),
            subtitle: None,
            event: 0,
        }
    }
}

/// What the tooltips count in, and the factor from the event's weights to
/// it: CPU time in microseconds (inferno shows whole numbers, and a sample
/// is rarely under a microsecond), other events by their name.
fn tooltip_unit(event: &Event) -> (String, f64) {
    match event.unit {
        Unit::Nanoseconds => ("us".to_string(), 1e-3),
        Unit::OffCpuNanoseconds => ("us off-CPU".to_string(), 1e-3),
        Unit::Events | Unit::Faults => (event.name.clone(), 1.0),
    }
}

impl Output for FlameGraphSvg {
    fn write(&self, profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
        let lines: Vec<String> = Folded { event: self.event }
            .lines(&profile.named(self.event))
            .into_iter()
            .map(|(stack, count)| format!("{stack} {count}"))
            .collect();
        let mut options = inferno::flamegraph::Options::default();
        options.title = self.title.clone();
        options.subtitle = self.subtitle.clone();
        if let Some(event) = profile.events.get(self.event as usize) {
            (options.count_name, options.factor) = tooltip_unit(event);
        }
        if lines.is_empty() {
            // inferno refuses empty input; an empty profile is still a valid answer.
            return writeln!(
                out,
                "<svg xmlns=\"http://www.w3.org/2000/svg\"><text y=\"20\">No samples</text></svg>"
            );
        }
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
            .map_err(|e| io::Error::other(e.to_string()))
    }
}
