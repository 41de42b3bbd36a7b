//! The outputs of `rprof diff`: a ranked table, differential folded stacks,
//! JSON, and a differential flame graph (an SVG writer of its own, since
//! each frame is coloured by its own change).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::compare::{DiffResult, FunctionDiff, Normalisation, Replication, SideSummary, Verdict};
use super::input::FuncId;

/// Points (percent of a total) of a share.
fn pts(share: f64) -> f64 {
    share * 100.0
}

fn what_is_compared(result: &DiffResult) -> String {
    let unit = result
        .after
        .inputs
        .first()
        .map(|i| match &i.event {
            Some(event) => format!("{event} weight ({})", i.unit),
            None => format!("weight ({})", i.unit),
        })
        .unwrap_or_default();
    match result.normalisation {
        Normalisation::Share => format!(
            "shares of {unit}, each side normalised to its own total (points = percent of that total)"
        ),
        Normalisation::PerSecond => format!(
            "{unit} per second, both sides over BEFORE's total per second (points = percent of it)"
        ),
    }
}

fn duration_text(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else {
        format!("{:.0} ms", ns as f64 / 1e6)
    }
}

fn side_lines(label: &str, side: &SideSummary) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, input) in side.inputs.iter().enumerate() {
        let mut parts = vec![input.kind.name().to_string()];
        if let Some(samples) = input.samples {
            parts.push(format!("{samples} samples"));
        }
        if let Some(d) = input.duration_ns {
            parts.push(duration_text(d));
        }
        let head = if i == 0 { label } else { "" };
        lines.push(format!("{head:<8}{} ({})", input.name, parts.join(", ")));
    }
    lines
}

fn replication_text(rep: &Replication) -> String {
    match rep {
        Replication::Recordings(n) => format!("{n} inputs, each one observation"),
        Replication::Slices {
            slice_ns: Some((lo, hi)),
            min_slices,
            ..
        } => {
            let slices = if lo == hi {
                duration_text(*lo)
            } else {
                format!("{}-{}", duration_text(*lo), duration_text(*hi))
            };
            format!(
                "time slices of {slices}, at least {} slices",
                min_slices.unwrap_or(0)
            )
        }
        Replication::Slices { bucket_ns, .. } => format!(
            "time slices (too few busy {} buckets for a test)",
            duration_text(*bucket_ns)
        ),
        Replication::None => "none (one input without times)".to_string(),
    }
}

/// The header lines every text output starts with.
pub fn header(result: &DiffResult) -> Vec<String> {
    let mut lines = vec![format!("rprof diff: {}", what_is_compared(result))];
    lines.extend(side_lines("BEFORE", &result.before));
    lines.extend(side_lines("AFTER", &result.after));
    if result.tested > 0 {
        lines.push(format!(
            "test    Welch's t on the inclusive share, for a change of more than {:.2} points \
             (--min-effect); BEFORE: {}; AFTER: {}",
            pts(result.options.min_effect),
            replication_text(&result.before.replication),
            replication_text(&result.after.replication)
        ));
        lines.push(format!(
            "        Benjamini-Hochberg at a false discovery rate of {}% over {} functions \
             with an inclusive share >= {:.2} points (mean of both sides); intervals are {}%",
            percent_text(result.options.alpha),
            result.tested,
            pts(result.options.min_share),
            percent_text(1.0 - result.options.alpha)
        ));
    } else {
        lines.push("test    none: see the notes below".to_string());
    }
    lines
}

/// A fraction as a short percentage: 0.05 -> "5", 0.001 -> "0.1".
fn percent_text(fraction: f64) -> String {
    let text = format!("{:.4}", fraction * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn signed(v: f64) -> String {
    format!("{v:+.2}")
}

/// The table: functions ranked by change.
pub fn write_top(result: &DiffResult, out: &mut dyn Write) -> io::Result<()> {
    for line in header(result) {
        writeln!(out, "{line}")?;
    }
    writeln!(out)?;
    let ci_head = format!("{}% CI", percent_text(1.0 - result.options.alpha));
    writeln!(out, "{:>7}{:>43}", "total", "self")?;
    writeln!(
        out,
        "{:>7} {:>7} {:>7}  {:<17} {:>7} {:>7} {:>7}  {:<26} function",
        "before", "after", "delta", ci_head, "before", "after", "delta", "verdict"
    )?;
    let mut small = 0usize;
    for d in &result.diffs {
        let rare = (d.before.total + d.after.total) / 2.0 < result.options.min_share;
        if d.verdict == Verdict::Small
            || (rare && matches!(d.verdict, Verdict::New | Verdict::Gone))
        {
            small += 1;
            continue;
        }
        writeln!(out, "{}", top_row(d))?;
    }
    if small > 0 {
        writeln!(
            out,
            "\n{small} functions under --min-share {:.2} (mean of both sides) are not shown (see --format json)",
            pts(result.options.min_share)
        )?;
    }
    for note in &result.notes {
        writeln!(out, "\nnote: {note}")?;
    }
    Ok(())
}

fn top_row(d: &FunctionDiff) -> String {
    let ci = match &d.test {
        Some(t) => format!(
            "[{}, {}]",
            signed(pts(t.interval.0)),
            signed(pts(t.interval.1))
        ),
        None => "-".to_string(),
    };
    let mut verdict = d.verdict.label().to_string();
    if matches!(d.verdict, Verdict::New | Verdict::Gone) && d.significant {
        verdict.push_str(" (significant)");
    }
    format!(
        "{:>7.2} {:>7.2} {:>7}  {:<17} {:>7.2} {:>7.2} {:>7}  {:<26} {}",
        pts(d.before.total),
        pts(d.after.total),
        signed(pts(d.delta_total())),
        ci,
        pts(d.before.self_share),
        pts(d.after.self_share),
        signed(pts(d.delta_self())),
        verdict,
        d.name
    )
}

/// The stack as a folded line's first field.
fn stack_text(result: &DiffResult, frames: &[FuncId]) -> String {
    let mut line = String::new();
    for (i, &f) in frames.iter().enumerate() {
        if i > 0 {
            line.push(';');
        }
        line.push_str(&result.functions.name(f).replace(';', ":"));
    }
    line
}

/// Differential folded stacks, `stack before after` (FlameGraph's
/// difffolded.pl and inferno-diff-folded format). AFTER's counts are as
/// recorded; BEFORE's are its shares times AFTER's total, so the two
/// columns compare shares and sum to the same total.
pub fn write_folded(result: &DiffResult, out: &mut dyn Write) -> io::Result<()> {
    let after_total: u64 = result
        .stacks
        .iter()
        .fold(0u64, |sum, s| sum.saturating_add(s.after_count));
    let after_share: f64 = result.stacks.iter().map(|s| s.after).sum();
    let unit = if after_share > 0.0 {
        after_total as f64 / after_share
    } else {
        0.0
    };
    let mut lines: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for s in &result.stacks {
        let before = (s.before * unit).round() as u64;
        let entry = lines.entry(stack_text(result, &s.frames)).or_default();
        entry.0 = entry.0.saturating_add(before);
        entry.1 = entry.1.saturating_add(s.after_count);
    }
    for (stack, (before, after)) in lines {
        if before > 0 || after > 0 {
            writeln!(out, "{stack} {before} {after}")?;
        }
    }
    Ok(())
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number; null when not finite.
fn json_num(v: f64) -> String {
    if v.is_finite() {
        let text = format!("{v}");
        if text.contains('e') || text.contains('.') {
            text
        } else {
            format!("{text}.0")
        }
    } else {
        "null".to_string()
    }
}

fn json_opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn side_json(side: &SideSummary) -> String {
    let inputs: Vec<String> = side
        .inputs
        .iter()
        .map(|i| {
            format!(
                "{{\"name\":{},\"kind\":{},\"event\":{},\"unit\":{},\"samples\":{},\"duration_ns\":{},\"weight\":{},\"timed\":{}}}",
                json_str(&i.name),
                json_str(i.kind.name()),
                i.event.as_deref().map_or_else(|| "null".to_string(), json_str),
                json_str(&i.unit),
                json_opt(i.samples),
                json_opt(i.duration_ns),
                i.weight,
                i.timed
            )
        })
        .collect();
    let replication = match &side.replication {
        Replication::Recordings(n) => format!("{{\"kind\":\"recordings\",\"count\":{n}}}"),
        Replication::Slices {
            bucket_ns,
            slice_ns,
            min_slices,
        } => format!(
            "{{\"kind\":\"slices\",\"bucket_ns\":{bucket_ns},\"slice_ns_min\":{},\"slice_ns_max\":{},\"min_slices\":{}}}",
            json_opt(slice_ns.map(|s| s.0)),
            json_opt(slice_ns.map(|s| s.1)),
            json_opt(*min_slices)
        ),
        Replication::None => "{\"kind\":\"none\"}".to_string(),
    };
    format!(
        "{{\"inputs\":[{}],\"replication\":{replication}}}",
        inputs.join(",")
    )
}

/// Every function with its numbers (docs/diff.md describes the fields).
/// Shares are in points (percent).
pub fn write_json(result: &DiffResult, out: &mut dyn Write) -> io::Result<()> {
    let normalisation = match result.normalisation {
        Normalisation::Share => "share",
        Normalisation::PerSecond => "per_second",
    };
    write!(
        out,
        "{{\"rprof_diff\":1,\"normalisation\":\"{normalisation}\",\"alpha\":{},\"min_share_points\":{},\"min_effect_points\":{},\"tested\":{},\"before\":{},\"after\":{},\"notes\":[{}],\"functions\":[",
        json_num(result.options.alpha),
        json_num(pts(result.options.min_share)),
        json_num(pts(result.options.min_effect)),
        result.tested,
        side_json(&result.before),
        side_json(&result.after),
        result
            .notes
            .iter()
            .map(|n| json_str(n))
            .collect::<Vec<_>>()
            .join(",")
    )?;
    for (i, d) in result.diffs.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let test = match &d.test {
            Some(t) => format!(
                "{{\"t\":{},\"df\":{},\"p\":{},\"q\":{},\"ci\":[{},{}],\"before_se\":{},\"after_se\":{},\"before_units\":{},\"after_units\":{}}}",
                json_num(t.t),
                json_num(t.df),
                json_num(t.p),
                json_num(t.q),
                json_num(pts(t.interval.0)),
                json_num(pts(t.interval.1)),
                json_num(pts(t.before.se)),
                json_num(pts(t.after.se)),
                t.before.units,
                t.after.units
            ),
            None => "null".to_string(),
        };
        write!(
            out,
            "\n{{\"name\":{},\"verdict\":\"{}\",\"significant\":{},\"before\":{{\"self\":{},\"total\":{}}},\"after\":{{\"self\":{},\"total\":{}}},\"delta_self\":{},\"delta_total\":{},\"test\":{test}}}",
            json_str(&d.name),
            d.verdict.key(),
            d.significant,
            json_num(pts(d.before.self_share)),
            json_num(pts(d.before.total)),
            json_num(pts(d.after.self_share)),
            json_num(pts(d.after.total)),
            json_num(pts(d.delta_self())),
            json_num(pts(d.delta_total())),
        )?;
    }
    writeln!(out, "\n]}}")
}

/// A frame of the differential flame graph: one call path.
#[derive(Debug, Default)]
struct Node {
    func: FuncId,
    before: f64,
    after: f64,
    /// Drawn width, in shares: AFTER's, plus BEFORE's for paths AFTER lacks.
    width: f64,
    children: BTreeMap<String, usize>,
}

struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn build(result: &DiffResult) -> Tree {
        let mut nodes = vec![Node {
            func: FuncId::MAX,
            ..Node::default()
        }];
        for s in &result.stacks {
            let mut at = 0;
            nodes[0].before += s.before;
            nodes[0].after += s.after;
            for &f in s.frames.iter() {
                let name = result.functions.name(f);
                let next = match nodes[at].children.get(name) {
                    Some(&next) => next,
                    None => {
                        nodes.push(Node {
                            func: f,
                            ..Node::default()
                        });
                        let id = nodes.len() - 1;
                        nodes[at].children.insert(name.to_string(), id);
                        id
                    }
                };
                at = next;
                nodes[at].before += s.before;
                nodes[at].after += s.after;
            }
        }
        let mut tree = Tree { nodes };
        tree.widths(0);
        tree
    }

    /// Width = AFTER's self share + the children's widths; a path only in
    /// BEFORE is drawn at its BEFORE width.
    fn widths(&mut self, id: usize) -> f64 {
        let children: Vec<usize> = self.nodes[id].children.values().copied().collect();
        let node = &self.nodes[id];
        if node.after <= 0.0 {
            let width = node.before;
            self.mark_gone(id);
            return width;
        }
        let mut child_after = 0.0;
        for &c in &children {
            child_after += self.nodes[c].after;
        }
        let own = (self.nodes[id].after - child_after).max(0.0);
        let mut width = own;
        for c in children {
            width += self.widths(c);
        }
        self.nodes[id].width = width;
        width
    }

    fn mark_gone(&mut self, id: usize) {
        self.nodes[id].width = self.nodes[id].before;
        let children: Vec<usize> = self.nodes[id].children.values().copied().collect();
        for c in children {
            self.mark_gone(c);
        }
    }
}

/// Options of the differential flame graph.
#[derive(Debug, Clone)]
pub struct SvgOptions {
    /// Image width in pixels (default 1200).
    pub width: f64,
    /// Frame height in pixels (default 16).
    pub frame_height: f64,
    pub title: String,
}

impl Default for SvgOptions {
    fn default() -> Self {
        SvgOptions {
            width: 1200.0,
            frame_height: 16.0,
            title: "Differential flame graph".to_string(),
        }
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The fill of a frame: red where its function's inclusive share grew
/// significantly, blue where it shrank, grey otherwise; stronger with the
/// frame's own change. Frames only in BEFORE are pale blue.
fn fill(result_diff: Option<&FunctionDiff>, node: &Node, max_delta: f64) -> String {
    if node.after <= 0.0 {
        return "rgb(190,210,250)".to_string();
    }
    let delta = node.after - node.before;
    let Some(d) = result_diff.filter(|d| d.significant) else {
        return "rgb(210,210,210)".to_string();
    };
    if delta == 0.0 || delta.signum() != d.delta_total().signum() {
        return "rgb(210,210,210)".to_string();
    }
    let strength = (delta.abs() / max_delta.max(1e-12)).clamp(0.0, 1.0);
    let light = (210.0 - 160.0 * strength).round() as u8;
    if delta > 0.0 {
        format!("rgb(250,{light},{light})")
    } else {
        format!("rgb({light},{light},250)")
    }
}

/// The differential flame graph on AFTER's stacks (and BEFORE's vanished
/// ones), root at the bottom.
pub fn write_svg(result: &DiffResult, options: &SvgOptions, out: &mut dyn Write) -> io::Result<()> {
    let tree = Tree::build(result);
    let by_id: BTreeMap<FuncId, &FunctionDiff> = result.diffs.iter().map(|d| (d.id, d)).collect();
    let max_delta = tree
        .nodes
        .iter()
        .skip(1)
        .map(|n| (n.after - n.before).abs())
        .fold(0.0_f64, f64::max);
    let depth = max_depth(&tree, 0);
    let (pad, top) = (10.0, 60.0);
    let fh = options.frame_height;
    let height = top + (depth as f64 + 1.0) * fh + 30.0;
    let plot = options.width - 2.0 * pad;
    let total = tree.nodes[0].width.max(1e-12);
    let mut body = String::new();
    // Iterative walk: (node, x, level).
    let mut todo = vec![(0usize, 0.0f64, 0usize)];
    while let Some((id, x, level)) = todo.pop() {
        let node = &tree.nodes[id];
        let w = node.width / total * plot;
        if w < 0.1 {
            continue;
        }
        let y = height - 30.0 - (level as f64 + 1.0) * fh;
        let (name, diff) = if id == 0 {
            ("all".to_string(), None)
        } else {
            let name = result.functions.name(node.func).to_string();
            (name, by_id.get(&node.func).copied())
        };
        let verdict = match (id, diff) {
            (0, _) => String::new(),
            (_, Some(d)) => format!(", function: {}", d.verdict.label()),
            (_, None) => String::new(),
        };
        let gone = if node.after <= 0.0 && id != 0 {
            " (only in BEFORE)"
        } else {
            ""
        };
        let tip = format!(
            "{name}{gone}: before {:.2}%, after {:.2}%, delta {:+.2} points{verdict}",
            pts(node.before),
            pts(node.after),
            pts(node.after - node.before)
        );
        let color = if id == 0 {
            "rgb(230,230,230)".to_string()
        } else {
            fill(diff, node, max_delta)
        };
        let _ = write!(
            body,
            "<g><title>{}</title><rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{color}\" rx=\"2\"{}/>",
            xml(&tip),
            pad + x,
            y,
            w,
            fh - 1.0,
            if gone.is_empty() { "" } else { " stroke=\"rgb(90,120,200)\" stroke-dasharray=\"3,2\"" }
        );
        let chars = ((w - 6.0) / 7.0).floor();
        if chars >= 3.0 {
            let chars = chars as usize;
            let label: String = if name.chars().count() > chars {
                let mut s: String = name.chars().take(chars.saturating_sub(2)).collect();
                s.push_str("..");
                s
            } else {
                name.clone()
            };
            let _ = write!(
                body,
                "<text x=\"{:.2}\" y=\"{:.1}\">{}</text>",
                pad + x + 3.0,
                y + fh - 4.5,
                xml(&label)
            );
        }
        body.push_str("</g>\n");
        let mut cx = x;
        for &c in node.children.values() {
            todo.push((c, cx, level + 1));
            cx += tree.nodes[c].width / total * plot;
        }
    }
    writeln!(
        out,
        "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"{w:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {w:.0} {height:.0}\" xmlns=\"http://www.w3.org/2000/svg\">",
        w = options.width
    )?;
    writeln!(
        out,
        "<style>text {{ font-family: monospace; font-size: 12px; fill: black; }} .h {{ font-size: 17px; }} .s {{ font-size: 12px; fill: rgb(80,80,80); }}</style>"
    )?;
    writeln!(out, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")?;
    writeln!(
        out,
        "<text class=\"h\" x=\"{:.0}\" y=\"22\" text-anchor=\"middle\">{}</text>",
        options.width / 2.0,
        xml(&options.title)
    )?;
    writeln!(
        out,
        "<text class=\"s\" x=\"{:.0}\" y=\"42\" text-anchor=\"middle\">{}</text>",
        options.width / 2.0,
        xml(&format!(
            "{}; widths are AFTER; red grew, blue shrank (significant at FDR {}%), grey no significant change, dashed only in BEFORE",
            what_is_compared(result),
            percent_text(result.options.alpha)
        ))
    )?;
    out.write_all(body.as_bytes())?;
    writeln!(out, "</svg>")
}

fn max_depth(tree: &Tree, root: usize) -> usize {
    let mut best = 0;
    let mut todo = vec![(root, 0usize)];
    while let Some((id, d)) = todo.pop() {
        best = best.max(d);
        for &c in tree.nodes[id].children.values() {
            todo.push((c, d + 1));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::compare::{compare, DiffOptions};
    use crate::diff::input::{load_folded, Functions};

    fn result() -> DiffResult {
        let mut functions = Functions::default();
        let b = load_folded(
            "b",
            "app;main;hot 100\napp;main;cold 300\napp;old 100\n",
            &mut functions,
        )
        .expect("b");
        let a =
            load_folded("a", "app;main;hot 200\napp;main;cold 200\n", &mut functions).expect("a");
        compare(&[b], &[a], functions, DiffOptions::default())
    }

    #[test]
    fn folded_scales_before_to_after_total() {
        let mut out = Vec::new();
        write_folded(&result(), &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "app;main;cold 240 200\napp;main;hot 80 200\napp;old 80 0\n"
        );
    }

    #[test]
    fn flame_graph_has_every_frame_and_the_vanished_ones() {
        let mut out = Vec::new();
        write_svg(&result(), &SvgOptions::default(), &mut out).expect("write");
        let svg = String::from_utf8(out).expect("utf8");
        for frame in ["main:", "hot:", "cold:", "app:"] {
            assert!(svg.contains(&format!("<title>{frame}")), "{frame} missing");
        }
        assert!(
            svg.contains("old (only in BEFORE): before 20.00%, after 0.00%"),
            "{svg}"
        );
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn json_has_every_function_and_escapes() {
        let mut out = Vec::new();
        write_json(&result(), &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        for name in ["\"hot\"", "\"cold\"", "\"old\"", "\"main\"", "\"app\""] {
            assert!(text.contains(name), "{name}");
        }
        assert!(text.contains("\"verdict\":\"gone\""));
        assert_eq!(json_str("a\"b\\\n"), "\"a\\\"b\\\\\\n\"");
        assert_eq!(json_num(f64::NAN), "null");
        assert_eq!(json_num(2.0), "2.0");
    }

    #[test]
    fn top_says_what_is_compared_and_why_nothing_is_tested() {
        let mut out = Vec::new();
        write_top(&result(), &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("each side normalised to its own total"),
            "{text}"
        );
        assert!(text.contains("untested (no replication)"), "{text}");
        assert!(text.contains("gone"), "{text}");
        assert!(
            text.contains("note: BEFORE is one input without sample times"),
            "{text}"
        );
    }
}
