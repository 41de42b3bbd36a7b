//! `rprof stat -e`: the events of the shared parser (`crate::event`, the
//! same names, groups and modifiers as `record -e`) as counters. One entry
//! point: [`parse_counters`].

use super::counter::{Counter, CounterGroup};
use crate::event::{parse_event_list, EventSpec};

/// perf stat's default events, in its order.
pub const DEFAULT_EVENTS: &str = "task-clock,context-switches,cpu-migrations,page-faults,\
                                  cycles,instructions,branches,branch-misses";

/// Parses `-e` lists (each comma-separated, repeated `-e` allowed) into
/// groups: `{a,b}` is one group, every other event a group of its own.
pub fn parse_counters(lists: &[String]) -> Result<Vec<CounterGroup>, String> {
    let groups = parse_event_list(lists).map_err(|e| format!("-e: {e}"))?;
    if groups.is_empty() {
        return Err("-e: no events given".to_string());
    }
    Ok(groups
        .into_iter()
        .map(|group| CounterGroup {
            counters: group.events.iter().map(counter).collect(),
        })
        .collect())
}

/// What counting needs of an event; sampling settings do not apply.
fn counter(event: &EventSpec) -> Counter {
    Counter {
        name: event.name.clone(),
        kind: event.kind,
        config: event.config,
        config1: event.config1,
        config2: event.config2,
        exclude_user: event.exclude_user,
        exclude_kernel: event.exclude_kernel,
        exclude_hv: event.exclude_hv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::hardware;

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
            "nosuch", "{cycles", "cycles}", "{{a}}", "cycles:x", "rxyz", "{}", "r",
        ] {
            let err = parse_counters(&[bad.to_string()]).unwrap_err();
            assert!(err.starts_with("-e"), "{bad}: {err}");
        }
        assert!(parse_counters(&[]).is_err());
    }
}
