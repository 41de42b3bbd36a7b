//! Flame graph SVG, drawn by inferno from the folded lines.

use std::io::{self, Write};

use inferno::flamegraph::Direction;

use super::flame::{flame_unit, FlameOptions};
use super::Output;
use crate::aggregate::Profile;

/// The flame graph as an SVG (inferno's, with its search and zoom).
#[derive(Debug, Clone, Default)]
pub struct FlameGraphSvg {
    pub flame: FlameOptions,
}

impl Output for FlameGraphSvg {
    fn write(&self, profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
        let flame = &self.flame;
        let lines: Vec<String> = flame
            .lines(profile)
            .into_iter()
            .map(|(stack, count)| format!("{stack} {count}"))
            .collect();
        let mut options = inferno::flamegraph::Options::default();
        options.title = flame.title.clone();
        options.subtitle = flame.subtitle.clone();
        options.min_width = flame.min_width.percent();
        if flame.inverted {
            // The stacks are reversed (leaf first): drawn top down, the
            // sampled functions are the top row, their callers below.
            options.direction = Direction::Inverted;
        }
        if let Some(event) = profile.events.get(flame.event as usize) {
            let unit = flame_unit(event);
            options.count_name = unit.name;
            options.factor = unit.factor;
        }
        if lines.is_empty() {
            // inferno refuses empty input; an empty profile is still a valid answer.
            return writeln!(
                out,
                "<svg xmlns=\"http://www.w3.org/2000/svg\"><text y=\"20\">No samples</text></svg>"
            );
        }
        // The lines are sorted (Folded::lines is a BTreeMap), as from_lines needs.
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
            .map_err(|e| io::Error::other(e.to_string()))
    }
}
