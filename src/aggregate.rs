//! Aggregation: replays a recording through the process model, interns the
//! located stacks, names them through the symbol table, and produces a
//! [`Profile`]: interned frames and stacks with explicit weights.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use crate::perfdata::{PerfFile, Record};
use crate::process::{ModuleAddr, ModuleId, ProcessModel};
use crate::symbolize::{Frame, ModuleKind, ModuleRef, ModuleRequest, SymbolTable};
use crate::unwind;

/// Which samples to keep (`report --pid/--comm`).
#[derive(Debug, Clone, Default)]
pub struct SampleFilter {
    pub pids: Vec<u32>,
    pub comms: Vec<String>,
}

impl SampleFilter {
    fn accepts(&self, pid: u32, comm: &str) -> bool {
        (self.pids.is_empty() || self.pids.contains(&pid))
            && (self.comms.is_empty() || self.comms.iter().any(|c| c == comm))
    }
}

/// Counts about the recording itself, for report headers.
#[derive(Debug, Clone, Default)]
pub struct RecordingStats {
    pub samples: u64,
    pub weight: u64,
    pub lost: u64,
    pub throttled: u64,
    pub first_time: Option<u64>,
    pub last_time: Option<u64>,
    pub has_callchains: bool,
    /// Samples dropped by the filter.
    pub filtered_out: u64,
}

impl RecordingStats {
    pub fn duration_ns(&self) -> u64 {
        match (self.first_time, self.last_time) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        }
    }
}

/// A stack located in modules but not yet named.
#[derive(Debug, Clone)]
pub struct LocatedStack {
    pub comm: Rc<str>,
    pub pid: u32,
    /// Leaf first.
    pub frames: Box<[ModuleAddr]>,
    pub weight: u64,
    pub samples: u64,
}

/// The result of replaying a file: stacks located in modules.
pub struct Replay {
    pub model: ProcessModel,
    pub stacks: Vec<LocatedStack>,
    pub stats: RecordingStats,
    pub warnings: Vec<String>,
}

/// What makes two samples the same stack: thread name, pid, located frames.
type StackKey = (Rc<str>, u32, Box<[ModuleAddr]>);

/// Replays every record in time order and interns the located stacks.
pub fn replay(file: &PerfFile, filter: &SampleFilter) -> Replay {
    let (records, warnings) = file.sorted_records();
    replay_records(&records, filter, warnings)
}

/// As [`replay`], over records already in time order.
pub fn replay_records(records: &[Record], filter: &SampleFilter, warnings: Vec<String>) -> Replay {
    let mut model = ProcessModel::new();
    let mut stats = RecordingStats::default();
    let mut index: HashMap<StackKey, usize> = HashMap::new();
    let mut stacks: Vec<LocatedStack> = Vec::new();
    let mut raw = Vec::new();
    // perf 6.x writes both the ring's LOST records and, at the end, a
    // LOST_SAMPLES total of the same losses: count the larger, not the sum.
    let (mut lost_in_ring, mut lost_samples) = (0u64, 0u64);
    for record in records {
        match record {
            Record::Sample(sample) => {
                let comm = model.comm(sample.pid, sample.tid);
                if !filter.accepts(sample.pid, &comm) {
                    stats.filtered_out += 1;
                    continue;
                }
                let weight = sample.period.max(1);
                stats.samples += 1;
                // Weights come from the file: saturate rather than overflow.
                stats.weight = stats.weight.saturating_add(weight);
                stats.first_time.get_or_insert(sample.time);
                stats.last_time = Some(sample.time);
                stats.has_callchains |= !sample.callchain.is_empty();
                unwind::frames_into(sample, &mut raw);
                let frames: Box<[ModuleAddr]> =
                    raw.iter().map(|f| model.locate(sample.pid, f)).collect();
                let next = stacks.len();
                let slot = *index.entry((comm, sample.pid, frames)).or_insert_with_key(
                    |(comm, pid, frames)| {
                        stacks.push(LocatedStack {
                            comm: Rc::clone(comm),
                            pid: *pid,
                            frames: frames.clone(),
                            weight: 0,
                            samples: 0,
                        });
                        next
                    },
                );
                stacks[slot].weight = stacks[slot].weight.saturating_add(weight);
                stacks[slot].samples += 1;
            }
            Record::Lost(l) => lost_in_ring = lost_in_ring.saturating_add(l.lost),
            Record::LostSamples(l) => lost_samples = lost_samples.saturating_add(l.lost),
            Record::Throttle(t) if !t.unthrottle => stats.throttled += 1,
            other => model.apply(other),
        }
    }
    stats.lost = lost_in_ring.max(lost_samples);
    Replay {
        model,
        stacks,
        stats,
        warnings,
    }
}

impl Replay {
    /// Unique addresses per module, sorted: what the symbolizer is asked.
    pub fn symbol_requests(&self) -> Vec<ModuleRequest> {
        let mut per_module: BTreeMap<ModuleId, Vec<u64>> = BTreeMap::new();
        for stack in &self.stacks {
            for frame in stack.frames.iter() {
                per_module.entry(frame.module).or_default().push(frame.addr);
            }
        }
        per_module
            .into_iter()
            .map(|(module, mut addrs)| {
                addrs.sort_unstable();
                addrs.dedup();
                ModuleRequest {
                    module: self.model.module(module).clone(),
                    addrs,
                }
            })
            .collect()
    }
}

/// Every unique (module, lookup address) that the file's samples touch,
/// grouped per module: what `record` symbolizes before it exits.
pub fn symbol_requests(file: &PerfFile) -> Vec<ModuleRequest> {
    replay(file, &SampleFilter::default()).symbol_requests()
}

/// Splits the requests into what `embedded` already answers and what is
/// still missing (to be symbolized from this machine's files).
pub fn missing_from(table: &SymbolTable, requests: Vec<ModuleRequest>) -> Vec<ModuleRequest> {
    requests
        .into_iter()
        .filter_map(|mut request| {
            if let Some(id) = table.find_recorded(&request.module) {
                request
                    .addrs
                    .retain(|&addr| table.lookup(id, addr).is_none());
            }
            (!request.addrs.is_empty()).then_some(request)
        })
        .collect()
}

/// What kind of code a frame is in; shown as folded suffixes `_[k]`, `_[j]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeKind {
    User,
    Kernel,
    Jit,
}

/// A named frame. Frames are interned: equal names in equal modules share one id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameInfo {
    /// Function name, or `[module]` when no symbol covers the address.
    pub name: String,
    /// Module file name (`libc.so.6`, `[kernel.kallsyms]`).
    pub module: String,
    pub kind: CodeKind,
    /// Inlined into the frame after it (leaf-first order).
    pub inlined: bool,
    /// False when the name is a placeholder for an unresolved address.
    pub resolved: bool,
}

pub type FrameId = u32;

#[derive(Debug, Clone)]
pub struct Stack {
    pub comm: String,
    pub pid: u32,
    /// Leaf first; inline frames come before the function they were inlined into.
    pub frames: Vec<FrameId>,
    pub weight: u64,
    pub samples: u64,
}

/// Everything an output needs.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub event_name: String,
    /// Unit of `weight` (`ns`, `events`).
    pub unit: String,
    pub frames: Vec<FrameInfo>,
    pub stacks: Vec<Stack>,
    pub stats: RecordingStats,
    pub warnings: Vec<String>,
}

impl Profile {
    pub fn frame(&self, id: FrameId) -> &FrameInfo {
        &self.frames[id as usize]
    }
}

/// Names every located stack through `table` (which must cover the replay's
/// addresses; anything missing is shown as `[module]`).
pub fn build_profile(replay: Replay, table: &SymbolTable, event_name: &str, unit: &str) -> Profile {
    let modules = replay.model.modules();
    let table_ids: Vec<Option<u32>> = modules.iter().map(|m| table.find_recorded(m)).collect();
    let mut interner: HashMap<FrameInfo, FrameId> = HashMap::new();
    let mut frames: Vec<FrameInfo> = Vec::new();
    // Each (module, address) expands to the same frame ids every time.
    let mut expanded: HashMap<ModuleAddr, Vec<FrameId>> = HashMap::new();
    let mut stacks = Vec::with_capacity(replay.stacks.len());
    for located in replay.stacks {
        let mut ids = Vec::with_capacity(located.frames.len());
        for at in located.frames.iter() {
            let expansion = expanded.entry(*at).or_insert_with(|| {
                let module = &modules[at.module as usize];
                let named = table_ids[at.module as usize].and_then(|id| table.lookup(id, at.addr));
                frame_infos(module, named.map(|f| &f[..]))
                    .into_iter()
                    .map(|info| {
                        *interner.entry(info.clone()).or_insert_with(|| {
                            frames.push(info);
                            (frames.len() - 1) as FrameId
                        })
                    })
                    .collect()
            });
            ids.extend_from_slice(expansion);
        }
        stacks.push(Stack {
            comm: located.comm.to_string(),
            pid: located.pid,
            frames: ids,
            weight: located.weight,
            samples: located.samples,
        });
    }
    Profile {
        event_name: event_name.to_string(),
        unit: unit.to_string(),
        frames,
        stacks,
        stats: replay.stats,
        warnings: replay.warnings,
    }
}

/// The short module name shown in reports.
pub fn module_display_name(module: &ModuleRef) -> String {
    match module.kind {
        ModuleKind::Kernel => module.path.clone(),
        ModuleKind::Jit => "[JIT]".to_string(),
        ModuleKind::Elf => {
            let path = module.path.trim_end_matches(" (deleted)");
            Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.to_string())
        }
    }
}

fn frame_infos(module: &ModuleRef, named: Option<&[Frame]>) -> Vec<FrameInfo> {
    let module_name = module_display_name(module);
    let kind = match module.kind {
        ModuleKind::Elf => CodeKind::User,
        ModuleKind::Kernel => CodeKind::Kernel,
        ModuleKind::Jit => CodeKind::Jit,
    };
    // Unresolved addresses outside any file mapping are just unknown (perf's name).
    let unknown_module = if module.kind == ModuleKind::Jit {
        "unknown".to_string()
    } else {
        module_name.clone()
    };
    let unknown = || FrameInfo {
        name: format!("[{unknown_module}]"),
        module: if module.kind == ModuleKind::Jit {
            "[unknown]".to_string()
        } else {
            module_name.clone()
        },
        kind,
        inlined: false,
        resolved: false,
    };
    let Some(named) = named.filter(|f| !f.is_empty()) else {
        return vec![unknown()];
    };
    named
        .iter()
        .map(|frame| match &frame.function {
            Some(function) => FrameInfo {
                name: function.clone(),
                module: module_name.clone(),
                kind,
                inlined: frame.inlined,
                resolved: true,
            },
            None => FrameInfo {
                inlined: frame.inlined,
                ..unknown()
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perfdata::{Lost, Sample};

    fn sample(period: u64) -> Record {
        Record::Sample(Sample {
            ip: 0x1000,
            pid: 1,
            tid: 1,
            period,
            ..Sample::default()
        })
    }

    #[test]
    fn lost_counts_take_the_larger_of_ring_and_final_totals() {
        // perf 6.x: LOST records from the ring, then LOST_SAMPLES with the same total.
        let lost = |n| Lost {
            lost: n,
            ..Lost::default()
        };
        let records = vec![
            Record::Lost(lost(3)),
            Record::Lost(lost(4)),
            Record::LostSamples(lost(7)),
            sample(1),
        ];
        let replay = replay_records(&records, &SampleFilter::default(), Vec::new());
        assert_eq!(replay.stats.lost, 7);
    }

    #[test]
    fn huge_periods_from_a_file_saturate_instead_of_overflowing() {
        let records = vec![sample(u64::MAX - 10), sample(u64::MAX - 10)];
        let replay = replay_records(&records, &SampleFilter::default(), Vec::new());
        assert_eq!(replay.stats.weight, u64::MAX);
        assert_eq!(replay.stacks[0].weight, u64::MAX);
        let profile = build_profile(replay, &SymbolTable::new(), "cpu-clock", "ns");
        let mut out = Vec::new();
        crate::output::Output::write(
            &crate::output::Top::new(Default::default()),
            &profile,
            &mut out,
        )
        .unwrap();
    }

    fn module(kind: ModuleKind, path: &str) -> ModuleRef {
        ModuleRef {
            kind,
            path: path.to_string(),
            build_id: None,
            pid: None,
        }
    }

    #[test]
    fn missing_from_keeps_only_unanswered_addresses() {
        let mut table = SymbolTable::new();
        let app = module(ModuleKind::Elf, "/bin/app");
        let id = table.module_id(&app);
        table.insert(id, 0x10, vec![]);
        let requests = vec![
            ModuleRequest {
                module: app.clone(),
                addrs: vec![0x10, 0x20],
            },
            ModuleRequest {
                module: module(ModuleKind::Kernel, "[kernel.kallsyms]"),
                addrs: vec![1],
            },
        ];
        let missing = missing_from(&table, requests);
        assert_eq!(missing.len(), 2);
        assert_eq!(missing[0].addrs, vec![0x20]);
        assert_eq!(missing[1].addrs, vec![1]);
    }

    #[test]
    fn inline_frames_expand_innermost_first_and_unknowns_name_the_module() {
        let app = module(ModuleKind::Elf, "/usr/bin/app");
        let frames = vec![
            Frame {
                function: Some("inlined_helper".into()),
                file: None,
                line: 3,
                inlined: true,
            },
            Frame {
                function: Some("outer".into()),
                file: None,
                line: 9,
                inlined: false,
            },
        ];
        let infos = frame_infos(&app, Some(&frames));
        assert_eq!(infos.len(), 2);
        assert!(infos[0].inlined && !infos[1].inlined);
        assert_eq!(infos[1].name, "outer");
        let unknown = frame_infos(&app, None);
        assert_eq!(unknown[0].name, "[app]");
        assert!(!unknown[0].resolved);
    }
}
