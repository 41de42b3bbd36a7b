//! Flame graph as one self-contained HTML page: `flame.html` (markup, style
//! and a small vanilla script that draws on a `<canvas>`) with the profile
//! embedded as JSON. Nothing is fetched: no scripts, fonts or URLs.
//!
//! The JSON (in `<script type="application/json" id="flame-data">`):
//!
//! ```text
//! { "title", "subtitle", "event", "unit", "factor", "inverted", "minWidthPct",
//!   "names": [ "all", "app", "main", ... ],          interned frame names
//!   "nodes": [ name, self, total, children, ... ] }   4 numbers per node
//! ```
//!
//! `nodes` is the [`FlameTree`] in preorder: the root, then each child's
//! subtree in order; `children` says how many children follow. Weights are
//! in the event's unit; `factor` turns them into `unit`. The page's size
//! grows with the unique stacks, not with the samples.

use std::io::{self, Write};

use super::flame::{flame_unit, FlameOptions, FlameTree};
use super::Output;
use crate::aggregate::Profile;

/// The page: markup, style and script, with `{{TITLE}}`, `{{SUBTITLE}}`
/// and `{{DATA}}` filled in.
const TEMPLATE: &str = include_str!("flame.html");

/// The flame graph as a self-contained HTML page.
#[derive(Debug, Clone, Default)]
pub struct FlameGraphHtml {
    pub flame: FlameOptions,
}

impl Output for FlameGraphHtml {
    fn write(&self, profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
        let flame = &self.flame;
        let tree = FlameTree::from_folded(&flame.lines(profile));
        let subtitle = flame.subtitle.as_deref().unwrap_or("");
        let mut rest = TEMPLATE;
        while let Some(at) = rest.find("{{") {
            out.write_all(&rest.as_bytes()[..at])?;
            let tail = &rest[at..];
            let Some(end) = tail.find("}}") else {
                break;
            };
            match &tail[2..end] {
                "TITLE" => write_html_text(out, &flame.title)?,
                "SUBTITLE" => write_html_text(out, subtitle)?,
                "DATA" => write_data(out, flame, profile, &tree)?,
                other => write!(out, "{{{{{other}}}}}")?,
            }
            rest = &tail[end + 2..];
        }
        out.write_all(rest.as_bytes())
    }
}

/// The embedded JSON; see the module docs.
fn write_data(
    out: &mut dyn Write,
    flame: &FlameOptions,
    profile: &Profile,
    tree: &FlameTree,
) -> io::Result<()> {
    let event = profile.events.get(flame.event as usize);
    let (unit, factor) = match event.map(flame_unit) {
        Some(unit) => (unit.name, unit.factor),
        None => ("samples".to_string(), 1.0),
    };
    out.write_all(b"{\"title\":")?;
    write_json_string(out, &flame.title)?;
    out.write_all(b",\"subtitle\":")?;
    write_json_string(out, flame.subtitle.as_deref().unwrap_or(""))?;
    out.write_all(b",\"event\":")?;
    write_json_string(out, event.map_or("", |e| e.name.as_str()))?;
    out.write_all(b",\"unit\":")?;
    write_json_string(out, &unit)?;
    write!(
        out,
        ",\"factor\":{factor:e},\"inverted\":{},\"minWidthPct\":{:e},\"names\":[",
        flame.inverted,
        flame.min_width.percent()
    )?;
    for (i, name) in tree.names.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_json_string(out, name)?;
    }
    out.write_all(b"],\"nodes\":[")?;
    for (i, (node, children)) in tree.preorder().into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(
            out,
            "{},{},{},{children}",
            node.name, node.self_weight, node.total
        )?;
    }
    out.write_all(b"]}")
}

/// A JSON string that is also safe inside a `<script>` element: `<`, `>`
/// and `&` are written as `\u003c`, `\u003e`, `\u0026` (so no `</script>`
/// or `<!--` can appear), and U+2028/U+2029 escaped.
pub fn write_json_string(out: &mut dyn Write, text: &str) -> io::Result<()> {
    let mut buf = String::with_capacity(text.len() + 2);
    buf.push('"');
    for c in text.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                buf.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => buf.push_str(&format!("\\u{:04x}", c as u32)),
            c => buf.push(c),
        }
    }
    buf.push('"');
    out.write_all(buf.as_bytes())
}

/// Text for an HTML element's content or attribute.
fn write_html_text(out: &mut dyn Write, text: &str) -> io::Result<()> {
    let mut buf = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => buf.push_str("&lt;"),
            '>' => buf.push_str("&gt;"),
            '&' => buf.push_str("&amp;"),
            '"' => buf.push_str("&quot;"),
            '\'' => buf.push_str("&#39;"),
            c => buf.push(c),
        }
    }
    out.write_all(buf.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let mut out = Vec::new();
        write_json_string(&mut out, text).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_strings_cannot_close_the_script_element() {
        let encoded = json("f</script><script>alert(1)</script>");
        assert!(!encoded.contains('<') && !encoded.contains('>'));
        assert_eq!(
            encoded,
            "\"f\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\""
        );
        assert_eq!(json("a\"b\\c\n\u{1}&"), "\"a\\\"b\\\\c\\n\\u0001\\u0026\"");
        assert_eq!(json("x\u{2028}"), "\"x\\u2028\"");
    }

    #[test]
    fn template_has_its_slots_and_fetches_nothing() {
        for slot in ["{{TITLE}}", "{{SUBTITLE}}", "{{DATA}}"] {
            assert!(TEMPLATE.contains(slot), "{slot}");
        }
        // No other `{{` for the filler to trip on (the title is there twice).
        assert_eq!(TEMPLATE.matches("{{").count(), 4);
        for external in ["http://", "https://", " src=", "@import", "url("] {
            assert!(!TEMPLATE.contains(external), "{external}");
        }
    }

    /// The embedded JSON of a page.
    fn page_data(page: &str) -> serde_json::Value {
        let open = "<script type=\"application/json\" id=\"flame-data\">";
        let start = page.find(open).expect("data script") + open.len();
        let end = start + page[start..].find("</script>").expect("end of data");
        serde_json::from_str(&page[start..end]).expect("valid JSON")
    }

    #[test]
    fn a_function_named_close_script_stays_inside_the_data() {
        let mut profile = crate::output::top::tests::profile();
        let evil = "b</script><script>alert(1)</script><!--";
        let location = &mut profile.locations[2];
        location.frames = std::sync::Arc::from(vec![crate::symbolize::Frame {
            function: Some(evil.into()),
            file: None,
            line: 0,
            inlined: false,
        }]);
        profile.threads[0].comm = "<app>".into();
        let html = FlameGraphHtml {
            flame: FlameOptions {
                title: "t </title><script>x</script>".into(),
                ..FlameOptions::default()
            },
        };
        let mut out = Vec::new();
        html.write(&profile, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        // Only the page's own two scripts end.
        assert_eq!(page.matches("</script>").count(), 2, "{page}");
        assert_eq!(page.matches("<script").count(), 2);
        assert!(!page.contains("<!--"));
        let data = page_data(&page);
        let names: Vec<&str> = data["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(names, ["all", "<app>", "main", "a", "helper_[i]", evil]);
        assert_eq!(data["title"], "t </title><script>x</script>");
        assert_eq!(data["unit"], "us CPU");
        // all 100 = app 100 = main 100 -> a 60 -> helper 60 (self), main -> b 40.
        let nodes: Vec<u64> = data["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            nodes,
            [0, 0, 100, 1, 1, 0, 100, 1, 2, 0, 100, 2, 3, 0, 60, 1, 4, 60, 60, 0, 5, 40, 40, 0]
        );
    }

    #[test]
    fn titles_are_escaped_as_html() {
        let mut out = Vec::new();
        write_html_text(&mut out, "a <b> & \"c\"").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a &lt;b&gt; &amp; &quot;c&quot;"
        );
    }
}
