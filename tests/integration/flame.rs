//! Flame graphs (svg, html) of a recording whose split is known: titles,
//! units and shares in the tooltips against the workload's own truth, the
//! inverted graph, the minimum width, and the self-contained html page
//! against the folded stacks.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::util::*;

/// Records `work split SECS` with frame pointers into a fresh directory;
/// returns the recording and the workload's stdout (its truth line).
fn record_split(name: &str, secs: &str) -> (PathBuf, String) {
    let dir = temp_dir(name);
    let data = dir.join("split.data");
    let w = workloads();
    let run = rprof(&[
        "record",
        "-g",
        "-o",
        data.to_str().unwrap(),
        "--",
        w.work.to_str().unwrap(),
        "split",
        secs,
    ]);
    assert!(run.status.success(), "record failed: {}", text(&run.stderr));
    (data, text(&run.stdout))
}

/// `rprof report -i DATA ARGS`, which must succeed; its stdout.
fn report(data: &Path, args: &[&str]) -> String {
    let mut argv = vec!["report", "-i", data.to_str().unwrap()];
    argv.extend_from_slice(args);
    let run = rprof(&argv);
    assert!(run.status.success(), "report failed: {}", text(&run.stderr));
    text(&run.stdout)
}

/// One frame of an inferno svg: its tooltip (`name (N unit, P%)`) and y.
#[derive(Debug)]
struct SvgFrame {
    name: String,
    value: f64,
    unit: String,
    percent: f64,
    y: f64,
}

/// The frames of an inferno flame graph: each is a `<g>` with a `<title>`
/// tooltip and a `<rect ... y="...">`.
fn svg_frames(svg: &str) -> Vec<SvgFrame> {
    svg.split("<g>")
        .skip(1)
        .filter_map(|g| {
            let title = g.split_once("<title>")?.1.split_once("</title>")?.0;
            let (name, rest) = title.rsplit_once(" (")?;
            let rest = rest.strip_suffix(')')?;
            let (amount, percent) = rest.split_once(", ")?;
            let (value, unit) = amount.split_once(' ')?;
            let y = g.split_once(" y=\"")?.1.split_once('"')?.0;
            Some(SvgFrame {
                name: name.to_string(),
                value: value.replace(',', "").parse().ok()?,
                unit: unit.to_string(),
                percent: percent.trim_end_matches('%').parse().ok()?,
                y: y.parse().ok()?,
            })
        })
        .collect()
}

/// The text of the svg element with this id (`title`, `subtitle`).
fn svg_text(svg: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    svg.split_once(&marker)
        .and_then(|(_, rest)| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split_once('<'))
        .map(|(text, _)| text.to_string())
        .unwrap_or_default()
}

fn frames_named<'a>(frames: &'a [SvgFrame], name: &str) -> Vec<&'a SvgFrame> {
    frames.iter().filter(|f| f.name == name).collect()
}

#[test]
fn svg_is_titled_and_its_tooltips_split_time_like_the_ground_truth() {
    require_perf!();
    let _guard = serial();
    let (data, stdout) = record_split("flame-svg", "1");
    let svg = report(&data, &["--format", "svg"]);
    let title = svg_text(&svg, "title");
    let subtitle = svg_text(&svg, "subtitle");
    assert!(title.starts_with("work split 1"), "title: {title}");
    assert!(subtitle.contains("cpu-clock"), "subtitle: {subtitle}");
    // The sample count and duration are the recording's.
    let samples: u64 = subtitle
        .split(" · ")
        .find_map(|part| part.strip_suffix(" samples"))
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no sample count in {subtitle}"));
    assert!(samples > 100, "{subtitle}");
    let recorded = subtitle
        .split(" · ")
        .find_map(|part| part.strip_suffix(" recorded"))
        .unwrap_or_else(|| panic!("no duration in {subtitle}"));
    let seconds = match recorded.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().unwrap() / 1e3,
        None => recorded.trim_end_matches('s').parse::<f64>().unwrap(),
    };
    assert!((0.8..1.6).contains(&seconds), "{recorded}");

    let frames = svg_frames(&svg);
    assert!(frames.len() > 3, "no frames parsed from the svg");
    assert!(
        frames.iter().all(|f| f.unit == "us CPU"),
        "every tooltip counts in us CPU: {:?}",
        frames.iter().map(|f| &f.unit).collect::<HashSet<_>>()
    );
    let all = frames.iter().find(|f| f.name == "all").expect("all frame");
    // cpu-clock at 4000 Hz: 250 us per sample.
    let per_sample = all.value / samples as f64;
    assert!(
        (200.0..300.0).contains(&per_sample),
        "{per_sample} us per sample"
    );
    let sum = |name: &str| -> (f64, f64) {
        let frames = frames_named(&frames, name);
        assert!(!frames.is_empty(), "no {name} frame");
        (
            frames.iter().map(|f| f.value).sum(),
            frames.iter().map(|f| f.percent).sum(),
        )
    };
    let (a, a_pct) = sum("burn_a");
    let (b, _) = sum("burn_b");
    // The percentage is the value's share of the whole.
    assert!(
        (a_pct - 100.0 * a / all.value).abs() < 0.5,
        "{a_pct}% vs {a}/{}",
        all.value
    );
    let measured = 100.0 * a / (a + b);
    let truth = truth_split(&stdout);
    assert!(
        (measured - truth).abs() <= 2.0,
        "svg says burn_a {measured:.2}% of burn_a+burn_b, truth {truth:.2}%"
    );
}

#[test]
fn inverted_svg_hangs_callers_below_the_sampled_functions() {
    require_perf!();
    let _guard = serial();
    let (data, _) = record_split("flame-inverted", "0.5");
    // The lowest (largest y) and highest (smallest y) frame of a function.
    let ys = |frames: &[SvgFrame], name: &str| {
        let ys: Vec<f64> = frames_named(frames, name).iter().map(|f| f.y).collect();
        assert!(!ys.is_empty(), "no {name} frame");
        (
            ys.iter().copied().fold(f64::MIN, f64::max),
            ys.iter().copied().fold(f64::MAX, f64::min),
        )
    };
    let normal = svg_frames(&report(&data, &["--format", "svg"]));
    let inverted = svg_frames(&report(&data, &["--format", "svg", "--inverted"]));
    let row = |frames: &[SvgFrame]| {
        let mut ys: Vec<f64> = frames.iter().map(|f| f.y).collect();
        ys.sort_by(f64::total_cmp);
        ys.dedup();
        ys.windows(2).map(|w| w[1] - w[0]).fold(f64::MAX, f64::min)
    };
    // Flame graph: `all` at the bottom, main above it, burn_a above main.
    let (all, _) = ys(&normal, "all");
    let (main, _) = ys(&normal, "main");
    let (burn_a, _) = ys(&normal, "burn_a");
    assert!(
        burn_a < main && main < all,
        "normal: burn_a {burn_a}, main {main}, all {all}"
    );
    // Inverted: `all` at the top, the sampled burn_a right under it, its
    // caller main further down.
    let (_, all) = ys(&inverted, "all");
    let (_, main) = ys(&inverted, "main");
    let (_, burn_a) = ys(&inverted, "burn_a");
    assert!(
        all < burn_a && burn_a < main,
        "inverted: all {all}, burn_a {burn_a}, main {main}"
    );
    let step = row(&inverted);
    assert!(
        (burn_a - all - step).abs() < 0.5,
        "burn_a is not the first row under all: all {all}, burn_a {burn_a}, row {step}"
    );
}

#[test]
fn min_width_leaves_out_narrow_frames() {
    require_perf!();
    let _guard = serial();
    let (data, _) = record_split("flame-min-width", "0.5");
    let every = svg_frames(&report(&data, &["--format", "svg", "--min-width", "0"]));
    let wide = svg_frames(&report(&data, &["--format", "svg", "--min-width", "10%"]));
    // 120 pixels of the 1200-pixel graph are 10%.
    let wide_px = svg_frames(&report(&data, &["--format", "svg", "--min-width", "120"]));
    assert!(
        wide.len() < every.len(),
        "--min-width 10% kept {} of {} frames",
        wide.len(),
        every.len()
    );
    assert!(every.iter().any(|f| f.percent < 10.0));
    assert!(
        wide.iter().all(|f| f.percent >= 9.99),
        "a frame under 10% was kept: {wide:?}"
    );
    assert_eq!(wide.len(), wide_px.len(), "120 pixels and 10% differ");
    assert!(wide.iter().any(|f| f.name == "burn_a"));
}

#[test]
fn flame_graph_flags_are_refused_for_other_formats() {
    for (args, flag) in [
        (&["--format", "folded", "--inverted"][..], "--inverted"),
        (&["--format", "top", "--min-width", "1%"][..], "--min-width"),
        (&["--format", "tree", "--inverted"][..], "--inverted"),
    ] {
        let mut argv = vec!["report", "-i", "/nonexistent.data"];
        argv.extend_from_slice(args);
        let run = rprof(&argv);
        assert!(!run.status.success());
        let err = text(&run.stderr);
        assert!(
            err.contains(&format!(
                "{flag} shapes a flame graph: use it with --format svg or html"
            )),
            "{args:?}: {err}"
        );
    }
    let run = rprof(&[
        "report",
        "-i",
        "/nonexistent.data",
        "--format",
        "svg",
        "--min-width",
        "5px",
    ]);
    assert!(!run.status.success());
    assert!(
        text(&run.stderr).contains("--min-width 5px: expected pixels"),
        "{}",
        text(&run.stderr)
    );
}

/// The JSON the html page embeds.
fn html_data(page: &str) -> serde_json::Value {
    let open = "<script type=\"application/json\" id=\"flame-data\">";
    let start = page.find(open).expect("embedded data") + open.len();
    let end = start + page[start..].find("</script>").expect("end of the data");
    serde_json::from_str(&page[start..end]).expect("the embedded data is JSON")
}

/// Per function, its total: the weight of the stacks it is on, each stack
/// counted once (recursion does not count twice).
fn totals_from_html(data: &serde_json::Value) -> BTreeMap<String, u64> {
    let names: Vec<&str> = data["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("name"))
        .collect();
    let flat: Vec<u64> = data["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|v| v.as_u64().expect("number"))
        .collect();
    assert_eq!(flat.len() % 4, 0);
    let mut totals = BTreeMap::new();
    // Preorder: (name, children left) of the open ancestors.
    let mut path: Vec<(usize, u64)> = Vec::new();
    for (i, node) in flat.chunks(4).enumerate() {
        let (name, self_weight, total, children) = (node[0] as usize, node[1], node[2], node[3]);
        while path.last().is_some_and(|&(_, left)| left == 0) {
            path.pop();
        }
        if let Some(parent) = path.last_mut() {
            parent.1 -= 1;
        }
        if i > 0 && !path.iter().any(|&(n, _)| n == name) {
            *totals.entry(names[name].to_string()).or_insert(0) += total;
        }
        assert!(
            self_weight <= total,
            "{} self {self_weight} > total {total}",
            names[name]
        );
        path.push((name, children));
    }
    totals
}

/// Runs tests/support/flame_page.js (the page's script against a fake DOM)
/// under node; None when node is not installed (CI installs it and sets
/// RPROF_REQUIRE_PERF, which makes a missing node a failure).
fn run_page_script(page: &Path, search: &str) -> Option<serde_json::Value> {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/flame_page.js");
    let run = match std::process::Command::new("node")
        .arg(harness)
        .arg(page)
        .arg(search)
        .output()
    {
        Ok(run) => run,
        Err(e) => {
            assert!(
                std::env::var_os("RPROF_REQUIRE_PERF").is_none(),
                "node is needed to run the html page's script (apt-get install nodejs): {e}"
            );
            eprintln!("node is not installed: the page's script is not run");
            return None;
        }
    };
    assert!(
        run.status.success(),
        "the page's script failed: {}",
        text(&run.stderr)
    );
    Some(serde_json::from_slice(&run.stdout).expect("harness output"))
}

/// Per function, its total in folded stacks: the lines it is on.
fn totals_from_folded(folded_text: &str) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    for (stack, count) in folded(folded_text) {
        let frames: HashSet<&str> = stack.split(';').collect();
        for frame in frames {
            *totals.entry(frame.to_string()).or_insert(0) += count;
        }
    }
    totals
}

#[test]
fn html_is_self_contained_and_its_tree_matches_the_folded_stacks() {
    require_perf!();
    let _guard = serial();
    let (data, _) = record_split("flame-html", "0.5");
    let dir = data.parent().unwrap();
    let out = dir.join("flame.html");
    report(&data, &["--format", "html", "-o", out.to_str().unwrap()]);
    let page = std::fs::read_to_string(&out).unwrap();
    for external in ["http://", "https://", "src=", "@import", "url("] {
        assert!(!page.contains(external), "the page refers to {external}");
    }
    assert!(page.contains("<canvas"));
    let json = html_data(&page);
    assert!(json["title"]
        .as_str()
        .unwrap()
        .starts_with("work split 0.5"));
    assert!(json["subtitle"].as_str().unwrap().contains("samples"));
    assert_eq!(json["unit"], "us CPU");
    assert_eq!(json["event"], "cpu-clock");
    assert!(page.contains("<title>work split 0.5"));

    let from_html = totals_from_html(&json);
    let from_folded = totals_from_folded(&report(&data, &["--format", "folded"]));
    assert!(from_folded.contains_key("burn_a"));
    assert_eq!(from_html, from_folded, "per-function totals differ");
    let root_total = json["nodes"][2].as_u64().unwrap();
    let folded_total: u64 = folded(&report(&data, &["--format", "folded"]))
        .iter()
        .map(|(_, c)| c)
        .sum();
    assert_eq!(root_total, folded_total);

    // The page's script, run under node when it is installed: it draws,
    // and its search, hover and table give the tree's numbers.
    if let Some(shown) = run_page_script(&out, "^burn_a$") {
        let burn_a = 100.0 * from_folded["burn_a"] as f64 / root_total as f64;
        let share = format!("{burn_a:.2}%");
        assert!(shown["firstDraw"].as_u64().unwrap() > 3, "{shown}");
        assert!(shown["zoomedRects"].as_u64().unwrap() > 0, "{shown}");
        let hover = shown["hoverAll"].as_str().unwrap();
        assert!(
            hover.starts_with("all  total ") && hover.contains(" us CPU (100.00%)"),
            "{hover}"
        );
        let matched = shown["matched"].as_str().unwrap();
        assert!(
            matched.starts_with(&format!("Matched: {share} (")),
            "{matched}, want {share}"
        );
        let row = shown["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[4] == "burn_a")
            .unwrap_or_else(|| panic!("no burn_a row: {shown}"));
        assert_eq!(row[1], share.as_str(), "{row}");
    }

    // Inverted: the same functions and totals, the sampled ones first.
    let inverted = report(&data, &["--format", "html", "--inverted"]);
    let inverted = html_data(&inverted);
    assert_eq!(inverted["inverted"], true);
    assert_eq!(totals_from_html(&inverted), from_folded);
}

#[test]
fn tooltips_count_wall_time_and_page_faults_in_their_units() {
    require_perf!();
    let _guard = serial();
    let w = workloads();
    let dir = temp_dir("flame-units");
    for (flags, unit) in [
        (&["--wall", "-g"][..], "us wall"),
        (&["-e", "page-faults", "-c", "1", "-g"][..], "page-faults"),
    ] {
        let data = dir.join("units.data");
        let mut argv = vec!["record"];
        argv.extend_from_slice(flags);
        argv.extend(["-o", data.to_str().unwrap(), "--", w.work.to_str().unwrap()]);
        argv.extend(["split", "0.3"]);
        let run = rprof(&argv);
        assert!(
            run.status.success(),
            "record {flags:?}: {}",
            text(&run.stderr)
        );
        let frames = svg_frames(&report(&data, &["--format", "svg"]));
        assert!(!frames.is_empty(), "{flags:?}: no frames");
        let units: HashSet<&str> = frames.iter().map(|f| f.unit.as_str()).collect();
        assert_eq!(units, HashSet::from([unit]), "{flags:?}");
        let page = report(&data, &["--format", "html"]);
        assert_eq!(html_data(&page)["unit"], unit, "{flags:?}");
    }
}
