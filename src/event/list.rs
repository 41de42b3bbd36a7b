//! What `rprof list` shows: every event this machine names, in perf's
//! sections, filtered by a substring or a glob.

use super::hardware::{cache_event_names, HARDWARE_EVENTS, SOFTWARE_EVENTS};
use super::pmu::Pmu;
use super::tracepoint::all_tracepoints;
use super::EventSources;

/// A section of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Software,
    Hardware,
    HardwareCache,
    Pmu,
    Tracepoint,
}

impl Section {
    fn label(self) -> &'static str {
        match self {
            Section::Software => "Software event",
            Section::Hardware => "Hardware event",
            Section::HardwareCache => "Hardware cache event",
            Section::Pmu => "Kernel PMU event",
            Section::Tracepoint => "Tracepoint event",
        }
    }
}

/// One listed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// `branch-instructions OR branches`.
    pub name: String,
    pub section: Section,
    /// Why it cannot be opened here, if it cannot.
    pub unavailable: Option<&'static str>,
}

/// Whether the machine has a hardware PMU (generic and cache events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardwarePmu {
    Present,
    /// perf_event_open of cycles failed with ENOENT/EOPNOTSUPP/ENODEV.
    Absent,
}

const NO_PMU: &str = "not supported: no hardware PMU (a VM?)";

/// Every event of `sources`, in perf's order of sections.
pub fn entries(sources: &EventSources, hardware: HardwarePmu) -> Vec<ListEntry> {
    let hw_note = (hardware == HardwarePmu::Absent).then_some(NO_PMU);
    let mut out = Vec::new();
    for (table, section, note) in [
        (HARDWARE_EVENTS, Section::Hardware, hw_note),
        (SOFTWARE_EVENTS, Section::Software, None),
    ] {
        for event in table {
            let mut name = event.name.to_string();
            for alias in event.aliases {
                name.push_str(" OR ");
                name.push_str(alias);
            }
            out.push(ListEntry {
                name,
                section,
                unavailable: note,
            });
        }
    }
    out.extend(cache_event_names().into_iter().map(|(name, _)| ListEntry {
        name,
        section: Section::HardwareCache,
        unavailable: hw_note,
    }));
    for pmu in Pmu::all(&sources.pmu_root) {
        for event in pmu.event_names() {
            out.push(ListEntry {
                name: format!("{}/{event}/", pmu.name),
                section: Section::Pmu,
                unavailable: None,
            });
        }
    }
    if let Some(root) = &sources.tracefs {
        out.extend(all_tracepoints(root).into_iter().map(|name| ListEntry {
            name,
            section: Section::Tracepoint,
            unavailable: None,
        }));
    }
    out
}

/// `*` and `?` globs over the whole name; other text matches as a substring.
/// Both ignore case.
pub fn matches(filter: &str, name: &str) -> bool {
    let filter = filter.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    if filter.contains(['*', '?']) {
        glob(filter.as_bytes(), name.as_bytes())
    } else {
        name.contains(&filter)
    }
}

/// Iterative glob with backtracking to the last `*` (case-sensitive).
pub(super) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The listing as perf prints it: name, then `[section]`.
pub fn render(entries: &[ListEntry], filter: Option<&str>) -> String {
    let mut out = String::new();
    let mut last_section = None;
    for entry in entries {
        // Any of the `OR` spellings may match.
        if let Some(filter) = filter {
            let hit = entry.name.split(" OR ").any(|n| matches(filter, n))
                || matches(filter, entry.section.label());
            if !hit {
                continue;
            }
        }
        if last_section.is_some() && last_section != Some(entry.section) {
            out.push('\n');
        }
        last_section = Some(entry.section);
        let label = match entry.unavailable {
            Some(why) => format!("[{}, {why}]", entry.section.label()),
            None => format!("[{}]", entry.section.label()),
        };
        out.push_str(&format!("  {:<50} {label}\n", entry.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_substrings_select_names() {
        assert!(matches("fault", "page-faults"));
        assert!(matches("FAULT", "page-faults"));
        assert!(matches("sched:*", "sched:sched_switch"));
        assert!(matches("*switch", "sched:sched_switch"));
        assert!(matches("sched:sched_?witch", "sched:sched_switch"));
        assert!(!matches("sched:*exec", "sched:sched_switch"));
        assert!(!matches("*x*y*z", "abc"));
        assert!(matches("*", ""));
    }

    #[test]
    fn listing_has_every_section_and_marks_missing_hardware() {
        let sysfs = super::super::pmu::tests::fake_sysfs();
        let tracefs = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tracefs.path().join("events/sched/sched_switch")).unwrap();
        std::fs::write(tracefs.path().join("events/sched/enable"), "0").unwrap();
        let sources = EventSources {
            pmu_root: sysfs.path().to_path_buf(),
            tracefs: Some(tracefs.path().to_path_buf()),
        };
        let all = entries(&sources, HardwarePmu::Absent);
        let text = render(&all, None);
        for want in [
            "cpu-clock",
            "page-faults OR faults",
            "context-switches OR cs",
            "cpu-cycles OR cycles",
            "L1-dcache-load-misses",
            "dTLB-load-misses",
            "cpu/mem-loads/",
            "uncore_imc/cas_count_read/",
            "sched:sched_switch",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
        assert!(!text.contains("sched:enable"));
        assert!(!text.contains(".scale") && !text.contains(".unit"));
        let cycles = text.lines().find(|l| l.contains("cpu-cycles")).unwrap();
        assert!(
            cycles.contains("not supported: no hardware PMU"),
            "{cycles}"
        );
        let page_faults = text.lines().find(|l| l.contains("page-faults")).unwrap();
        assert!(!page_faults.contains("not supported"), "{page_faults}");
        let with_pmu = render(&entries(&sources, HardwarePmu::Present), Some("cycles"));
        assert!(!with_pmu.contains("not supported"), "{with_pmu}");
        let filtered = render(&all, Some("sched:*"));
        assert_eq!(filtered.lines().count(), 1, "{filtered}");
        let by_alias = render(&all, Some("cs"));
        assert!(by_alias.contains("context-switches"), "{by_alias}");
    }
}
