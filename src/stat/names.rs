//! The small event-name table `rprof stat -e` understands until the shared
//! event parser replaces it: perf's default set, the other software
//! events, the generic hardware ones, raw `rNNNN`, the `:u`/`:k`/`:h`
//! modifiers and `{a,b}` groups. One entry point: [`parse_counters`].

use super::counter::{hardware, Counter, CounterGroup};
use crate::abi::{event_type, software};

/// perf stat's default events, in its order.
pub const DEFAULT_EVENTS: &str = "task-clock,context-switches,cpu-migrations,page-faults,\
                                  cycles,instructions,branches,branch-misses";

const NAMES: &[(&str, u32, u64)] = &[
    ("task-clock", event_type::SOFTWARE, software::TASK_CLOCK),
    ("cpu-clock", event_type::SOFTWARE, software::CPU_CLOCK),
    ("page-faults", event_type::SOFTWARE, software::PAGE_FAULTS),
    ("faults", event_type::SOFTWARE, software::PAGE_FAULTS),
    (
        "context-switches",
        event_type::SOFTWARE,
        software::CONTEXT_SWITCHES,
    ),
    ("cs", event_type::SOFTWARE, software::CONTEXT_SWITCHES),
    (
        "cpu-migrations",
        event_type::SOFTWARE,
        software::CPU_MIGRATIONS,
    ),
    ("migrations", event_type::SOFTWARE, software::CPU_MIGRATIONS),
    (
        "minor-faults",
        event_type::SOFTWARE,
        software::PAGE_FAULTS_MIN,
    ),
    (
        "major-faults",
        event_type::SOFTWARE,
        software::PAGE_FAULTS_MAJ,
    ),
    (
        "alignment-faults",
        event_type::SOFTWARE,
        software::ALIGNMENT_FAULTS,
    ),
    (
        "emulation-faults",
        event_type::SOFTWARE,
        software::EMULATION_FAULTS,
    ),
    ("cycles", event_type::HARDWARE, hardware::CPU_CYCLES),
    ("cpu-cycles", event_type::HARDWARE, hardware::CPU_CYCLES),
    ("instructions", event_type::HARDWARE, hardware::INSTRUCTIONS),
    (
        "cache-references",
        event_type::HARDWARE,
        hardware::CACHE_REFERENCES,
    ),
    ("cache-misses", event_type::HARDWARE, hardware::CACHE_MISSES),
    (
        "branches",
        event_type::HARDWARE,
        hardware::BRANCH_INSTRUCTIONS,
    ),
    (
        "branch-instructions",
        event_type::HARDWARE,
        hardware::BRANCH_INSTRUCTIONS,
    ),
    (
        "branch-misses",
        event_type::HARDWARE,
        hardware::BRANCH_MISSES,
    ),
    ("bus-cycles", event_type::HARDWARE, hardware::BUS_CYCLES),
    ("ref-cycles", event_type::HARDWARE, hardware::REF_CPU_CYCLES),
];

/// Parses `-e` lists (each comma-separated, repeated `-e` allowed) into
/// groups: `{a,b}` is one group, every other event a group of its own.
pub fn parse_counters(lists: &[String]) -> Result<Vec<CounterGroup>, String> {
    let mut groups = Vec::new();
    for list in lists {
        for item in split_top_level(list)? {
            if let Some(inner) = item.strip_prefix('{') {
                let (inner, modifiers) = inner
                    .rsplit_once('}')
                    .ok_or_else(|| format!("-e {item}: a group needs a closing `}}`"))?;
                let modifiers = modifiers.strip_prefix(':').unwrap_or(modifiers);
                let mut counters = Vec::new();
                for name in inner.split(',').filter(|n| !n.trim().is_empty()) {
                    let mut counter = parse_one(name.trim())?;
                    if !modifiers.is_empty() {
                        apply_modifiers(&mut counter, modifiers, name)?;
                    }
                    counters.push(counter);
                }
                if counters.is_empty() {
                    return Err(format!("-e {item}: an empty group"));
                }
                groups.push(CounterGroup { counters });
            } else {
                groups.push(CounterGroup {
                    counters: vec![parse_one(item)?],
                });
            }
        }
    }
    if groups.is_empty() {
        return Err("-e: no events given".to_string());
    }
    Ok(groups)
}

/// Splits at commas outside braces; `{a,b},c` -> [`{a,b}`, `c`].
fn split_top_level(list: &str) -> Result<Vec<&str>, String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            '{' if depth > 0 => return Err(format!("-e {list}: groups do not nest")),
            '{' => depth += 1,
            '}' if depth == 0 => return Err(format!("-e {list}: `}}` without `{{`")),
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(format!("-e {list}: a group needs a closing `}}`"));
    }
    items.push(&list[start..]);
    Ok(items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect())
}

/// One event, `name[:modifiers]`.
fn parse_one(text: &str) -> Result<Counter, String> {
    let (name, modifiers) = match text.split_once(':') {
        Some((name, modifiers)) => (name, Some(modifiers)),
        None => (text, None),
    };
    let mut counter = if let Some(&(known, kind, config)) = NAMES
        .iter()
        .find(|(known, _, _)| known.eq_ignore_ascii_case(name))
    {
        Counter::new(known, kind, config)
    } else if let Some(config) = raw_config(name) {
        Counter::new(&format!("r{config:x}"), event_type::RAW, config)
    } else {
        return Err(format!(
            "-e {text}: unknown event; rprof stat knows {} and raw rNNNN (hex)",
            NAMES
                .iter()
                .map(|(name, _, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    if let Some(modifiers) = modifiers {
        apply_modifiers(&mut counter, modifiers, text)?;
    }
    Ok(counter)
}

/// `r1c2` -> 0x1c2.
fn raw_config(name: &str) -> Option<u64> {
    let hex = name.strip_prefix('r')?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// `u`, `k`, `h` as perf reads them: naming any of them counts only those
/// privilege levels. The name keeps the suffix (`cycles:u`).
fn apply_modifiers(counter: &mut Counter, modifiers: &str, text: &str) -> Result<(), String> {
    let (mut user, mut kernel, mut hv) = (false, false, false);
    for m in modifiers.chars() {
        match m {
            'u' => user = true,
            'k' => kernel = true,
            'h' => hv = true,
            other => {
                return Err(format!(
                    "-e {text}: modifier `{other}` is not supported by rprof stat (u, k, h are)"
                ))
            }
        }
    }
    if user || kernel || hv {
        counter.exclude_user = !user;
        counter.exclude_kernel = !kernel;
        counter.exclude_hv = !hv;
    }
    counter.name = format!("{}:{modifiers}", counter.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<CounterGroup> {
        parse_counters(&[text.to_string()]).unwrap()
    }

    #[test]
    fn the_default_set_is_perfs_in_order_each_its_own_group() {
        let groups = parse(DEFAULT_EVENTS);
        let names: Vec<&str> = groups.iter().map(|g| g.counters[0].name.as_str()).collect();
        assert_eq!(
            names,
            [
                "task-clock",
                "context-switches",
                "cpu-migrations",
                "page-faults",
                "cycles",
                "instructions",
                "branches",
                "branch-misses"
            ]
        );
        assert!(groups.iter().all(|g| g.counters.len() == 1));
    }

    #[test]
    fn names_encode_as_the_kernel_abi_says() {
        // (name, PERF_TYPE_*, config) from linux/perf_event.h.
        for (name, kind, config) in [
            ("cpu-clock", 1, 0),
            ("task-clock", 1, 1),
            ("page-faults", 1, 2),
            ("context-switches", 1, 3),
            ("cpu-migrations", 1, 4),
            ("minor-faults", 1, 5),
            ("major-faults", 1, 6),
            ("alignment-faults", 1, 7),
            ("emulation-faults", 1, 8),
            ("cycles", 0, 0),
            ("instructions", 0, 1),
            ("cache-references", 0, 2),
            ("cache-misses", 0, 3),
            ("branches", 0, 4),
            ("branch-misses", 0, 5),
            ("bus-cycles", 0, 6),
            ("ref-cycles", 0, 9),
            ("r1c2", 4, 0x1c2),
        ] {
            let c = &parse(name)[0].counters[0];
            assert_eq!((c.kind, c.config), (kind, config), "{name}");
            assert_eq!(c.name, name);
        }
    }

    #[test]
    fn modifiers_and_groups() {
        let groups = parse_counters(&["{cycles,instructions}:u".into(), "cs:k".into()]).unwrap();
        assert_eq!(groups.len(), 2);
        let [cycles, insns] = &groups[0].counters[..] else {
            panic!("{groups:?}")
        };
        assert_eq!(cycles.name, "cycles:u");
        assert!(cycles.exclude_kernel && cycles.exclude_hv && !cycles.exclude_user);
        assert_eq!(insns.config, hardware::INSTRUCTIONS);
        let cs = &groups[1].counters[0];
        assert_eq!(cs.name, "cs:k");
        assert!(cs.exclude_user && !cs.exclude_kernel);
        let mixed = parse("task-clock,{page-faults,cs},r3c");
        assert_eq!(
            mixed.iter().map(|g| g.counters.len()).collect::<Vec<_>>(),
            [1, 2, 1]
        );
    }

    #[test]
    fn bad_lists_are_errors_that_name_the_event() {
        for bad in [
            "nosuch", "{cycles", "cycles}", "{{a}}", "cycles:p", "rxyz", "{}", "", "r",
        ] {
            let err = parse_counters(&[bad.to_string()]).unwrap_err();
            assert!(err.starts_with("-e"), "{bad}: {err}");
        }
        assert!(parse_counters(&[]).is_err());
    }
}
