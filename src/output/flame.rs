//! What the two flame graphs (svg, html) share: their options, the unit
//! their tooltips count in, the minimum frame width, and the tree of unique
//! stacks the html page embeds.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::folded::Folded;
use crate::aggregate::{Event, EventId, Profile, WALL_EVENT};
use crate::event::Unit;

/// Width in pixels of a flame graph as FlameGraph and inferno draw it; a
/// minimum width in pixels is a share of this.
pub const GRAPH_PIXELS: f64 = 1200.0;

/// Options of both flame graphs.
#[derive(Debug, Clone)]
pub struct FlameOptions {
    /// Title at the top (default "Flame Graph").
    pub title: String,
    /// Line under the title (default none).
    pub subtitle: Option<String>,
    /// The event to draw (default: the first).
    pub event: EventId,
    /// Inverted (icicle) graph: stacks reversed, so the sampled functions
    /// form the top row and their callers hang below them (default false).
    pub inverted: bool,
    /// Frames narrower than this are left out (default 0.1 pixels).
    pub min_width: MinWidth,
}

impl Default for FlameOptions {
    fn default() -> Self {
        FlameOptions {
            title: "Flame Graph".to_string(),
            subtitle: None,
            event: 0,
            inverted: false,
            min_width: MinWidth::default(),
        }
    }
}

impl FlameOptions {
    /// The folded stacks the graph is drawn from, merged and sorted; when
    /// inverted, each stack is reversed (leaf first, the command last).
    pub fn lines(&self, profile: &Profile) -> BTreeMap<String, u64> {
        let lines = Folded { event: self.event }.lines(&profile.named(self.event));
        if !self.inverted {
            return lines;
        }
        let mut reversed: BTreeMap<String, u64> = BTreeMap::new();
        for (stack, weight) in lines {
            let flipped: Vec<&str> = stack.rsplit(';').collect();
            let total = reversed.entry(flipped.join(";")).or_insert(0);
            *total = total.saturating_add(weight);
        }
        reversed
    }
}

/// The narrowest frame drawn: pixels of a [`GRAPH_PIXELS`]-wide graph (as
/// FlameGraph's `--minwidth`), or a percentage of the total (as inferno
/// 0.12's `min_width`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinWidth {
    Pixels(f64),
    Percent(f64),
}

impl Default for MinWidth {
    /// FlameGraph's default: 0.1 pixels.
    fn default() -> Self {
        MinWidth::Pixels(0.1)
    }
}

impl MinWidth {
    /// `0.5` (pixels) or `0.5%` (percent of the total).
    pub fn parse(text: &str) -> Result<MinWidth, String> {
        let text = text.trim();
        let (number, percent) = match text.strip_suffix('%') {
            Some(number) => (number.trim(), true),
            None => (text, false),
        };
        let value: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                format!(
                    "--min-width {text}: expected pixels (e.g. 0.5) or a percentage (e.g. 0.5%)"
                )
            })?;
        if percent {
            if value > 100.0 {
                return Err(format!("--min-width {text}: a percentage is at most 100%"));
            }
            Ok(MinWidth::Percent(value))
        } else {
            if value > GRAPH_PIXELS {
                return Err(format!(
                    "--min-width {text}: the graph is {GRAPH_PIXELS} pixels wide; \
                     give at most {GRAPH_PIXELS}, or a percentage (e.g. 1%)"
                ));
            }
            Ok(MinWidth::Pixels(value))
        }
    }

    /// As a percentage of the total (what inferno takes).
    pub fn percent(self) -> f64 {
        match self {
            MinWidth::Pixels(px) => px * 100.0 / GRAPH_PIXELS,
            MinWidth::Percent(pct) => pct,
        }
    }
}

/// What a flame graph's tooltips count in: a name and the factor from the
/// event's weights to it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlameUnit {
    /// `us CPU`, `ms off-CPU`, `us wall`, `page-faults`, `cycles`, ...
    pub name: String,
    pub factor: f64,
}

/// Time totals from this much on are shown in milliseconds, below in
/// microseconds (the tooltips show whole numbers).
const MILLISECONDS_FROM_NS: u64 = 100_000_000_000;

/// The unit of an event's flame graph: time in microseconds (milliseconds
/// for totals of 100 s and more), saying which time it is (CPU time, off-CPU
/// time, or the wall-clock time of `record --wall`: on- and off-CPU
/// together); counts by the event's name (`page-faults`, `cycles`), or
/// `NAME events` for tracepoints, raw and PMU events.
pub fn flame_unit(event: &Event) -> FlameUnit {
    let time = |kind: &str| {
        let (scale, factor) = if event.weight >= MILLISECONDS_FROM_NS {
            ("ms", 1e-6)
        } else {
            ("us", 1e-3)
        };
        FlameUnit {
            name: format!("{scale} {kind}"),
            factor,
        }
    };
    match event.unit {
        Unit::Nanoseconds if event.name == WALL_EVENT => time("wall"),
        Unit::Nanoseconds => time("CPU"),
        Unit::OffCpuNanoseconds => time("off-CPU"),
        Unit::Faults => FlameUnit {
            name: event.name.clone(),
            factor: 1.0,
        },
        Unit::Events => {
            // `context-switches` reads as a count; `sched:sched_switch`,
            // `r1a2` or `cpu/event=0x3c/` need a word after them.
            let plain = event
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !is_raw_event(&event.name);
            FlameUnit {
                name: if plain {
                    event.name.clone()
                } else {
                    format!("{} events", event.name)
                },
                factor: 1.0,
            }
        }
    }
}

/// `rNNNN`: a raw PMU event.
fn is_raw_event(name: &str) -> bool {
    name.strip_prefix('r')
        .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// One node of a [`FlameTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlameNode {
    /// Index into [`FlameTree::names`].
    pub name: u32,
    /// Weight of the stacks that end here.
    pub self_weight: u64,
    /// Weight of the stacks that pass through here (self included).
    pub total: u64,
    /// Child nodes, ordered by name.
    pub children: Vec<u32>,
}

/// The unique stacks of a profile merged by common prefix: one node per
/// distinct path from the root, names interned. Its size grows with the
/// unique stacks, never with the samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlameTree {
    /// Frame names; `names[0]` is the root's, `all`.
    pub names: Vec<String>,
    /// `nodes[0]` is the root.
    pub nodes: Vec<FlameNode>,
}

/// The root frame's name, as in FlameGraph.
pub const ROOT_NAME: &str = "all";

impl FlameTree {
    /// Builds the tree from folded lines (`comm;caller;...;leaf` -> weight,
    /// as [`super::Folded::lines`] gives them).
    pub fn from_folded(lines: &BTreeMap<String, u64>) -> FlameTree {
        let mut tree = FlameTree {
            names: vec![ROOT_NAME.to_string()],
            nodes: vec![FlameNode {
                name: 0,
                self_weight: 0,
                total: 0,
                children: Vec::new(),
            }],
        };
        let mut name_ids: FxHashMap<String, u32> = FxHashMap::default();
        let mut child_of: FxHashMap<(u32, u32), u32> = FxHashMap::default();
        for (stack, &weight) in lines {
            let mut node = 0u32;
            tree.nodes[0].total = tree.nodes[0].total.saturating_add(weight);
            for frame in stack.split(';') {
                let name = match name_ids.get(frame) {
                    Some(&id) => id,
                    None => {
                        let id = tree.names.len() as u32;
                        tree.names.push(frame.to_string());
                        name_ids.insert(frame.to_string(), id);
                        id
                    }
                };
                let next = *child_of.entry((node, name)).or_insert_with(|| {
                    let id = tree.nodes.len() as u32;
                    tree.nodes.push(FlameNode {
                        name,
                        self_weight: 0,
                        total: 0,
                        children: Vec::new(),
                    });
                    tree.nodes[node as usize].children.push(id);
                    id
                });
                node = next;
                let entry = &mut tree.nodes[node as usize];
                entry.total = entry.total.saturating_add(weight);
            }
            let leaf = &mut tree.nodes[node as usize];
            leaf.self_weight = leaf.self_weight.saturating_add(weight);
        }
        let node_names: Vec<u32> = tree.nodes.iter().map(|n| n.name).collect();
        let names = &tree.names;
        for node in &mut tree.nodes {
            node.children.sort_by(|&a, &b| {
                names[node_names[a as usize] as usize].cmp(&names[node_names[b as usize] as usize])
            });
        }
        tree
    }

    /// The nodes in preorder (a node, then its children's subtrees in
    /// order), each with its number of children: the flat layout the html
    /// page reads.
    pub fn preorder(&self) -> Vec<(&FlameNode, usize)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![0u32];
        while let Some(id) = stack.pop() {
            let node = &self.nodes[id as usize];
            out.push((node, node.children.len()));
            stack.extend(node.children.iter().rev());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[(&str, u64)]) -> BTreeMap<String, u64> {
        text.iter().map(|(s, w)| (s.to_string(), *w)).collect()
    }

    fn event(name: &str, unit: Unit, weight: u64) -> Event {
        Event {
            name: name.into(),
            unit,
            samples: 1,
            weight,
        }
    }

    #[test]
    fn tree_merges_common_prefixes_with_self_and_total() {
        let tree = FlameTree::from_folded(&lines(&[
            ("app;main;a", 3),
            ("app;main;a;b", 5),
            ("app;main", 2),
            ("app;main;c", 7),
            ("other;main", 1),
        ]));
        let flat: Vec<(&str, u64, u64, usize)> = tree
            .preorder()
            .into_iter()
            .map(|(n, children)| {
                (
                    tree.names[n.name as usize].as_str(),
                    n.self_weight,
                    n.total,
                    children,
                )
            })
            .collect();
        assert_eq!(
            flat,
            vec![
                ("all", 0, 18, 2),
                ("app", 0, 17, 1),
                ("main", 2, 17, 2),
                ("a", 3, 8, 1),
                ("b", 5, 5, 0),
                ("c", 7, 7, 0),
                ("other", 0, 1, 1),
                ("main", 1, 1, 0),
            ]
        );
        // Names are interned: `main` is stored once for both paths.
        assert_eq!(tree.names, ["all", "app", "main", "a", "b", "c", "other"]);
        assert_eq!(tree.nodes.len(), 8);
    }

    #[test]
    fn tree_of_no_stacks_is_an_empty_root() {
        let tree = FlameTree::from_folded(&BTreeMap::new());
        assert_eq!(tree.nodes.len(), 1);
        assert_eq!(tree.nodes[0].total, 0);
    }

    #[test]
    fn tree_grows_with_unique_stacks_not_weights() {
        let one = FlameTree::from_folded(&lines(&[("app;main;a", 1), ("app;main;b", 1)]));
        let many = FlameTree::from_folded(&lines(&[
            ("app;main;a", 1_000_000),
            ("app;main;b", 7_000_000),
        ]));
        assert_eq!(one.nodes.len(), many.nodes.len());
        assert_eq!(many.nodes[0].total, 8_000_000);
    }

    #[test]
    fn min_width_takes_pixels_or_percent() {
        assert_eq!(MinWidth::parse("0.5"), Ok(MinWidth::Pixels(0.5)));
        assert_eq!(MinWidth::parse("2%"), Ok(MinWidth::Percent(2.0)));
        assert_eq!(MinWidth::parse(" 2 % "), Ok(MinWidth::Percent(2.0)));
        assert!((MinWidth::Pixels(12.0).percent() - 1.0).abs() < 1e-12);
        assert!((MinWidth::default().percent() - 0.1 / 12.0).abs() < 1e-12);
        for bad in ["", "-1", "abc", "nan", "101%", "1201", "inf"] {
            let err = MinWidth::parse(bad).unwrap_err();
            assert!(err.starts_with("--min-width"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_unit_is_named() {
        let unit = |name, u, weight| flame_unit(&event(name, u, weight));
        assert_eq!(
            unit("cpu-clock", Unit::Nanoseconds, 5_000_000_000),
            FlameUnit {
                name: "us CPU".into(),
                factor: 1e-3
            }
        );
        assert_eq!(
            unit("cpu-clock", Unit::Nanoseconds, 500_000_000_000),
            FlameUnit {
                name: "ms CPU".into(),
                factor: 1e-6
            }
        );
        assert_eq!(unit("wall", Unit::Nanoseconds, 1).name, "us wall");
        assert_eq!(
            unit("off-cpu", Unit::OffCpuNanoseconds, 1).name,
            "us off-CPU"
        );
        assert_eq!(unit("page-faults", Unit::Faults, 1).name, "page-faults");
        assert_eq!(unit("page-faults", Unit::Faults, 1).factor, 1.0);
        assert_eq!(
            unit("context-switches", Unit::Events, 1).name,
            "context-switches"
        );
        assert_eq!(
            unit("sched:sched_switch", Unit::Events, 1).name,
            "sched:sched_switch events"
        );
        assert_eq!(unit("r1a2", Unit::Events, 1).name, "r1a2 events");
        assert_eq!(unit("reads", Unit::Events, 1).name, "reads");
    }
}
