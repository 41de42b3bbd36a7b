//! The `rprof stat` table in perf stat's three forms: aligned text, `-x SEP`
//! CSV and `-j` JSON lines, with perf's column order, field names, widths
//! and derived metrics. Pure: rows in, text out.

use std::fmt::Write;

use super::counter::{CountUnit, CounterRole};
use crate::sys::ChildUsage;

/// Which of perf's output forms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    /// `-x SEP`: value, unit, event, [variance,] run time, percentage,
    /// metric value, metric unit.
    Csv(String),
    /// `-j`: one JSON object per line.
    Json,
}

/// Why a row has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    Counted,
    /// The machine cannot count it (no PMU, unknown raw event).
    NotSupported,
    /// Opened, but never ran on a counter in this span.
    NotCounted,
}

/// One line of the table: a counter, aggregated or on one CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `-A`: the CPU this row counts on.
    pub cpu: Option<u32>,
    pub name: String,
    pub unit: CountUnit,
    pub role: CounterRole,
    pub status: RowStatus,
    /// The (scaled, and with -r mean) count: ns for the clocks.
    pub value: f64,
    /// Nanoseconds the counter ran (mean with -r).
    pub runtime: u64,
    /// time_running / time_enabled in percent (100 unless multiplexed).
    pub running_pct: f64,
    /// `-r`: standard error of the mean as a percentage of the mean.
    pub noise_pct: Option<f64>,
}

/// The wall-clock span measured, with its spread over `-r` runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Elapsed {
    pub mean_ns: f64,
    /// Standard error of the mean (0 for one run).
    pub stderr_ns: f64,
}

/// A derived value printed beside a count.
#[derive(Debug, Clone, PartialEq)]
struct Metric {
    value: f64,
    /// The text form of the value, as perf formats it for the aligned table.
    text: String,
    unit: String,
}

const COUNTS_LEN: usize = 18;
const EVENT_NAME_LEN: usize = 32;
/// Width of the metric column (perf's METRIC_LEN less the leading space).
const METRIC_LEN: usize = 35;
/// What perf leaves where a metric would go on a row without a value.
const NO_VALUE_METRIC_LEN: usize = 28;

/// `K`, `M`, `G` scaling of rates, as perf's convert_unit_double.
fn scaled_rate(per_sec: f64) -> (f64, String) {
    for (scale, prefix) in [(1e9, "G"), (1e6, "M"), (1e3, "K")] {
        if per_sec >= scale {
            return (per_sec / scale, format!("{prefix}/sec"));
        }
    }
    (per_sec, "/sec".to_string())
}

/// The derived metric of `row`, from the other rows of the same CPU and
/// the elapsed time (perf's stat-shadow rules).
fn metric(row: &Row, peers: &[&Row], elapsed_ns: f64) -> Option<Metric> {
    if row.status != RowStatus::Counted {
        return None;
    }
    let peer = |role: CounterRole| {
        peers
            .iter()
            .find(|r| r.role == role && r.status == RowStatus::Counted && r.value > 0.0)
            .map(|r| r.value)
    };
    let task_ns = peer(CounterRole::TaskClock).or_else(|| peer(CounterRole::CpuClock));
    let plain = |value: f64, unit: &str| Metric {
        value,
        text: format!("{value:8.3}"),
        unit: unit.to_string(),
    };
    match row.role {
        CounterRole::TaskClock | CounterRole::CpuClock => {
            (elapsed_ns > 0.0).then(|| plain(row.value / elapsed_ns, "CPUs utilized"))
        }
        CounterRole::Cycles => task_ns.map(|ns| plain(row.value / ns, "GHz")),
        CounterRole::Instructions => peer(CounterRole::Cycles).map(|cycles| {
            let ipc = row.value / cycles;
            Metric {
                value: ipc,
                text: format!("{ipc:7.2} "),
                unit: "insn per cycle".to_string(),
            }
        }),
        CounterRole::BranchMisses => peer(CounterRole::Branches).map(|branches| {
            let pct = 100.0 * row.value / branches;
            Metric {
                value: pct,
                text: format!("{pct:7.2}%"),
                unit: "of all branches".to_string(),
            }
        }),
        CounterRole::CacheMisses => peer(CounterRole::CacheReferences).map(|refs| {
            let pct = 100.0 * row.value / refs;
            Metric {
                value: pct,
                text: format!("{pct:8.3} %"),
                unit: "of all cache refs".to_string(),
            }
        }),
        CounterRole::Branches | CounterRole::CacheReferences | CounterRole::Other => {
            task_ns.map(|ns| {
                let (value, unit) = scaled_rate(1e9 * row.value / ns);
                plain(value, &unit)
            })
        }
    }
}

fn unit_text(unit: CountUnit) -> &'static str {
    match unit {
        CountUnit::Msec => "msec",
        CountUnit::Plain => "",
    }
}

/// The count as perf writes it: msec with two decimals, counts whole.
fn value_text(row: &Row) -> String {
    match (row.status, row.unit) {
        (RowStatus::NotSupported, _) => "<not supported>".to_string(),
        (RowStatus::NotCounted, _) => "<not counted>".to_string(),
        (RowStatus::Counted, CountUnit::Msec) => format!("{:.2}", row.value / 1e6),
        (RowStatus::Counted, CountUnit::Plain) => format!("{:.0}", row.value),
    }
}

/// perf's `%6lu.%09lu` time stamp of an interval line.
fn interval_stamp(ns: u64) -> String {
    format!("{:6}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// JSON string contents: quotes, backslashes and control characters escaped.
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Everything a table needs besides its rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableContext {
    /// `'sleep 1'`, `'system wide'`, `process id '42'`: what was counted.
    pub target: String,
    pub runs: u32,
    pub elapsed: Elapsed,
    /// The launched command's CPU time (one run, text only).
    pub usage: Option<ChildUsage>,
}

/// The final table (header, rows, footer in text form; rows only in CSV
/// and JSON, as perf prints them).
pub fn render_table(format: &OutputFormat, rows: &[Row], context: &TableContext) -> String {
    let mut out = String::new();
    if *format == OutputFormat::Text {
        let runs = if context.runs > 1 {
            format!(" ({} runs)", context.runs)
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "\n Performance counter stats for {}{runs}:\n\n",
            context.target
        );
    }
    for row in rows {
        out.push_str(&render_row(
            format,
            row,
            rows,
            context.elapsed.mean_ns,
            None,
        ));
        out.push('\n');
    }
    if *format == OutputFormat::Text {
        out.push_str(&footer(context));
    }
    out
}

/// The lines of one `-I` interval: each row prefixed with the time since
/// counting started. `span_ns` is the interval's own length (for CPUs
/// utilized).
pub fn render_interval(
    format: &OutputFormat,
    rows: &[Row],
    since_start_ns: u64,
    span_ns: u64,
) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&render_row(
            format,
            row,
            rows,
            span_ns as f64,
            Some(since_start_ns),
        ));
        out.push('\n');
    }
    out
}

/// The column header perf prints above `-I` text lines.
pub fn interval_header(per_cpu: bool) -> &'static str {
    if per_cpu {
        "#           time CPU                    counts unit events\n"
    } else {
        "#           time             counts unit events\n"
    }
}

fn render_row(
    format: &OutputFormat,
    row: &Row,
    all: &[Row],
    elapsed_ns: f64,
    stamp: Option<u64>,
) -> String {
    let peers: Vec<&Row> = all.iter().filter(|r| r.cpu == row.cpu).collect();
    let metric = metric(row, &peers, elapsed_ns);
    match format {
        OutputFormat::Text => text_row(row, metric.as_ref(), stamp),
        OutputFormat::Csv(sep) => csv_row(row, metric.as_ref(), stamp, sep),
        OutputFormat::Json => json_row(row, metric.as_ref(), stamp),
    }
}

fn text_row(row: &Row, metric: Option<&Metric>, stamp: Option<u64>) -> String {
    let mut line = String::new();
    if let Some(ns) = stamp {
        let _ = write!(line, "{} ", interval_stamp(ns));
    }
    if let Some(cpu) = row.cpu {
        let _ = write!(line, "CPU{cpu:<7} ");
    }
    let _ = write!(
        line,
        "{:>COUNTS_LEN$} {:<4} {:<EVENT_NAME_LEN$}",
        value_text(row),
        unit_text(row.unit),
        row.name
    );
    match (metric, row.status) {
        (Some(m), _) => {
            let head = format!(" # {}", m.text);
            let pad = METRIC_LEN.saturating_sub(head.len() + 1);
            let _ = write!(line, "{head} {:<pad$}", m.unit);
        }
        (None, RowStatus::Counted) => line.push_str(&" ".repeat(METRIC_LEN)),
        (None, _) => line.push_str(&" ".repeat(NO_VALUE_METRIC_LEN)),
    }
    if row.status == RowStatus::Counted {
        if let Some(noise) = row.noise_pct {
            let _ = write!(line, "  ( +-{noise:6.2}% )");
        }
        if row.running_pct < 100.0 {
            let _ = write!(line, "  ({:.2}%)", row.running_pct);
        }
    }
    line
}

/// A metric's value as perf's CSV writes it: the formatted number, trimmed.
fn csv_metric_value(metric: &Metric) -> String {
    let trimmed = metric.text.trim_start();
    let end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(trimmed.len());
    trimmed[..end].to_string()
}

fn csv_row(row: &Row, metric: Option<&Metric>, stamp: Option<u64>, sep: &str) -> String {
    let mut fields = Vec::new();
    if let Some(ns) = stamp {
        fields.push(interval_stamp(ns));
    }
    if let Some(cpu) = row.cpu {
        fields.push(format!("CPU{cpu}"));
    }
    fields.push(value_text(row));
    fields.push(unit_text(row.unit).to_string());
    fields.push(row.name.clone());
    if let Some(noise) = row.noise_pct {
        fields.push(format!("{noise:.2}%"));
    }
    fields.push(row.runtime.to_string());
    fields.push(format!("{:.2}", row.running_pct));
    match metric {
        Some(m) => {
            fields.push(csv_metric_value(m));
            fields.push(m.unit.clone());
        }
        None => fields.extend([String::new(), String::new()]),
    }
    fields.join(sep)
}

fn json_row(row: &Row, metric: Option<&Metric>, stamp: Option<u64>) -> String {
    let mut line = String::from("{");
    if let Some(ns) = stamp {
        let _ = write!(
            line,
            "\"interval\" : {}.{:09}, ",
            ns / 1_000_000_000,
            ns % 1_000_000_000
        );
    }
    if let Some(cpu) = row.cpu {
        let _ = write!(line, "\"cpu\" : \"{cpu}\", ");
    }
    let value = match (row.status, row.unit) {
        (RowStatus::Counted, CountUnit::Msec) => format!("{:.6}", row.value / 1e6),
        (RowStatus::Counted, CountUnit::Plain) => format!("{:.6}", row.value),
        _ => value_text(row),
    };
    let _ = write!(
        line,
        "\"counter-value\" : \"{value}\", \"unit\" : \"{}\", \"event\" : \"{}\", ",
        unit_text(row.unit),
        json_escape(&row.name)
    );
    if let Some(noise) = row.noise_pct {
        let _ = write!(line, "\"variance\" : {noise:.2}, ");
    }
    let (metric_value, metric_unit) = metric.map_or((0.0, ""), |m| (m.value, m.unit.as_str()));
    let _ = write!(
        line,
        "\"event-runtime\" : {}, \"pcnt-running\" : {:.2}, \"metric-value\" : {:.6}, \
         \"metric-unit\" : \"{}\"}}",
        row.runtime,
        row.running_pct,
        if metric_value.is_finite() {
            metric_value
        } else {
            0.0
        },
        json_escape(metric_unit)
    );
    line
}

/// How many decimals perf shows for a mean whose error is `stderr`: two
/// more than the error's first significant digit.
fn precision_for(stderr: f64) -> usize {
    let digits = if stderr > 1.0 || stderr <= 0.0 {
        0.0
    } else {
        (-stderr.log10()).ceil()
    };
    digits as usize + 2
}

fn footer(context: &TableContext) -> String {
    let mut out = String::from("\n");
    let secs = context.elapsed.mean_ns / 1e9;
    if context.runs > 1 {
        let stderr = context.elapsed.stderr_ns / 1e9;
        let precision = precision_for(stderr);
        let noise = if secs > 0.0 {
            100.0 * stderr / secs
        } else {
            0.0
        };
        let _ = write!(
            out,
            " {secs:17.precision$} +- {stderr:.precision$} seconds time elapsed  ( +-{noise:6.2}% )\n\n"
        );
    } else {
        let _ = write!(out, " {secs:17.9} seconds time elapsed\n\n");
        if let Some(usage) = context.usage {
            let _ = write!(
                out,
                " {:17.9} seconds user\n {:17.9} seconds sys\n\n\n",
                usage.user.as_secs_f64(),
                usage.system.as_secs_f64()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(name: &str, unit: CountUnit, role: CounterRole, value: f64) -> Row {
        Row {
            cpu: None,
            name: name.to_string(),
            unit,
            role,
            status: RowStatus::Counted,
            value,
            runtime: 572_995,
            running_pct: 100.0,
            noise_pct: None,
        }
    }

    fn default_rows() -> Vec<Row> {
        let mut cycles = row("cycles", CountUnit::Plain, CounterRole::Cycles, 0.0);
        cycles.status = RowStatus::NotSupported;
        cycles.runtime = 0;
        vec![
            row(
                "task-clock",
                CountUnit::Msec,
                CounterRole::TaskClock,
                770_000.0,
            ),
            cycles,
            row("page-faults", CountUnit::Plain, CounterRole::Other, 47.0),
        ]
    }

    fn context() -> TableContext {
        TableContext {
            target: "'true'".to_string(),
            runs: 1,
            elapsed: Elapsed {
                mean_ns: 2_143_751.0,
                stderr_ns: 0.0,
            },
            usage: Some(ChildUsage {
                user: Duration::from_micros(2378),
                system: Duration::ZERO,
            }),
        }
    }

    /// The same lines, byte for byte, as `perf stat -e
    /// task-clock,cycles,page-faults -- true` (perf 6.1) with these counts.
    #[test]
    fn text_table_matches_perf_byte_for_byte() {
        let text = render_table(&OutputFormat::Text, &default_rows(), &context());
        let expected = "\n Performance counter stats for 'true':\n\n\
              \x20             0.77 msec task-clock                       #    0.359 CPUs utilized          \n\
              \x20  <not supported>      cycles                                                      \n\
              \x20               47      page-faults                      #   61.039 K/sec                  \n\
              \n\x20      0.002143751 seconds time elapsed\n\n\
              \x20      0.002378000 seconds user\n\
              \x20      0.000000000 seconds sys\n\n\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn repeated_runs_show_the_noise_and_the_elapsed_spread() {
        let mut rows = vec![row(
            "page-faults",
            CountUnit::Plain,
            CounterRole::Other,
            49.0,
        )];
        rows[0].noise_pct = Some(1.02);
        let mut ctx = context();
        ctx.runs = 2;
        ctx.elapsed = Elapsed {
            mean_ns: 1_295_000.0,
            stderr_ns: 135_000.0,
        };
        let text = render_table(&OutputFormat::Text, &rows, &ctx);
        assert!(text.contains(" Performance counter stats for 'true' (2 runs):\n"));
        assert!(
            text.contains("                49      page-faults                                                          ( +-  1.02% )\n"),
            "{text}"
        );
        assert!(
            text.contains("          0.001295 +- 0.000135 seconds time elapsed  ( +- 10.42% )\n"),
            "{text}"
        );
        assert!(!text.contains("seconds user"));
    }

    #[test]
    fn csv_has_perfs_columns_and_variance_after_the_event() {
        let csv = render_table(&OutputFormat::Csv(",".into()), &default_rows(), &context());
        assert_eq!(
            csv,
            "0.77,msec,task-clock,572995,100.00,0.359,CPUs utilized\n\
             <not supported>,,cycles,0,100.00,,\n\
             47,,page-faults,572995,100.00,61.039,K/sec\n"
        );
        let mut rows = default_rows();
        rows[2].noise_pct = Some(2.5);
        let csv = render_table(&OutputFormat::Csv(";".into()), &rows[2..], &context());
        assert_eq!(csv, "47;;page-faults;2.50%;572995;100.00;;\n");
    }

    #[test]
    fn json_lines_carry_perfs_field_names() {
        let json = render_table(&OutputFormat::Json, &default_rows(), &context());
        let lines: Vec<&str> = json.lines().collect();
        assert_eq!(
            lines[0],
            "{\"counter-value\" : \"0.770000\", \"unit\" : \"msec\", \"event\" : \"task-clock\", \
             \"event-runtime\" : 572995, \"pcnt-running\" : 100.00, \"metric-value\" : 0.359184, \
             \"metric-unit\" : \"CPUs utilized\"}"
        );
        assert!(lines[1].contains("\"counter-value\" : \"<not supported>\""));
        let mut rows = default_rows();
        rows[0].noise_pct = Some(7.87);
        rows[0].name = "odd\"name".into();
        let json = render_table(&OutputFormat::Json, &rows[..1], &context());
        assert!(
            json.contains("\"event\" : \"odd\\\"name\", \"variance\" : 7.87, \"event-runtime\"")
        );
    }

    #[test]
    fn multiplexed_rows_show_the_running_share() {
        let mut rows = default_rows();
        rows[2].running_pct = 50.0;
        let text = render_table(&OutputFormat::Text, &rows, &context());
        assert!(
            text.contains("K/sec                    (50.00%)\n"),
            "{text}"
        );
    }

    #[test]
    fn derived_metrics_follow_perf() {
        let rows = vec![
            row("task-clock", CountUnit::Msec, CounterRole::TaskClock, 1e9),
            row("cycles", CountUnit::Plain, CounterRole::Cycles, 3e9),
            row(
                "instructions",
                CountUnit::Plain,
                CounterRole::Instructions,
                6e9,
            ),
            row("branches", CountUnit::Plain, CounterRole::Branches, 1e9),
            row(
                "branch-misses",
                CountUnit::Plain,
                CounterRole::BranchMisses,
                1e7,
            ),
            row(
                "cache-references",
                CountUnit::Plain,
                CounterRole::CacheReferences,
                1e6,
            ),
            row(
                "cache-misses",
                CountUnit::Plain,
                CounterRole::CacheMisses,
                1e5,
            ),
            row(
                "context-switches",
                CountUnit::Plain,
                CounterRole::Other,
                5.0,
            ),
        ];
        let text = render_table(&OutputFormat::Text, &rows, &context());
        for expected in [
            "#    3.000 GHz",
            "#    2.00  insn per cycle",
            "#    1.00% of all branches",
            "#   10.000 % of all cache refs",
            "#    1.000 G/sec",
            "#    5.000 /sec",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        let csv = render_table(&OutputFormat::Csv(",".into()), &rows, &context());
        assert!(
            csv.contains("branch-misses,572995,100.00,1.00,of all branches"),
            "{csv}"
        );
    }

    #[test]
    fn interval_and_per_cpu_lines_are_prefixed() {
        let mut rows = default_rows();
        rows.truncate(1);
        rows[0].cpu = Some(1);
        let text = render_interval(&OutputFormat::Text, &rows, 100_258_461, 100_000_000);
        assert!(
            text.starts_with("     0.100258461 CPU1                     0.77 msec task-clock"),
            "{text}"
        );
        let csv = render_interval(&OutputFormat::Csv(",".into()), &rows, 1_500_000_000, 1);
        assert!(
            csv.starts_with("     1.500000000,CPU1,0.77,msec,task-clock,"),
            "{csv}"
        );
        let json = render_interval(&OutputFormat::Json, &rows, 1_500_000_000, 1);
        assert!(json.starts_with("{\"interval\" : 1.500000000, \"cpu\" : \"1\", \"counter-value\""));
    }

    #[test]
    fn precision_follows_the_error() {
        assert_eq!(precision_for(0.000135), 6);
        assert_eq!(precision_for(0.0000789), 7);
        assert_eq!(precision_for(2.0), 2);
    }
}
