//! The events the kernel names itself: software counters, generic hardware
//! events and the hardware cache grammar, with perf's spellings and the
//! `PERF_COUNT_*` numbers of include/uapi/linux/perf_event.h.

use crate::abi::{event_type, software};

/// One named event of a fixed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedEvent {
    /// The name perf lists first (`context-switches`).
    pub name: &'static str,
    /// Other spellings perf accepts (`cs`).
    pub aliases: &'static [&'static str],
    pub kind: u32,
    pub config: u64,
}

const fn sw(name: &'static str, aliases: &'static [&'static str], config: u64) -> NamedEvent {
    NamedEvent {
        name,
        aliases,
        kind: event_type::SOFTWARE,
        config,
    }
}

const fn hw(name: &'static str, aliases: &'static [&'static str], config: u64) -> NamedEvent {
    NamedEvent {
        name,
        aliases,
        kind: event_type::HARDWARE,
        config,
    }
}

/// `PERF_COUNT_SW_*` (perf_event.h `enum perf_sw_ids`).
pub const SOFTWARE_EVENTS: &[NamedEvent] = &[
    sw("cpu-clock", &[], software::CPU_CLOCK),
    sw("task-clock", &[], software::TASK_CLOCK),
    sw("page-faults", &["faults"], software::PAGE_FAULTS),
    sw("context-switches", &["cs"], software::CONTEXT_SWITCHES),
    sw("cpu-migrations", &["migrations"], software::CPU_MIGRATIONS),
    sw("minor-faults", &[], software::PAGE_FAULTS_MIN),
    sw("major-faults", &[], software::PAGE_FAULTS_MAJ),
    sw("alignment-faults", &[], software::ALIGNMENT_FAULTS),
    sw("emulation-faults", &[], software::EMULATION_FAULTS),
    sw("dummy", &[], software::DUMMY),
    sw("bpf-output", &[], 10),
    sw("cgroup-switches", &[], 11),
];

/// `PERF_COUNT_HW_*` (perf_event.h `enum perf_hw_id`).
pub const HARDWARE_EVENTS: &[NamedEvent] = &[
    hw("cpu-cycles", &["cycles"], 0),
    hw("instructions", &[], 1),
    hw("cache-references", &[], 2),
    hw("cache-misses", &[], 3),
    hw("branch-instructions", &["branches"], 4),
    hw("branch-misses", &[], 5),
    hw("bus-cycles", &[], 6),
    hw("stalled-cycles-frontend", &["idle-cycles-frontend"], 7),
    hw("stalled-cycles-backend", &["idle-cycles-backend"], 8),
    hw("ref-cycles", &[], 9),
];

/// A software or generic hardware event by any of its spellings.
pub fn lookup_named(name: &str) -> Option<&'static NamedEvent> {
    SOFTWARE_EVENTS
        .iter()
        .chain(HARDWARE_EVENTS)
        .find(|e| e.name == name || e.aliases.contains(&name))
}

/// `PERF_COUNT_HW_CACHE_*` ids with perf's spellings (tools/perf
/// `evsel__hw_cache`), first spelling canonical.
pub const CACHE_TYPES: &[(&[&str], u64)] = &[
    (&["L1-dcache", "l1-d", "l1d", "L1-data"], 0),
    (&["L1-icache", "l1-i", "l1i", "L1-instruction"], 1),
    (&["LLC", "L2"], 2),
    (&["dTLB", "d-tlb", "Data-TLB"], 3),
    (&["iTLB", "i-tlb", "Instruction-TLB"], 4),
    (&["branch", "branches", "bpu", "btb", "bpc"], 5),
    (&["node"], 6),
];

/// `PERF_COUNT_HW_CACHE_OP_*`: canonical (plural) spelling first.
pub const CACHE_OPS: &[(&[&str], u64)] = &[
    (&["load", "loads", "read"], 0),
    (&["store", "stores", "write"], 1),
    (
        &[
            "prefetch",
            "prefetches",
            "speculative-read",
            "speculative-load",
        ],
        2,
    ),
];

/// `PERF_COUNT_HW_CACHE_RESULT_*`.
pub const CACHE_RESULTS: &[(&[&str], u64)] = &[
    (&["refs", "Reference", "ops", "access"], 0),
    (&["misses", "miss"], 1),
];

/// Which (type, op) pairs exist (perf's `evsel__hw_cache_stat`): the
/// instruction caches and the branch unit only read.
pub fn cache_op_valid(cache: u64, op: u64) -> bool {
    match cache {
        0 | 2 | 3 | 6 => op <= 2,
        1 => op == 0 || op == 2,
        4 | 5 => op == 0,
        _ => false,
    }
}

/// `PERF_TYPE_HW_CACHE`'s config: `id | (op << 8) | (result << 16)`.
pub const fn cache_config(cache: u64, op: u64, result: u64) -> u64 {
    cache | (op << 8) | (result << 16)
}

/// The longest alias in `table` that `text` starts with (case-insensitive,
/// as perf compares), followed by the end or a `-`; returns its id and the
/// rest after the `-`.
fn strip_alias<'t>(text: &'t str, table: &[(&[&str], u64)]) -> Option<(u64, &'t str)> {
    let mut best: Option<(usize, u64)> = None;
    for (aliases, id) in table {
        for alias in *aliases {
            let Some(head) = text.get(..alias.len()) else {
                continue;
            };
            let boundary = text.len() == alias.len() || text.as_bytes()[alias.len()] == b'-';
            if head.eq_ignore_ascii_case(alias)
                && boundary
                && best.map_or(true, |(len, _)| alias.len() > len)
            {
                best = Some((alias.len(), *id));
            }
        }
    }
    best.map(|(len, id)| (id, text.get(len + 1..).unwrap_or("")))
}

/// A hardware cache event name (`L1-dcache-load-misses`, `LLC-loads`,
/// `dTLB-misses`) as `(cache, op, result)`; the op defaults to load and the
/// result to access, as in perf. None when the name is not of this grammar
/// or names a pair the hardware does not have.
pub fn parse_cache_event(name: &str) -> Option<(u64, u64, u64)> {
    let (cache, mut rest) = strip_alias(name, CACHE_TYPES)?;
    let mut op = None;
    let mut result = None;
    while !rest.is_empty() {
        if op.is_none() {
            if let Some((id, after)) = strip_alias(rest, CACHE_OPS) {
                op = Some(id);
                rest = after;
                continue;
            }
        }
        if result.is_none() {
            if let Some((id, after)) = strip_alias(rest, CACHE_RESULTS) {
                result = Some(id);
                rest = after;
                continue;
            }
        }
        return None;
    }
    let op = op.unwrap_or(0);
    cache_op_valid(cache, op).then_some((cache, op, result.unwrap_or(0)))
}

/// Every cache event `perf list` shows, with its config, in perf's order:
/// `L1-dcache-loads`, `L1-dcache-load-misses`, ...
pub fn cache_event_names() -> Vec<(String, u64)> {
    let mut names = Vec::new();
    for (types, cache) in CACHE_TYPES {
        for (ops, op) in CACHE_OPS {
            if !cache_op_valid(*cache, *op) {
                continue;
            }
            // perf's listed forms: `-loads` (access) and `-load-misses`.
            names.push((
                format!("{}-{}", types[0], ops[1]),
                cache_config(*cache, *op, 0),
            ));
            names.push((
                format!("{}-{}-misses", types[0], ops[0]),
                cache_config(*cache, *op, 1),
            ));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// perf_event.h: PERF_COUNT_SW_* and PERF_COUNT_HW_* values.
    #[test]
    fn named_events_match_the_kernel_abi() {
        let expect: &[(&str, u32, u64)] = &[
            ("cpu-clock", 1, 0),
            ("task-clock", 1, 1),
            ("page-faults", 1, 2),
            ("faults", 1, 2),
            ("context-switches", 1, 3),
            ("cs", 1, 3),
            ("cpu-migrations", 1, 4),
            ("migrations", 1, 4),
            ("minor-faults", 1, 5),
            ("major-faults", 1, 6),
            ("alignment-faults", 1, 7),
            ("emulation-faults", 1, 8),
            ("dummy", 1, 9),
            ("bpf-output", 1, 10),
            ("cycles", 0, 0),
            ("cpu-cycles", 0, 0),
            ("instructions", 0, 1),
            ("cache-references", 0, 2),
            ("cache-misses", 0, 3),
            ("branches", 0, 4),
            ("branch-instructions", 0, 4),
            ("branch-misses", 0, 5),
            ("bus-cycles", 0, 6),
            ("stalled-cycles-frontend", 0, 7),
            ("idle-cycles-frontend", 0, 7),
            ("stalled-cycles-backend", 0, 8),
            ("idle-cycles-backend", 0, 8),
            ("ref-cycles", 0, 9),
        ];
        for &(name, kind, config) in expect {
            let e = lookup_named(name).unwrap_or_else(|| panic!("{name} unknown"));
            assert_eq!((e.kind, e.config), (kind, config), "{name}");
        }
        assert!(lookup_named("cycle").is_none());
    }

    #[test]
    fn cache_events_encode_id_op_and_result() {
        let expect: &[(&str, u64)] = &[
            ("L1-dcache-loads", 0x0),
            ("L1-dcache-load-misses", 0x10000),
            ("L1-dcache-stores", 0x100),
            ("L1-dcache-store-misses", 0x10100),
            ("L1-dcache-prefetches", 0x200),
            ("L1-dcache-prefetch-misses", 0x10200),
            ("L1-icache-loads", 0x1),
            ("L1-icache-load-misses", 0x10001),
            ("LLC-loads", 0x2),
            ("LLC-load-misses", 0x10002),
            ("LLC-stores", 0x102),
            ("LLC-store-misses", 0x10102),
            ("dTLB-loads", 0x3),
            ("dTLB-load-misses", 0x10003),
            ("dTLB-store-misses", 0x10103),
            ("iTLB-loads", 0x4),
            ("iTLB-load-misses", 0x10004),
            ("branch-loads", 0x5),
            ("branch-load-misses", 0x10005),
            ("node-loads", 0x6),
            ("node-load-misses", 0x10006),
            ("node-stores", 0x106),
            // Other spellings perf takes: op defaults to load, result to access.
            ("LLC-misses", 0x10002),
            ("l1d-read-miss", 0x10000),
            ("L1-dcache", 0x0),
            ("dtlb-loads", 0x3),
            ("L1-dcache-speculative-read-misses", 0x10200),
            ("L1-dcache-load-refs", 0x0),
            ("L1-dcache-load-access", 0x0),
        ];
        for &(name, config) in expect {
            let (c, o, r) = parse_cache_event(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(cache_config(c, o, r), config, "{name}");
        }
        for bad in [
            "L1-icache-stores",
            "iTLB-stores",
            "branch-prefetches",
            "LLC-loads-loads",
            "LLC-bogus",
            "LLCloads",
            "dTLB-misses-misses",
        ] {
            assert!(parse_cache_event(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn listed_cache_names_parse_back_to_their_config() {
        let names = cache_event_names();
        assert!(names.len() >= 26, "{}", names.len());
        for (name, config) in names {
            let (c, o, r) = parse_cache_event(&name).unwrap();
            assert_eq!(cache_config(c, o, r), config, "{name}");
        }
    }
}
