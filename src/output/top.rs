//! The `top` table: functions (or other sort keys) with self and total
//! share, like `perf report --stdio`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use super::text::{self, percent, Fit};
use super::tree::{CallTree, TreeOptions, TreeOrder};
use super::Output;
use crate::aggregate::{EventId, FrameId, NamedProfile, NamedStack, Profile};
use crate::event::Unit;

/// A column rows are grouped by (`--sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Comm,
    Pid,
    Dso,
    Symbol,
}

impl SortKey {
    pub fn parse_list(text: &str) -> Result<Vec<SortKey>, String> {
        text.split(',')
            .map(|key| match key.trim() {
                "comm" => Ok(SortKey::Comm),
                "pid" => Ok(SortKey::Pid),
                "dso" => Ok(SortKey::Dso),
                "symbol" | "sym" => Ok(SortKey::Symbol),
                other => Err(format!(
                    "unknown sort key '{other}': use comm, pid, dso, symbol"
                )),
            })
            .collect()
    }

    fn header(self) -> &'static str {
        match self {
            SortKey::Comm => "Command",
            SortKey::Pid => "Pid",
            SortKey::Dso => "Shared Object",
            SortKey::Symbol => "Symbol",
        }
    }
}

/// Options for the table.
#[derive(Debug, Clone)]
pub struct TopOptions {
    /// Grouping keys (default `comm,dso,symbol`, perf's default).
    pub sort: Vec<SortKey>,
    /// Order by total (inclusive) share; default: true when call chains exist.
    pub children: bool,
    /// Hide rows whose ordering share is below this percentage (default 0).
    pub percent_limit: f64,
    /// Name shown in the header (the input file).
    pub source: String,
    /// The event to show; None: every event, one section each (default).
    pub event: Option<EventId>,
    /// Width, row budget and names (default: every row, names whole).
    pub fit: Fit,
    /// Under each row, its call tree (`--format tree`); default none.
    pub tree: Option<TreeOptions>,
}

impl Default for TopOptions {
    fn default() -> Self {
        TopOptions {
            sort: vec![SortKey::Comm, SortKey::Dso, SortKey::Symbol],
            children: true,
            percent_limit: 0.0,
            source: String::new(),
            event: None,
            fit: Fit::default(),
            tree: None,
        }
    }
}

pub struct Top {
    pub options: TopOptions,
}

/// One row's key values, in the order of `TopOptions::sort`.
type RowKey = Vec<String>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub key: RowKey,
    pub self_weight: u64,
    pub self_samples: u64,
    pub total_weight: u64,
}

impl Top {
    pub fn new(options: TopOptions) -> Top {
        Top { options }
    }

    fn row_key(&self, profile: &NamedProfile, stack: &NamedStack, frame: FrameId) -> RowKey {
        let info = profile.frame(frame);
        self.options
            .sort
            .iter()
            .map(|key| match key {
                SortKey::Comm => stack.comm.to_string(),
                SortKey::Pid => stack.pid.to_string(),
                SortKey::Dso => info.module.clone(),
                SortKey::Symbol => info.name.clone(),
            })
            .collect()
    }

    /// Rows ordered by the share that `children` selects, largest first.
    pub fn rows(&self, profile: &NamedProfile) -> Vec<Row> {
        let mut rows: HashMap<RowKey, Row> = HashMap::new();
        for stack in &profile.stacks {
            // perf semantics: inlined frames are folded into their function.
            let mut real = stack
                .frames
                .iter()
                .copied()
                .filter(|&f| !profile.frame(f).inlined)
                .peekable();
            let Some(&leaf) = real.peek() else { continue };
            let self_key = self.row_key(profile, stack, leaf);
            let row = rows.entry(self_key.clone()).or_insert_with(|| Row {
                key: self_key,
                ..Row::default()
            });
            row.self_weight = row.self_weight.saturating_add(stack.weight);
            row.self_samples = row.self_samples.saturating_add(stack.samples);
            // Each key counts once per stack, however often it recurses.
            let mut seen: HashSet<RowKey> = HashSet::new();
            for frame in real {
                let key = self.row_key(profile, stack, frame);
                if seen.insert(key.clone()) {
                    let row = rows.entry(key.clone()).or_insert_with(|| Row {
                        key,
                        ..Row::default()
                    });
                    row.total_weight = row.total_weight.saturating_add(stack.weight);
                }
            }
        }
        let mut rows: Vec<Row> = rows.into_values().collect();
        let children = self.options.children;
        rows.sort_by(|a, b| {
            let (wa, wb) = if children {
                (a.total_weight, b.total_weight)
            } else {
                (a.self_weight, b.self_weight)
            };
            wb.cmp(&wa)
                .then_with(|| b.self_weight.cmp(&a.self_weight))
                .then_with(|| a.key.cmp(&b.key))
        });
        rows
    }
}

/// A weight in its unit, for headers.
fn weight_text(weight: u64, unit: Unit) -> String {
    match unit {
        Unit::Nanoseconds | Unit::OffCpuNanoseconds => text::duration(weight),
        Unit::Events | Unit::Faults => format!("{} {unit}", text::thousands(weight)),
    }
}

/// Key columns other than the flexible one are at most this wide.
const MAX_KEY_COLUMNS: usize = 40;
/// With a line width, the flexible key (the symbol) keeps at least this
/// much, and the other keys give way down to [`MIN_KEY_COLUMNS`].
const MIN_FLEXIBLE_COLUMNS: usize = 40;
const MIN_KEY_COLUMNS: usize = 10;

/// Names of the weight column by unit.
fn weight_header(unit: Unit) -> &'static str {
    match unit {
        Unit::Nanoseconds => "Self time",
        Unit::OffCpuNanoseconds => "Self off-CPU",
        Unit::Events | Unit::Faults => "Self count",
    }
}

/// Widths of one table's columns: numbers as wide as what they show, keys
/// as wide as their values; with a line width, the flexible key takes
/// what the others leave.
struct Columns {
    samples: usize,
    weight: usize,
    keys: Vec<usize>,
}

impl Columns {
    /// `  100.00%  60.00% ` then the two number columns.
    fn numbers(&self) -> usize {
        2 + 7 + 1 + 7 + 1 + self.samples + 1 + self.weight
    }
}

impl Top {
    /// The key that takes the leftover width and is cut in the middle: the
    /// symbol, else the last key.
    fn flexible_key(&self) -> usize {
        let sort = &self.options.sort;
        sort.iter()
            .position(|k| *k == SortKey::Symbol)
            .unwrap_or(sort.len().saturating_sub(1))
    }

    /// A key's value as shown in `columns`: symbols cut in the middle (with
    /// C++ parameter lists shortened), labels at the end.
    fn shown_key(&self, key: SortKey, value: &str, columns: usize) -> String {
        match key {
            SortKey::Symbol => self.options.fit.name(value, columns),
            _ => self.options.fit.label(value, columns),
        }
    }

    fn columns(&self, rows: &[Row], unit: Unit) -> Columns {
        let fit = &self.options.fit;
        let widest = |cells: &mut dyn Iterator<Item = String>, header: &str| {
            cells
                .map(|c| text::columns(&c))
                .max()
                .unwrap_or(0)
                .max(header.len())
        };
        let samples = widest(
            &mut rows.iter().map(|r| text::thousands(r.self_samples)),
            "Samples",
        );
        let weight = widest(
            &mut rows.iter().map(|r| text::weight(r.self_weight, unit)),
            weight_header(unit),
        );
        let flexible = self.flexible_key();
        let mut keys: Vec<usize> = self
            .options
            .sort
            .iter()
            .enumerate()
            .map(|(i, &key)| {
                let values = &mut rows
                    .iter()
                    .map(|r| self.shown_key(key, &r.key[i], usize::MAX));
                let width = widest(values, key.header());
                if i == flexible {
                    width
                } else {
                    width.min(MAX_KEY_COLUMNS)
                }
            })
            .collect();
        let mut columns = Columns {
            samples,
            weight,
            keys: Vec::new(),
        };
        let Some(width) = fit.width.filter(|_| !fit.full_names && !keys.is_empty()) else {
            columns.keys = keys;
            return columns;
        };
        let needed = keys[flexible];
        let left_for_flexible = |keys: &[usize]| {
            let others: usize = keys
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != flexible)
                .map(|(_, w)| w + 2)
                .sum();
            width.saturating_sub(columns.numbers() + others + 2)
        };
        // Shrink the widest other key until the flexible one has room.
        while left_for_flexible(&keys) < needed.min(MIN_FLEXIBLE_COLUMNS) {
            let Some(widest) = keys
                .iter_mut()
                .enumerate()
                .filter(|&(i, ref w)| i != flexible && **w > MIN_KEY_COLUMNS)
                .map(|(_, w)| w)
                .max_by_key(|w| **w)
            else {
                break;
            };
            *widest -= 1;
        }
        keys[flexible] = needed.min(left_for_flexible(&keys).max(MIN_KEY_COLUMNS));
        columns.keys = keys;
        columns
    }

    /// One event's section: its header line and its rows.
    fn write_event(
        &self,
        profile: &Profile,
        event: EventId,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let stats = profile.event(event);
        let total = stats.weight;
        writeln!(
            out,
            "# Event: {} (weight unit: {}), {} samples, total weight {}, duration {}",
            stats.name,
            stats.unit,
            stats.samples,
            weight_text(total, stats.unit),
            text::duration(profile.stats.duration_ns()),
        )?;
        writeln!(out, "#")?;
        let view = profile.named(event);
        let ordering = |row: &Row| {
            if self.options.children {
                row.total_weight
            } else {
                row.self_weight
            }
        };
        let all = self.rows(&view);
        let rows_total = all.len();
        let mut rows: Vec<Row> = all
            .into_iter()
            .filter(|row| percent(ordering(row), total) >= self.options.percent_limit)
            .collect();
        let below_limit = rows_total - rows.len();
        let shown = self.options.fit.rows.unwrap_or(usize::MAX).min(rows.len());
        let past_rows = rows.len() - shown;
        rows.truncate(shown);

        let fit = &self.options.fit;
        let columns = self.columns(&rows, stats.unit);
        let last = self.options.sort.len().saturating_sub(1);
        let mut header = format!(
            "# {:>7} {:>7} {:>w_samples$} {:>w_weight$}",
            "Total",
            "Self",
            "Samples",
            weight_header(stats.unit),
            w_samples = columns.samples,
            w_weight = columns.weight,
        );
        for (i, key) in self.options.sort.iter().enumerate() {
            let width = columns.keys[i];
            header.push_str("  ");
            header.push_str(&text::pad(&fit.label(key.header(), width), width));
        }
        writeln!(out, "{}", header.trim_end())?;
        let mut trees = match &self.options.tree {
            Some(options) => self.trees(&view, &rows, options),
            None => Vec::new(),
        }
        .into_iter();
        for row in &rows {
            let mut line = format!(
                "  {:>6.2}% {:>6.2}% {:>w_samples$} {:>w_weight$}",
                percent(row.total_weight, total),
                percent(row.self_weight, total),
                text::thousands(row.self_samples),
                text::weight(row.self_weight, stats.unit),
                w_samples = columns.samples,
                w_weight = columns.weight,
            );
            for (i, (value, &key)) in row.key.iter().zip(&self.options.sort).enumerate() {
                let width = columns.keys[i];
                let shown = self.shown_key(key, value, width);
                line.push_str("  ");
                if i == last {
                    line.push_str(&shown);
                } else {
                    line.push_str(&text::pad(&shown, width));
                }
            }
            writeln!(out, "{line}")?;
            if let (Some(options), Some(tree)) = (&self.options.tree, trees.next()) {
                tree.write(&view, total, options, fit, 10, out)?;
                writeln!(out)?;
            }
        }
        write_hidden_rows(out, past_rows, below_limit, self.options.percent_limit)
    }
}

impl Top {
    /// One call tree per row. Each stack counts once under a row, from the
    /// row's outermost frame (so recursion does not count twice, as in the
    /// totals); without `children` only stacks whose leaf is the row.
    fn trees(&self, view: &NamedProfile, rows: &[Row], options: &TreeOptions) -> Vec<CallTree> {
        let row_of: HashMap<&RowKey, usize> =
            rows.iter().enumerate().map(|(i, r)| (&r.key, i)).collect();
        let mut trees: Vec<CallTree> = rows.iter().map(|_| CallTree::new()).collect();
        // With `children` a row counts every stack it is in (its total);
        // without, only stacks it is the leaf of (its self).
        let inclusive = self.options.children;
        let mut outermost: HashMap<usize, usize> = HashMap::new();
        for stack in &view.stacks {
            let real: Vec<FrameId> = stack
                .frames
                .iter()
                .copied()
                .filter(|&f| !view.frame(f).inlined)
                .collect();
            outermost.clear();
            let considered = if inclusive {
                real.len()
            } else {
                real.len().min(1)
            };
            for (at, &frame) in real[..considered].iter().enumerate() {
                if let Some(&row) = row_of.get(&self.row_key(view, stack, frame)) {
                    outermost.insert(row, at);
                }
            }
            for (&row, &at) in &outermost {
                let tree = &mut trees[row];
                let path: Box<dyn Iterator<Item = FrameId>> = match options.order {
                    TreeOrder::Callee => Box::new(real[at + 1..].iter().copied()),
                    // Self time has no callees: as perf's `-g caller`, the
                    // path from the thread's first frame down to the row.
                    TreeOrder::Caller if !inclusive => {
                        Box::new(real[at + 1..].iter().rev().copied())
                    }
                    TreeOrder::Caller => Box::new(real[..at].iter().rev().copied()),
                };
                tree.add(path, stack.weight, options.max_depth);
            }
        }
        trees
    }
}

/// The line that says what a row budget or a percent limit left out, and
/// how to see it.
pub fn write_hidden_rows(
    out: &mut dyn Write,
    past_rows: usize,
    below_limit: usize,
    percent_limit: f64,
) -> io::Result<()> {
    if past_rows > 0 {
        writeln!(
            out,
            "# ... {} more rows not shown: -n 0 shows all{}",
            text::thousands(past_rows as u64),
            if below_limit > 0 {
                format!(
                    " ({} more below --percent-limit {percent_limit})",
                    text::thousands(below_limit as u64)
                )
            } else {
                String::new()
            }
        )?;
    } else if below_limit > 0 {
        writeln!(
            out,
            "# ... {} rows below --percent-limit {percent_limit} not shown: --percent-limit 0 shows them",
            text::thousands(below_limit as u64)
        )?;
    }
    Ok(())
}

impl Output for Top {
    fn write(&self, profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
        let stats = &profile.stats;
        if !self.options.source.is_empty() {
            writeln!(out, "# rprof report: {}", self.options.source)?;
        }
        let events: Vec<EventId> = match self.options.event {
            Some(event) => vec![event],
            None => (0..profile.events.len() as EventId).collect(),
        };
        if self.options.event.is_none() && events.len() > 1 {
            let names: Vec<&str> = profile.events.iter().map(|e| e.name.as_str()).collect();
            writeln!(
                out,
                "# {} events ({}), one section each; pick one with --event NAME",
                events.len(),
                names.join(", ")
            )?;
        }
        let lost_share = percent(
            stats.lost,
            profile.total_samples().saturating_add(stats.lost),
        );
        writeln!(
            out,
            "# Lost: {} samples ({lost_share:.2}%), throttled {} times",
            stats.lost, stats.throttled
        )?;
        if stats.filtered_out > 0 {
            writeln!(out, "# Filtered out: {} samples", stats.filtered_out)?;
        }
        if stats.dwarf_stacks > 0 {
            writeln!(
                out,
                "# DWARF stacks: {} unwound, {} truncated ({:.2}%)",
                stats.dwarf_stacks,
                stats.truncated_stacks,
                percent(stats.truncated_stacks, stats.dwarf_stacks)
            )?;
        }
        if let Some(off_cpu) = &stats.off_cpu {
            for line in super::offcpu::header_lines(off_cpu) {
                writeln!(out, "{line}")?;
            }
        }
        for warning in &profile.warnings {
            writeln!(out, "# Warning: {warning}")?;
        }
        for (i, &event) in events.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            self.write_event(profile, event, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::aggregate::{
        Event, Location, Module, RecordingStats, StackSample, Thread, TimeBuckets,
    };
    use crate::process::{ModuleKind, ModuleRef};
    use crate::symbolize::Frame;

    fn frame(name: &str, inlined: bool) -> Frame {
        Frame {
            function: Some(name.into()),
            file: None,
            line: 0,
            inlined,
        }
    }

    /// app: main -> a (with `helper` inlined) 60 ns in 6 samples, main -> b 40 ns in 4.
    pub(crate) fn profile() -> Profile {
        let location = |address, frames: Vec<Frame>| Location {
            module: 0,
            address,
            frames: Arc::from(frames),
        };
        let sample = |stack, count, weight| StackSample {
            event: 0,
            stack,
            thread: 0,
            cgroup: None,
            bucket: 0,
            count,
            weight,
        };
        Profile {
            events: vec![Event {
                name: "cpu-clock".into(),
                unit: Unit::Nanoseconds,
                samples: 10,
                weight: 100,
            }],
            modules: vec![Module {
                module: ModuleRef {
                    kind: ModuleKind::Elf,
                    path: "/bin/app".into(),
                    build_id: None,
                    pid: None,
                },
                mapping: None,
            }],
            locations: vec![
                location(0x10, vec![frame("main", false)]),
                location(0x20, vec![frame("helper", true), frame("a", false)]),
                location(0x30, vec![frame("b", false)]),
            ],
            stacks: vec![Box::from([1, 0]), Box::from([2, 0])],
            threads: vec![Thread {
                pid: 1,
                tid: 1,
                comm: "app".into(),
            }],
            cgroups: Vec::new(),
            samples: vec![sample(0, 6, 60), sample(1, 4, 40)],
            time: TimeBuckets {
                origin_ns: 0,
                bucket_ns: 1,
            },
            stats: RecordingStats::default(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn self_goes_to_leaf_function_and_total_to_every_caller() {
        let top = Top::new(TopOptions {
            sort: vec![SortKey::Symbol],
            ..TopOptions::default()
        });
        let rows = top.rows(&profile().named(0));
        let get = |name: &str| rows.iter().find(|r| r.key[0] == name).unwrap().clone();
        assert_eq!(
            (get("main").self_weight, get("main").total_weight),
            (0, 100)
        );
        // The inlined helper is folded into `a`, as perf does without --inline.
        assert_eq!(
            (
                get("a").self_weight,
                get("a").total_weight,
                get("a").self_samples
            ),
            (60, 60, 6)
        );
        assert_eq!(get("b").self_weight, 40);
        assert!(rows.iter().all(|r| r.key[0] != "helper"));
        assert_eq!(rows[0].key[0], "main", "children mode orders by total");
    }

    #[test]
    fn percent_limit_hides_small_rows_and_header_states_event() {
        let top = Top::new(TopOptions {
            sort: vec![SortKey::Symbol],
            children: false,
            percent_limit: 50.0,
            ..TopOptions::default()
        });
        let mut out = Vec::new();
        top.write(&profile(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("# Event: cpu-clock (weight unit: ns), 10 samples"));
        assert!(text.contains("  a\n"), "{text}");
        assert!(!text.contains("  b\n"), "{text}");
    }

    #[test]
    fn several_events_get_a_section_each_in_their_own_unit() {
        let mut p = profile();
        p.events.push(Event {
            name: "page-faults".into(),
            unit: Unit::Events,
            samples: 3,
            weight: 3,
        });
        p.samples.push(StackSample {
            event: 1,
            stack: 1,
            thread: 0,
            cgroup: None,
            bucket: 0,
            count: 3,
            weight: 3,
        });
        let top = Top::new(TopOptions {
            sort: vec![SortKey::Symbol],
            children: false,
            ..TopOptions::default()
        });
        let mut out = Vec::new();
        top.write(&p, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("# 2 events (cpu-clock, page-faults)"),
            "{text}"
        );
        let faults = text.split("# Event: page-faults").nth(1).expect(&text);
        assert!(faults.starts_with(" (weight unit: events), 3 samples, total weight 3 events"));
        // b has all of page-faults' weight: 100%, not 3 out of 103 mixed units.
        assert!(
            faults.contains("100.00% 100.00%       3          3  b"),
            "{text}"
        );

        let only = Top::new(TopOptions {
            event: Some(1),
            ..top.options.clone()
        });
        let mut out = Vec::new();
        only.write(&p, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("# Event: cpu-clock"), "{text}");
    }

    #[test]
    fn unknown_sort_key_is_rejected_with_the_valid_ones() {
        let err = SortKey::parse_list("comm,bogus").unwrap_err();
        assert!(err.contains("bogus") && err.contains("symbol"));
    }
}
