//! Text for terminals: numbers people read at a glance, names cut to fit a
//! width, and the row budget of a screen. Pure functions; the command
//! decides (from the terminal, `COLUMNS` and the flags) what [`Fit`] to use.

use unicode_width::UnicodeWidthStr;

use crate::event::Unit;

/// How much of a table to show. The default shows everything unchanged
/// (what a pipe gets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fit {
    /// Line width in columns; None: lines as long as they need to be.
    pub width: Option<usize>,
    /// At most this many rows per section; None: all.
    pub rows: Option<usize>,
    /// Keep names whole: no `(...)` for C++ parameter lists, no cutting.
    pub full_names: bool,
}

impl Fit {
    /// A function name as shown in `columns` columns: parameter lists
    /// shortened, then cut in the middle, when a width is set.
    pub fn name(&self, name: &str, columns: usize) -> String {
        if self.full_names || self.width.is_none() {
            return name.to_string();
        }
        elide_middle(&shorten_parameters(name), columns)
    }

    /// A label (command, module) as shown in `columns` columns: its start
    /// tells it apart (`libc.so.6`, `[kernel.kallsyms]`), so the end goes.
    pub fn label(&self, label: &str, columns: usize) -> String {
        if self.full_names || self.width.is_none() {
            return label.to_string();
        }
        elide_end(label, columns)
    }
}

/// Cuts `text` to at most `columns` display columns, ending in `…`.
pub fn elide_end(text: &str, columns: usize) -> String {
    if text.width() <= columns {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > columns {
            break;
        }
        used += w;
        out.push(c);
    }
    if columns > 0 {
        out.push('…');
    }
    out
}

/// `ns::f(int, std::vector<int> const&) const` -> `ns::f(...) const`: the
/// parameter list of a demangled C++ name becomes `(...)`. Names without
/// one (C, Rust paths) and operators like `operator()` keep their text.
pub fn shorten_parameters(name: &str) -> String {
    let bytes = name.as_bytes();
    // The parameter list is the last top-level `(...)` that follows a name
    // (not the `(` of `operator()` or of `(anonymous namespace)`).
    let mut depth_angle = 0i32;
    let mut open = None;
    let mut best: Option<(usize, usize)> = None;
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'<' => depth_angle += 1,
            b'>' if depth_angle > 0 => depth_angle -= 1,
            b'(' => {
                if depth == 0 && depth_angle == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            b')' => {
                depth -= 1;
                if depth == 0 && depth_angle == 0 {
                    if let Some(start) = open.take() {
                        best = Some((start, i));
                    }
                }
                if depth < 0 {
                    return name.to_string();
                }
            }
            _ => {}
        }
    }
    match best {
        Some((start, end))
            if end > start + 1
                && start > 0
                && !name[..start].ends_with("operator")
                && !name[start..=end].starts_with("(anonymous") =>
        {
            format!("{}(...){}", &name[..start], &name[end + 1..])
        }
        _ => name.to_string(),
    }
}

/// Cuts `text` to at most `columns` display columns, keeping both ends:
/// a third from the start (the namespace, the library) and the rest from
/// the end (the function's own name, a file's extension), which is what
/// tells names apart.
pub fn elide_middle(text: &str, columns: usize) -> String {
    if text.width() <= columns {
        return text.to_string();
    }
    if columns == 0 {
        return String::new();
    }
    let keep = columns - 1; // one column for the ellipsis
    let head_cols = keep / 3;
    let tail_cols = keep - head_cols;
    let mut head = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > head_cols {
            break;
        }
        used += w;
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > tail_cols {
            break;
        }
        used += w;
        tail.push(c);
    }
    head.push('…');
    head.extend(tail.into_iter().rev());
    head
}

/// Display width of a text (what `{:<w$}` padding must count).
pub fn columns(text: &str) -> usize {
    text.width()
}

/// `text` padded with spaces to `width` display columns.
pub fn pad(text: &str, width: usize) -> String {
    let mut out = text.to_string();
    for _ in columns(text)..width {
        out.push(' ');
    }
    out
}

/// 1234567 -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in nanoseconds as people read it, one word so that columns
/// split on spaces: `1.23s`, `860.9ms`, `12.5us`, `800ns`.
pub fn duration(ns: u64) -> String {
    let ns_f = ns as f64;
    if ns >= 1_000_000_000 {
        format!("{:.2}s", ns_f / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.1}ms", ns_f / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1}us", ns_f / 1e3)
    } else {
        format!("{ns}ns")
    }
}

/// A weight in its event's unit: a duration, or a count with separators.
pub fn weight(weight: u64, unit: Unit) -> String {
    match unit {
        Unit::Nanoseconds | Unit::OffCpuNanoseconds => duration(weight),
        Unit::Events | Unit::Faults => thousands(weight),
    }
}

/// Percentage of `part` in `whole` (0 when there is no whole).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_lists_become_dots_but_operators_and_plain_names_stay() {
        assert_eq!(
            shorten_parameters(
                "ns::Foo<int>::bar(std::vector<int, std::allocator<int> > const&, char) const"
            ),
            "ns::Foo<int>::bar(...) const"
        );
        assert_eq!(shorten_parameters("main"), "main");
        assert_eq!(shorten_parameters("f()"), "f()");
        assert_eq!(shorten_parameters("Cmp::operator()"), "Cmp::operator()");
        assert_eq!(
            shorten_parameters("(anonymous namespace)::g(int)"),
            "(anonymous namespace)::g(...)"
        );
        assert_eq!(
            shorten_parameters("std::function<void (int)>::operator()(int) const"),
            "std::function<void (int)>::operator()(...) const"
        );
        assert_eq!(shorten_parameters("unbalanced)("), "unbalanced)(");
    }

    #[test]
    fn eliding_keeps_both_ends_within_the_columns() {
        let cut = elide_middle("abcdefghijklmnopqrstuvwxyz", 10);
        assert_eq!(cut, "abc…uvwxyz");
        assert_eq!(columns(&cut), 10);
        assert_eq!(elide_middle("short", 10), "short");
        assert_eq!(elide_middle("abc", 1), "…");
        assert_eq!(elide_middle("abc", 0), "");
        assert_eq!(elide_end("[kernel.kallsyms]", 10), "[kernel.k…");
        assert_eq!(elide_end("libc.so.6", 10), "libc.so.6");
    }

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(860_860_860), "860,860,860");
        assert_eq!(duration(860_860_860), "860.9ms");
        assert_eq!(duration(2_500_000_000), "2.50s");
        assert_eq!(duration(12_500), "12.5us");
        assert_eq!(duration(800), "800ns");
        assert_eq!(weight(1234, Unit::Events), "1,234");
    }

    #[test]
    fn a_pipe_fit_changes_nothing() {
        let long = "ns::f(int, int)".repeat(20);
        assert_eq!(Fit::default().name(&long, 10), long);
        let fit = Fit {
            width: Some(100),
            rows: None,
            full_names: true,
        };
        assert_eq!(fit.name(&long, 10), long);
        let fit = Fit {
            full_names: false,
            ..fit
        };
        assert_eq!(fit.name("ns::f(int, int)", 40), "ns::f(...)");
    }
}
