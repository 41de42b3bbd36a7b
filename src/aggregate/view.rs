//! Named views of a [`Profile`]: one event's stacks as display frames,
//! merged by what is shown (command, pid, names). Top, folded and the flame
//! graph read this; pprof and diff read the model itself.

use std::hash::BuildHasher;
use std::path::Path;
use std::rc::Rc;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::model::{EventId, LocationId, Profile, StackId};
use crate::process::{ModuleKind, ModuleRef};
use crate::symbolize::Frame;

/// Runs of this many unnamed frames or more are folded: the innermost stays
/// (it says where the run starts), the rest become one [`FOLDED_RUN_NAME`]
/// frame. Such runs come from stripped code and wild frame-pointer walks.
pub const FOLD_UNKNOWN_RUN: usize = 3;

/// The frame that stands for a folded run of unnamed frames.
pub const FOLDED_RUN_NAME: &str = "[unknown frames]";

/// What kind of code a frame is in; shown as folded suffixes `_[k]`, `_[j]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeKind {
    User,
    Kernel,
    Jit,
}

/// A frame as displayed. Frames are interned: equal names in equal modules
/// share one id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameInfo {
    /// Function name; for an address nothing names, `module+0xOFFSET` (ELF
    /// file offset) or `0xADDRESS` (kernel, JIT, unmapped memory).
    pub name: String,
    /// Module file name (`libc.so.6`, `[kernel.kallsyms]`).
    pub module: String,
    pub kind: CodeKind,
    /// Inlined into the frame after it (leaf-first order).
    pub inlined: bool,
    /// False when the name is a placeholder for an unnamed address.
    pub resolved: bool,
}

pub type FrameId = u32;

/// One displayed stack of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedStack {
    /// Shared by the stacks of threads with this name.
    pub comm: Rc<str>,
    pub pid: u32,
    /// Leaf first; inline frames come before the function they were inlined
    /// into. Shared by every thread's copy of the same stack.
    pub frames: Rc<[FrameId]>,
    pub weight: u64,
    pub samples: u64,
}

/// One event's stacks, named.
#[derive(Debug, Clone, Default)]
pub struct NamedProfile {
    pub frames: Vec<FrameInfo>,
    pub stacks: Vec<NamedStack>,
}

impl NamedProfile {
    pub fn frame(&self, id: FrameId) -> &FrameInfo {
        &self.frames[id as usize]
    }
}

impl Profile {
    /// One event's samples as named stacks, merged over threads of the same
    /// process and name, and over time.
    pub fn named(&self, event: EventId) -> NamedProfile {
        let mut namer = Namer::new(self);
        let mut index: FxHashMap<(&str, u32, StackId), usize> = FxHashMap::default();
        let mut comms: FxHashMap<&str, Rc<str>> = FxHashMap::default();
        let mut stacks: Vec<NamedStack> = Vec::new();
        for sample in self.samples_of(event) {
            let thread = self.thread(sample.thread);
            let slot = *index
                .entry((thread.comm.as_str(), thread.pid, sample.stack))
                .or_insert_with(|| {
                    let comm = comms
                        .entry(thread.comm.as_str())
                        .or_insert_with(|| Rc::from(thread.comm.as_str()));
                    stacks.push(NamedStack {
                        comm: Rc::clone(comm),
                        pid: thread.pid,
                        frames: namer.stack(sample.stack),
                        weight: 0,
                        samples: 0,
                    });
                    stacks.len() - 1
                });
            let stack = &mut stacks[slot];
            stack.weight = stack.weight.saturating_add(sample.weight);
            stack.samples = stack.samples.saturating_add(sample.count);
        }
        NamedProfile {
            frames: namer.frames,
            stacks,
        }
    }
}

/// Turns locations into interned display frames, each location once.
/// `diff` uses it to name stacks per time bucket.
pub struct Namer<'p> {
    profile: &'p Profile,
    frames: Vec<FrameInfo>,
    /// Ids into `frames`, hashed by the frame: each frame stored once.
    interned: HashTable<FrameId>,
    /// Per location: its display frames' range in `expansions`, once named.
    expanded: Vec<Option<(u32, u32)>>,
    expansions: Vec<FrameId>,
    stacks: FxHashMap<StackId, Rc<[FrameId]>>,
}

impl<'p> Namer<'p> {
    pub fn new(profile: &'p Profile) -> Namer<'p> {
        Namer {
            profile,
            frames: Vec::new(),
            interned: HashTable::new(),
            expanded: vec![None; profile.locations.len()],
            expansions: Vec::new(),
            stacks: FxHashMap::default(),
        }
    }

    fn intern(&mut self, info: FrameInfo) -> FrameId {
        let hash = FxBuildHasher.hash_one(&info);
        let frames = &self.frames;
        if let Some(&id) = self.interned.find(hash, |&id| frames[id as usize] == info) {
            return id;
        }
        let id = self.frames.len() as FrameId;
        self.frames.push(info);
        let frames = &self.frames;
        self.interned
            .insert_unique(hash, id, |&id| FxBuildHasher.hash_one(&frames[id as usize]));
        id
    }

    fn is_named(&self, location: LocationId) -> bool {
        let location = self.profile.location(location);
        let is_marker = self.profile.module(location.module).module.kind == ModuleKind::Marker;
        is_marker || location.frames.iter().any(|f| f.function.is_some())
    }

    fn location(&mut self, id: LocationId, out: &mut Vec<FrameId>) {
        if let Some((start, end)) = self.expanded[id as usize] {
            out.extend_from_slice(&self.expansions[start as usize..end as usize]);
            return;
        }
        let location = self.profile.location(id);
        let module = &self.profile.module(location.module).module;
        let start = self.expansions.len();
        for info in frame_infos(module, location.address, &location.frames) {
            let frame = self.intern(info);
            self.expansions.push(frame);
        }
        out.extend_from_slice(&self.expansions[start..]);
        self.expanded[id as usize] = Some((start as u32, self.expansions.len() as u32));
    }

    /// A display frame named so far.
    pub fn frame(&self, id: FrameId) -> &FrameInfo {
        &self.frames[id as usize]
    }

    /// A stack's display frames, leaf first, with long unnamed runs folded.
    pub fn stack(&mut self, id: StackId) -> Rc<[FrameId]> {
        if let Some(frames) = self.stacks.get(&id) {
            return Rc::clone(frames);
        }
        let locations = self.profile.stack(id);
        let mut out = Vec::with_capacity(locations.len());
        let mut at = 0;
        while at < locations.len() {
            if self.is_named(locations[at]) {
                self.location(locations[at], &mut out);
                at += 1;
                continue;
            }
            let run_end = (at..locations.len())
                .find(|&i| self.is_named(locations[i]))
                .unwrap_or(locations.len());
            self.location(locations[at], &mut out);
            if run_end - at >= FOLD_UNKNOWN_RUN {
                let marker = self.intern(FrameInfo {
                    name: FOLDED_RUN_NAME.to_string(),
                    module: "[unknown]".to_string(),
                    kind: CodeKind::User,
                    inlined: false,
                    resolved: false,
                });
                out.push(marker);
            } else {
                for &location in &locations[at + 1..run_end] {
                    self.location(location, &mut out);
                }
            }
            at = run_end;
        }
        let frames: Rc<[FrameId]> = out.into();
        self.stacks.insert(id, Rc::clone(&frames));
        frames
    }
}

/// The short module name shown in reports.
pub fn module_display_name(module: &ModuleRef) -> String {
    match module.kind {
        ModuleKind::Kernel => module.path.clone(),
        ModuleKind::Jit => "[JIT]".to_string(),
        ModuleKind::Marker => module.path.clone(),
        ModuleKind::Elf => {
            let path = module.path.trim_end_matches(" (deleted)");
            Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.to_string())
        }
    }
}

/// The display frames of one location, innermost first.
pub fn frame_infos(module: &ModuleRef, address: u64, named: &[Frame]) -> Vec<FrameInfo> {
    let module_name = module_display_name(module);
    let kind = match module.kind {
        ModuleKind::Elf => CodeKind::User,
        ModuleKind::Kernel => CodeKind::Kernel,
        ModuleKind::Jit => CodeKind::Jit,
        ModuleKind::Marker => CodeKind::User,
    };
    if module.kind == ModuleKind::Marker {
        // Not an address: the marker is its own name, whatever a table says.
        return vec![FrameInfo {
            name: module.path.clone(),
            module: module_name,
            kind,
            inlined: false,
            resolved: true,
        }];
    }
    // Each unnamed address stays its own frame, so hot spots in stripped
    // code stay apart and can be looked up (`objdump -d`, `addr2line`).
    let unknown = |inlined: bool| match module.kind {
        ModuleKind::Elf => FrameInfo {
            name: format!("{module_name}+{address:#x}"),
            module: module_name.clone(),
            kind,
            inlined,
            resolved: false,
        },
        // Outside any file mapping: perf's `[unknown]`.
        ModuleKind::Jit => FrameInfo {
            name: format!("{address:#x}"),
            module: "[unknown]".to_string(),
            kind,
            inlined,
            resolved: false,
        },
        ModuleKind::Kernel | ModuleKind::Marker => FrameInfo {
            name: format!("{address:#x}"),
            module: module_name.clone(),
            kind,
            inlined,
            resolved: false,
        },
    };
    if named.is_empty() {
        return vec![unknown(false)];
    }
    named
        .iter()
        .map(|frame| match &frame.function {
            Some(function) => FrameInfo {
                name: function.to_string(),
                module: module_name.clone(),
                kind,
                inlined: frame.inlined,
                resolved: true,
            },
            None => unknown(frame.inlined),
        })
        .collect()
}
