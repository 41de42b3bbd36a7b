//! perf's `-e` grammar: `EVENT[,EVENT...]` where an event is a name
//! (`cycles`, `page-faults`, `L1-dcache-load-misses`), raw `rNNNN`, a PMU
//! term list `pmu/event=0x3c,umask=1/`, a PMU's named event, or a
//! tracepoint `subsys:name`; each may end in `:MODIFIERS` (`u k h p`), and
//! `{a,b}:MODIFIERS` opens events as one group.

use std::path::{Path, PathBuf};

use super::hardware::{cache_config, lookup_named, parse_cache_event};
use super::list::glob;
use super::pmu::parse_number;
use super::pmu::Pmu;
use super::tracepoint::{
    all_tracepoints, find_tracefs, read_format, tracepoint_id, TRACEFS_CANDIDATES,
};
use super::{CallGraph, EventError, EventGroup, EventSpec, Sampling};
use crate::abi::event_type;

/// Where event names are looked up: sysfs PMUs and tracefs. Tests point
/// these at fake trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSources {
    /// `/sys/bus/event_source/devices`.
    pub pmu_root: PathBuf,
    /// The mounted tracefs, None when it is not mounted.
    pub tracefs: Option<PathBuf>,
}

impl EventSources {
    /// This machine's sysfs and the first mounted tracefs.
    pub fn system() -> EventSources {
        let candidates: Vec<PathBuf> = TRACEFS_CANDIDATES.iter().map(PathBuf::from).collect();
        EventSources {
            pmu_root: PathBuf::from("/sys/bus/event_source/devices"),
            tracefs: find_tracefs(&candidates),
        }
    }
}

/// Parses the `-e` arguments (one string per `-e`) against this machine.
pub fn parse_event_list(lists: &[String]) -> Result<Vec<EventGroup>, EventError> {
    parse_event_list_in(lists, &EventSources::system())
}

/// [`parse_event_list`] against `sources`.
pub fn parse_event_list_in(
    lists: &[String],
    sources: &EventSources,
) -> Result<Vec<EventGroup>, EventError> {
    let mut groups = Vec::new();
    for list in lists {
        for item in split_top_level(list)? {
            groups.extend(parse_item(item, sources)?);
        }
    }
    Ok(groups)
}

/// Splits at commas outside `{...}` and outside a PMU's `/.../`.
fn split_top_level(list: &str) -> Result<Vec<&str>, EventError> {
    let syntax = |why: &str| EventError::Syntax {
        text: list.to_string(),
        why: why.to_string(),
    };
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut in_pmu = false;
    let mut start = 0;
    for (at, byte) in list.bytes().enumerate() {
        match byte {
            b'{' if !in_pmu => {
                if depth > 0 {
                    return Err(syntax("groups cannot be nested"));
                }
                depth += 1;
            }
            b'}' if !in_pmu => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| syntax("'}' without '{'"))?;
            }
            b'/' => in_pmu = !in_pmu,
            b',' if depth == 0 && !in_pmu => {
                items.push(&list[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(syntax("'{' without '}'"));
    }
    if in_pmu {
        return Err(syntax(
            "a PMU event needs a closing '/' (e.g. cpu/event=0x3c/)",
        ));
    }
    items.push(&list[start..]);
    let items: Vec<&str> = items.into_iter().map(str::trim).collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err(syntax("empty event name"));
    }
    Ok(items)
}

/// One top-level item: a group `{a,b}:mods`, or a lone event (several
/// groups of one for a tracepoint wildcard).
fn parse_item(item: &str, sources: &EventSources) -> Result<Vec<EventGroup>, EventError> {
    let Some(inner) = item.strip_prefix('{') else {
        // A wildcard outside a group opens each match on its own.
        let events = parse_event(item, "", sources)?;
        return Ok(events
            .into_iter()
            .map(|event| EventGroup {
                events: vec![event],
            })
            .collect());
    };
    let Some((body, after)) = inner.rsplit_once('}') else {
        return Err(EventError::Syntax {
            text: item.to_string(),
            why: "'{' without '}'".into(),
        });
    };
    let group_modifiers = match after {
        "" => "",
        _ => after.strip_prefix(':').ok_or_else(|| EventError::Syntax {
            text: item.to_string(),
            why: "a group is followed by nothing or :MODIFIERS (e.g. {cycles,instructions}:u)"
                .into(),
        })?,
    };
    let mut events = Vec::new();
    for member in split_top_level(body)? {
        events.extend(parse_event(member, group_modifiers, sources)?);
    }
    Ok(vec![EventGroup { events }])
}

/// What the modifier letters ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Modifiers {
    user: bool,
    kernel: bool,
    hypervisor: bool,
    precise: u8,
}

impl Modifiers {
    fn parse(event: &str, text: &str) -> Result<Modifiers, EventError> {
        let mut m = Modifiers::default();
        for c in text.chars() {
            match c {
                'u' => m.user = true,
                'k' => m.kernel = true,
                'h' => m.hypervisor = true,
                'p' if m.precise < 3 => m.precise += 1,
                _ => {
                    return Err(EventError::BadModifier {
                        event: event.to_string(),
                        modifier: c,
                    })
                }
            }
        }
        Ok(m)
    }

    /// perf's rule: naming any of u, k, h excludes the levels not named.
    fn apply(self, spec: &mut EventSpec) {
        if self.user || self.kernel || self.hypervisor {
            spec.exclude_user = !self.user;
            spec.exclude_kernel = !self.kernel;
            spec.exclude_hv = !self.hypervisor;
        }
        spec.precise_ip = self.precise;
    }
}

/// True for text made only of modifier letters.
fn is_modifier_text(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| matches!(c, 'u' | 'k' | 'h' | 'p'))
}

/// `name` and `modifiers` of one event (`cycles:u`, `cpu/event=1/uk`,
/// `sched:sched_switch:k`).
fn split_modifiers(text: &str) -> (&str, &str) {
    if text.contains('/') {
        if let Some(close) = text.rfind('/') {
            let after = &text[close + 1..];
            let mods = after.strip_prefix(':').unwrap_or(after);
            return (&text[..=close], mods);
        }
    }
    match text.rsplit_once(':') {
        Some((name, mods)) if !name.is_empty() && is_modifier_text(mods) => (name, mods),
        _ => (text, ""),
    }
}

/// A new event of type `kind`, sampled by perf's defaults until the
/// command applies -F/-c/-g.
fn spec(name: &str, kind: u32, config: u64) -> EventSpec {
    EventSpec {
        name: name.to_string(),
        kind,
        config,
        ..EventSpec::cpu_clock(Sampling::default(), CallGraph::None)
    }
}

/// perf's config terms inside `/.../`: how an event is sampled and what it
/// is called, as opposed to the PMU's format terms (what it counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ConfigTerms {
    sampling: Option<Sampling>,
    name: Option<String>,
}

/// Splits `period=N`, `freq=HZ` and `name=NAME` out of a term list; the
/// rest (format terms, a PMU's named event) is returned for the PMU.
fn split_config_terms(event: &str, terms: &str) -> Result<(String, ConfigTerms), EventError> {
    let bad = |term: &str, why: &str| EventError::BadConfigTerm {
        event: event.to_string(),
        term: term.to_string(),
        why: why.to_string(),
    };
    let mut config = ConfigTerms::default();
    let mut rest = Vec::new();
    for term in terms.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (key, value) = term.split_once('=').unwrap_or((term, ""));
        let number = || {
            parse_number(value.trim())
                .filter(|&n| n > 0 && n < 1 << 63)
                .ok_or_else(|| bad(term, "needs a number from 1 to 2^63-1"))
        };
        let sampling =
            match key.trim() {
                "period" => Sampling::Period(number()?),
                "freq" => Sampling::Frequency(number()?),
                "name" if !value.trim().is_empty() => {
                    config.name = Some(value.trim().to_string());
                    continue;
                }
                "name" => return Err(bad(term, "needs a name")),
                "call-graph" | "stack-size" | "max-stack" => return Err(bad(
                    term,
                    "is not taken per event: -g or --call-graph sets the call chains of all events",
                )),
                _ => {
                    rest.push(term);
                    continue;
                }
            };
        if config.sampling.replace(sampling).is_some() {
            return Err(bad(term, "repeats period/freq: give one"));
        }
    }
    Ok((rest.join(","), config))
}

fn parse_event(
    text: &str,
    group_modifiers: &str,
    sources: &EventSources,
) -> Result<Vec<EventSpec>, EventError> {
    let (name, modifiers) = split_modifiers(text);
    let all = format!("{modifiers}{group_modifiers}");
    let parsed_modifiers = Modifiers::parse(text, &all)?;
    let (events, config) = encode_name(name, sources)?;
    if config.name.is_some() && events.len() > 1 {
        return Err(EventError::BadConfigTerm {
            event: text.to_string(),
            term: "name".into(),
            why: "names one event, and this pattern matches several".into(),
        });
    }
    let mut parsed = Vec::with_capacity(events.len());
    for mut event in events {
        parsed_modifiers.apply(&mut event);
        // A wildcard's match stands where the pattern was.
        let text = format!("{}{}", event.name, &text[name.len()..]);
        event.name = match (&config.name, group_modifiers) {
            (Some(own), _) => own.clone(),
            (None, "") => text,
            (None, mods) if modifiers.is_empty() && !name.contains('/') => format!("{text}:{mods}"),
            (None, mods) => format!("{text}{mods}"),
        };
        if event.is_tracepoint() {
            event.sampling = event.default_sampling();
        }
        event.own_sampling = config.sampling;
        parsed.push(event);
    }
    Ok(parsed)
}

/// The events a name (without modifiers) stands for (several for a
/// tracepoint wildcard), each named as written or as matched, and the
/// config terms given in its `/.../`.
fn encode_name(
    name: &str,
    sources: &EventSources,
) -> Result<(Vec<EventSpec>, ConfigTerms), EventError> {
    let Some((prefix, terms)) = name.split_once('/') else {
        return Ok((encode_plain(name, sources)?, ConfigTerms::default()));
    };
    let terms = terms.strip_suffix('/').ok_or_else(|| EventError::Syntax {
        text: name.to_string(),
        why: "a PMU event ends with '/' (e.g. cpu/event=0x3c,umask=0/)".into(),
    })?;
    let (pmu_terms, config) = split_config_terms(name, terms)?;
    // `cpu-clock/period=1000/`: an event that is not a PMU, with config terms only.
    if Pmu::open(&sources.pmu_root, prefix).is_none() && pmu_terms.is_empty() && !prefix.is_empty()
    {
        if let Ok(events) = encode_plain(prefix, sources) {
            let events = events
                .into_iter()
                .map(|mut event| {
                    event.name = format!("{}/{terms}/", event.name);
                    event
                })
                .collect();
            return Ok((events, config));
        }
    }
    let mut event = pmu_event(&sources.pmu_root, prefix, &pmu_terms, name)?;
    event.name = name.to_string();
    Ok((vec![event], config))
}

/// A name without `/.../`: generic, raw, cache, tracepoint (wildcards
/// expanded) or a PMU's named event.
fn encode_plain(name: &str, sources: &EventSources) -> Result<Vec<EventSpec>, EventError> {
    if let Some(named) = lookup_named(name) {
        return Ok(vec![spec(name, named.kind, named.config)]);
    }
    if let Some(raw) = raw_config(name) {
        return Ok(vec![spec(name, event_type::RAW, raw)]);
    }
    if let Some((cache, op, result)) = parse_cache_event(name) {
        return Ok(vec![spec(
            name,
            event_type::HW_CACHE,
            cache_config(cache, op, result),
        )]);
    }
    if let Some((subsys, event_name)) = name.split_once(':') {
        // `cycles:x`: a known event with a bad modifier, not a tracepoint.
        if lookup_named(subsys).is_some()
            || raw_config(subsys).is_some()
            || parse_cache_event(subsys).is_some()
        {
            let modifier = event_name
                .chars()
                .find(|c| !matches!(c, 'u' | 'k' | 'h' | 'p'))
                .unwrap_or('p');
            return Err(EventError::BadModifier {
                event: name.to_string(),
                modifier,
            });
        }
        if name.contains(['*', '?']) {
            return tracepoint_matches(name, sources);
        }
        return Ok(vec![tracepoint(subsys, event_name, sources)?]);
    }
    // A PMU's named event given bare (`tsc` is `msr/tsc/`), as perf finds it.
    for pmu in Pmu::all(&sources.pmu_root) {
        if pmu.alias(name).is_some() {
            return Ok(vec![pmu_event(&sources.pmu_root, &pmu.name, name, name)?]);
        }
    }
    Err(EventError::UnknownEvent {
        name: name.to_string(),
    })
}

fn tracepoint(subsys: &str, name: &str, sources: &EventSources) -> Result<EventSpec, EventError> {
    let id = tracepoint_id(sources.tracefs.as_deref(), subsys, name)?;
    let mut event = spec(&format!("{subsys}:{name}"), event_type::TRACEPOINT, id);
    event.trace_format = sources
        .tracefs
        .as_deref()
        .and_then(|root| read_format(root, subsys, name));
    Ok(event)
}

/// `sched:*`, `sched:sched_wak*`, `*:sys_enter_openat`: every tracepoint
/// whose `subsys:name` the glob matches (case-sensitive, as tracefs is).
fn tracepoint_matches(pattern: &str, sources: &EventSources) -> Result<Vec<EventSpec>, EventError> {
    // The plain lookup says what is wrong when tracefs is missing.
    let Some(root) = sources.tracefs.as_deref() else {
        let (subsys, name) = pattern.split_once(':').unwrap_or((pattern, ""));
        return Err(tracepoint_id(None, subsys, name)
            .err()
            .unwrap_or(EventError::UnknownEvent {
                name: pattern.to_string(),
            }));
    };
    let mut events = Vec::new();
    for full in all_tracepoints(root) {
        if !glob(pattern.as_bytes(), full.as_bytes()) {
            continue;
        }
        if let Some((subsys, name)) = full.split_once(':') {
            events.push(tracepoint(subsys, name, sources)?);
        }
    }
    if events.is_empty() {
        return Err(EventError::NoTracepointMatches {
            pattern: pattern.to_string(),
            tracefs: root.display().to_string(),
        });
    }
    Ok(events)
}

/// `rNNNN`: hex digits only, as perf's lexer takes them.
fn raw_config(name: &str) -> Option<u64> {
    let hex = name.strip_prefix('r')?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn pmu_event(root: &Path, pmu: &str, terms: &str, name: &str) -> Result<EventSpec, EventError> {
    let found = Pmu::open(root, pmu).ok_or_else(|| EventError::UnknownPmu {
        pmu: pmu.to_string(),
        event: name.to_string(),
        root: root.display().to_string(),
    })?;
    let config = found.encode(terms)?;
    Ok(EventSpec {
        config1: config.config1,
        config2: config.config2,
        ..spec(name, found.kind, config.config)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{flag, sample};

    fn sources(pmu_root: &Path, tracefs: Option<&Path>) -> EventSources {
        EventSources {
            pmu_root: pmu_root.to_path_buf(),
            tracefs: tracefs.map(Path::to_path_buf),
        }
    }

    fn fake_tracefs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (event, id) in [
            ("sched/sched_switch", 372),
            ("sched/sched_process_exec", 365),
        ] {
            let path = dir.path().join("events").join(event);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("id"), format!("{id}\n")).unwrap();
            std::fs::write(path.join("format"), format!("name: x\nID: {id}\n")).unwrap();
        }
        dir
    }

    fn parse(lists: &[&str]) -> Result<Vec<EventGroup>, EventError> {
        let sysfs = super::super::pmu::tests::fake_sysfs();
        let tracefs = fake_tracefs();
        let lists: Vec<String> = lists.iter().map(|s| s.to_string()).collect();
        parse_event_list_in(&lists, &sources(sysfs.path(), Some(tracefs.path())))
    }

    fn one(text: &str) -> EventSpec {
        let groups = parse(&[text]).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(groups.len(), 1, "{text}");
        groups[0].events[0].clone()
    }

    /// (type, config, config1, config2)
    type Encoding = (u32, u64, u64, u64);

    fn encoding(e: &EventSpec) -> Encoding {
        (e.kind, e.config, e.config1, e.config2)
    }

    #[test]
    fn every_family_encodes_to_the_kernel_abi_values() {
        let expect: &[(&str, Encoding)] = &[
            ("cpu-clock", (1, 0, 0, 0)),
            ("page-faults", (1, 2, 0, 0)),
            ("cs", (1, 3, 0, 0)),
            ("cycles", (0, 0, 0, 0)),
            ("instructions", (0, 1, 0, 0)),
            ("ref-cycles", (0, 9, 0, 0)),
            ("L1-dcache-load-misses", (3, 0x10000, 0, 0)),
            ("LLC-loads", (3, 0x2, 0, 0)),
            ("dTLB-load-misses", (3, 0x10003, 0, 0)),
            ("r1c2", (4, 0x1c2, 0, 0)),
            ("rABCDEF0123", (4, 0xabcdef0123, 0, 0)),
            ("cpu/event=0x3c,umask=0x00/", (4, 0x3c, 0, 0)),
            ("cpu/event=0xcd,umask=1,ldlat=3/", (4, 0x1cd, 3, 0)),
            ("cpu/mem-loads/", (4, 0x1cd, 3, 0)),
            ("cpu/frontend=0x11,event=1/", (4, 1, 0, 0x11)),
            ("uncore_imc/event=0x104,umask=3/", (17, 0x1_0000_0304, 0, 0)),
            ("uncore_imc/cas_count_read/", (17, 0x1_0000_0304, 0, 0)),
            ("cas_count_read", (17, 0x1_0000_0304, 0, 0)),
            ("sched:sched_switch", (2, 372, 0, 0)),
        ];
        for (text, want) in expect {
            assert_eq!(encoding(&one(text)), *want, "{text}");
        }
    }

    #[test]
    fn modifiers_exclude_the_levels_not_named_and_set_precision() {
        let flags = |text: &str| {
            let e = one(text);
            (e.exclude_user, e.exclude_kernel, e.exclude_hv, e.precise_ip)
        };
        assert_eq!(flags("cycles"), (false, false, false, 0));
        assert_eq!(flags("cycles:u"), (false, true, true, 0));
        assert_eq!(flags("cycles:k"), (true, false, true, 0));
        assert_eq!(flags("cycles:h"), (true, true, false, 0));
        assert_eq!(flags("cycles:uk"), (false, false, true, 0));
        assert_eq!(flags("cycles:p"), (false, false, false, 1));
        assert_eq!(flags("cycles:pp"), (false, false, false, 2));
        assert_eq!(flags("cycles:ppp"), (false, false, false, 3));
        assert_eq!(flags("cycles:upp"), (false, true, true, 2));
        assert_eq!(flags("cpu/event=0x3c/u"), (false, true, true, 0));
        assert_eq!(flags("cpu/event=0x3c/:kp"), (true, false, true, 1));
        assert_eq!(flags("sched:sched_switch:k"), (true, false, true, 0));
        assert_eq!(one("cycles:u").name, "cycles:u");
        let attr = one("instructions:kpp").to_attr();
        assert!(attr.has_flag(flag::EXCLUDE_USER) && !attr.has_flag(flag::EXCLUDE_KERNEL));
        assert_eq!((attr.flags >> flag::PRECISE_IP_SHIFT) & 3, 2);
        let err = parse(&["cycles:pppp"]).unwrap_err().to_string();
        assert!(err.contains("unknown modifier 'p'"), "{err}");
        let err = parse(&["cycles:ux"]).unwrap_err().to_string();
        assert!(err.contains("unknown modifier 'x'"), "{err}");
        let err = parse(&["cpu/event=1/x"]).unwrap_err().to_string();
        assert!(err.contains("unknown modifier 'x'"), "{err}");
    }

    #[test]
    fn lists_groups_and_repeated_flags_keep_order() {
        let groups = parse(&[
            "cycles,{instructions,branch-misses}:u",
            "cpu/event=1,umask=2/,page-faults",
        ])
        .unwrap();
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.events.iter().map(|e| e.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            vec![
                vec!["cycles"],
                vec!["instructions:u", "branch-misses:u"],
                vec!["cpu/event=1,umask=2/"],
                vec!["page-faults"],
            ]
        );
        assert!(groups[1]
            .events
            .iter()
            .all(|e| e.exclude_kernel && !e.exclude_user));
        let flat = EventGroup::flatten(groups);
        let members: Vec<bool> = flat.iter().map(|e| e.group_member).collect();
        assert_eq!(members, vec![false, false, true, false, false]);
        let group = parse(&["{cycles:k,instructions}"]).unwrap();
        assert!(group[0].events[0].exclude_user && !group[0].events[1].exclude_user);
    }

    #[test]
    fn tracepoints_sample_every_hit_and_keep_raw_data() {
        let e = one("sched:sched_process_exec");
        assert_eq!(e.sampling, Sampling::Period(1));
        assert!(e.trace_format.as_deref().unwrap().contains("ID: 365"));
        assert_ne!(e.to_attr().sample_type & sample::RAW, 0);
        assert_eq!(one("page-faults").sampling, Sampling::Frequency(4000));
        assert_eq!(one("page-faults").to_attr().sample_type & sample::RAW, 0);
    }

    #[test]
    fn bad_input_gets_errors_that_say_what_to_do() {
        let cases: &[(&str, &str)] = &[
            ("", "empty event name"),
            ("cycles,,instructions", "empty event name"),
            ("{cycles,instructions", "'{' without '}'"),
            ("cycles}", "'}' without '{'"),
            ("{{cycles}}", "nested"),
            ("{cycles}x", "group is followed"),
            ("cpu/event=1", "closing '/'"),
            ("nosuch/event=1/", "unknown PMU 'nosuch'"),
            ("cpu/bogus=1/", "no term 'bogus'"),
            ("cpu/event=0x100/", "8 bits"),
            ("cyclez", "unknown event 'cyclez'"),
            ("rxyz", "unknown event 'rxyz'"),
            ("sched:nope", "unknown tracepoint 'sched:nope'"),
            ("L1-icache-stores", "unknown event"),
        ];
        for (text, want) in cases {
            let err = parse(&[text]).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let sysfs = super::super::pmu::tests::fake_sysfs();
        let err = parse_event_list_in(&["sched:sched_switch".into()], &sources(sysfs.path(), None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mount -t tracefs nodev /sys/kernel/tracing"),
            "{err}"
        );
    }

    #[test]
    fn unknown_names_never_panic() {
        for text in [
            "/", "//", ":", "::", "a:b:c:d", "{}", "{,}", "r", "ü", "cpu//", "{a}:",
        ] {
            let _ = parse(&[text]);
        }
        assert_eq!(encoding(&one("cpu//")), (4, 0, 0, 0));
    }

    #[test]
    fn config_terms_set_the_events_own_period_frequency_and_name() {
        let clock = one("cpu-clock/period=100000/");
        assert_eq!(encoding(&clock), (1, 0, 0, 0));
        assert_eq!(clock.own_sampling, Some(Sampling::Period(100_000)));
        assert_eq!(clock.name, "cpu-clock/period=100000/");
        let faults = one("page-faults/freq=10/u");
        assert_eq!(faults.own_sampling, Some(Sampling::Frequency(10)));
        assert!(faults.exclude_kernel && !faults.exclude_user);
        // Mixed with format terms: those still place bits; name= renames.
        let pmu = one("cpu/event=0x3c,umask=1,period=0x10000,name=cycles_ring/");
        assert_eq!(encoding(&pmu), (4, 0x13c, 0, 0));
        assert_eq!(pmu.own_sampling, Some(Sampling::Period(0x10000)));
        assert_eq!(pmu.name, "cycles_ring");
        let trace = one("sched:sched_switch/period=2/");
        assert_eq!(trace.kind, event_type::TRACEPOINT);
        assert_eq!(trace.own_sampling, Some(Sampling::Period(2)));
        // Without terms nothing is the event's own.
        assert_eq!(one("cpu-clock").own_sampling, None);
        for (text, want) in [
            ("cpu-clock/period=0/", "from 1 to 2^63-1"),
            ("cpu-clock/freq=x/", "from 1 to 2^63-1"),
            ("cpu-clock/period=1,freq=2/", "repeats period/freq"),
            ("cpu-clock/call-graph=dwarf/", "-g or --call-graph"),
            ("cpu-clock/name=/", "needs a name"),
            ("cpu-clock/event=1/", "unknown PMU 'cpu-clock'"),
        ] {
            let err = parse(&[text]).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn tracepoint_wildcards_open_every_match() {
        let groups = parse(&["sched:*"]).unwrap();
        let names: Vec<&str> = groups
            .iter()
            .map(|g| {
                assert_eq!(g.events.len(), 1, "each match is a group of its own");
                g.events[0].name.as_str()
            })
            .collect();
        assert_eq!(names, ["sched:sched_process_exec", "sched:sched_switch"]);
        assert_eq!(groups[1].events[0].config, 372);
        let grouped = parse(&["{sched:sched_s*}:k"]).unwrap();
        assert_eq!(grouped.len(), 1);
        assert_eq!(grouped[0].events[0].name, "sched:sched_switch:k");
        assert!(grouped[0].events[0].exclude_user);
        let one_of = parse(&["*:sched_process_ex?c:u"]).unwrap();
        assert_eq!(one_of[0].events[0].name, "sched:sched_process_exec:u");
        let err = parse(&["sched:nothing*"]).unwrap_err().to_string();
        assert!(
            err.contains("no tracepoint matches 'sched:nothing*'"),
            "{err}"
        );
        let err = parse(&["sched:*/name=x/"]).unwrap_err().to_string();
        assert!(err.contains("matches several"), "{err}");
        // Case matters, as in tracefs.
        assert!(parse(&["SCHED:*"]).is_err());
    }
}
