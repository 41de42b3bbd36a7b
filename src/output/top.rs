//! The `top` table: functions (or other sort keys) with self and total
//! share, like `perf report --stdio`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use super::Output;
use crate::aggregate::{FrameId, Profile, Stack};

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
}

impl Default for TopOptions {
    fn default() -> Self {
        TopOptions {
            sort: vec![SortKey::Comm, SortKey::Dso, SortKey::Symbol],
            children: true,
            percent_limit: 0.0,
            source: String::new(),
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

    fn row_key(&self, profile: &Profile, stack: &Stack, frame: FrameId) -> RowKey {
        let info = profile.frame(frame);
        self.options
            .sort
            .iter()
            .map(|key| match key {
                SortKey::Comm => stack.comm.clone(),
                SortKey::Pid => stack.pid.to_string(),
                SortKey::Dso => info.module.clone(),
                SortKey::Symbol => info.name.clone(),
            })
            .collect()
    }

    /// Rows ordered by the share that `children` selects, largest first.
    pub fn rows(&self, profile: &Profile) -> Vec<Row> {
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

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Human duration from nanoseconds.
pub fn format_ns(ns: u64) -> String {
    let secs = ns as f64 / 1e9;
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else {
        format!("{:.3} ms", ns as f64 / 1e6)
    }
}

impl Output for Top {
    fn write(&self, profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
        let stats = &profile.stats;
        let total = stats.weight;
        let weight_text = if profile.unit == "ns" {
            format_ns(total)
        } else {
            format!("{total} {}", profile.unit)
        };
        if !self.options.source.is_empty() {
            writeln!(out, "# rprof report: {}", self.options.source)?;
        }
        writeln!(
            out,
            "# Event: {} (weight unit: {}), {} samples, total weight {}, duration {}",
            profile.event_name,
            profile.unit,
            stats.samples,
            weight_text,
            format_ns(stats.duration_ns()),
        )?;
        let lost_share = percent(stats.lost, stats.samples.saturating_add(stats.lost));
        writeln!(
            out,
            "# Lost: {} samples ({lost_share:.2}%), throttled {} times",
            stats.lost, stats.throttled
        )?;
        if stats.filtered_out > 0 {
            writeln!(out, "# Filtered out: {} samples", stats.filtered_out)?;
        }
        for warning in &profile.warnings {
            writeln!(out, "# Warning: {warning}")?;
        }
        writeln!(out, "#")?;
        let rows = self.rows(profile);
        let widths: Vec<usize> = self
            .options
            .sort
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let widest = rows
                    .iter()
                    .map(|r| r.key[i].chars().count())
                    .max()
                    .unwrap_or(0);
                widest.max(key.header().len()).min(40)
            })
            .collect();
        let mut header = format!(
            "# {:>7} {:>7} {:>9} {:>14}",
            "Total",
            "Self",
            "Samples",
            format!("Weight({})", profile.unit)
        );
        for (i, key) in self.options.sort.iter().enumerate() {
            header.push_str(&format!("  {:<w$}", key.header(), w = widths[i]));
        }
        writeln!(out, "{}", header.trim_end())?;
        for row in rows {
            let ordering = if self.options.children {
                row.total_weight
            } else {
                row.self_weight
            };
            if percent(ordering, total) < self.options.percent_limit {
                continue;
            }
            let mut line = format!(
                "  {:>6.2}% {:>6.2}% {:>9} {:>14}",
                percent(row.total_weight, total),
                percent(row.self_weight, total),
                row.self_samples,
                row.self_weight
            );
            let last = row.key.len().saturating_sub(1);
            for (i, value) in row.key.iter().enumerate() {
                if i == last {
                    line.push_str(&format!("  {value}"));
                } else {
                    line.push_str(&format!("  {:<w$}", value, w = widths[i]));
                }
            }
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{CodeKind, FrameInfo};

    fn profile() -> Profile {
        let frame = |name: &str| FrameInfo {
            name: name.into(),
            module: "app".into(),
            kind: CodeKind::User,
            inlined: false,
            resolved: true,
        };
        let mut inlined = frame("helper");
        inlined.inlined = true;
        let mut p = Profile {
            event_name: "cpu-clock".into(),
            unit: "ns".into(),
            frames: vec![frame("main"), frame("a"), frame("b"), inlined],
            stacks: vec![
                Stack {
                    comm: "app".into(),
                    pid: 1,
                    frames: vec![3, 1, 0],
                    weight: 60,
                    samples: 6,
                },
                Stack {
                    comm: "app".into(),
                    pid: 1,
                    frames: vec![2, 0],
                    weight: 40,
                    samples: 4,
                },
            ],
            ..Profile::default()
        };
        p.stats.samples = 10;
        p.stats.weight = 100;
        p
    }

    #[test]
    fn self_goes_to_leaf_function_and_total_to_every_caller() {
        let top = Top::new(TopOptions {
            sort: vec![SortKey::Symbol],
            ..TopOptions::default()
        });
        let rows = top.rows(&profile());
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
    fn unknown_sort_key_is_rejected_with_the_valid_ones() {
        let err = SortKey::parse_list("comm,bogus").unwrap_err();
        assert!(err.contains("bogus") && err.contains("symbol"));
    }
}
