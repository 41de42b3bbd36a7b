//! The process model: which threads belong to which process, what each is
//! called, and what is mapped where, as the records replay in time order.
//! Pure: it never reads /proc; everything comes from the recording.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::rc::Rc;

use crate::aggregate::MappingRange;
use crate::perfdata::records::{CpuMode, Mmap, Record};
use crate::unwind::{RawFrame, Space};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModuleKind {
    /// An ELF file (executable, shared library, vdso).
    Elf,
    /// The kernel and its modules, via kallsyms.
    Kernel,
    /// A JIT map, `/tmp/perf-PID.map`.
    Jit,
    /// Not code: a marker frame named by its path (`[truncated]`).
    Marker,
}

/// What a module is and where to find it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleRef {
    pub kind: ModuleKind,
    /// Path as the process saw it (mmap file name), `[kernel.kallsyms]`,
    /// `[vdso]`, or `/tmp/perf-PID.map`.
    pub path: String,
    pub build_id: Option<Vec<u8>>,
    /// A process that mapped it: used to read `/proc/PID/root/PATH` (binaries
    /// of containerised targets) and `[vdso]` from `/proc/PID/mem`... while it lives.
    pub pid: Option<u32>,
}

/// Index into [`ProcessModel::modules`].
pub type ModuleId = u32;

/// An executable mapping in a process (AVMA range -> file offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapping {
    end: u64,
    pgoff: u64,
    module: ModuleId,
}

#[derive(Debug, Default, Clone)]
struct Process {
    /// Keyed by start address.
    mappings: BTreeMap<u64, Mapping>,
    /// Changes whenever `mappings` do (unique across processes), so what
    /// was built from them (an unwinder) knows when to catch up.
    generation: u64,
}

/// A frame located in a module: what the symbolizer is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleAddr {
    pub module: ModuleId,
    /// File offset for ELF modules; raw address for kernel and JIT.
    pub addr: u64,
}

/// The path the kernel module is stored under in symbol tables.
pub const KERNEL_MODULE_PATH: &str = "[kernel.kallsyms]";

/// The marker frame that ends a stack the unwinder could not complete.
pub const TRUNCATED_FRAME: &str = "[truncated]";

#[derive(Debug, Default)]
pub struct ProcessModel {
    processes: HashMap<u32, Process>,
    /// tid -> comm
    /// Shared strings: every sample asks for its thread's name.
    comms: HashMap<u32, Rc<str>>,
    /// tid -> pid
    thread_pid: HashMap<u32, u32>,
    modules: Vec<ModuleRef>,
    /// Where each module was first mapped (ELF modules only).
    first_mappings: Vec<Option<MappingRange>>,
    /// Interned by what identifies the file, not by which process mapped
    /// it, so a library shared by many processes is symbolized once.
    module_ids: HashMap<(ModuleKind, String, Option<Vec<u8>>), ModuleId>,
    kernel: Option<ModuleId>,
    /// The last mapping generation handed out.
    generations: u64,
    /// Build ids the file's header lists (HEADER_BUILD_ID), by path: for
    /// mappings whose records carry none (perf asks the kernel for none).
    recorded_build_ids: HashMap<String, Vec<u8>>,
}

impl ProcessModel {
    pub fn new() -> ProcessModel {
        ProcessModel::default()
    }

    /// Gives file mappings without a build id of their own the one the
    /// recording's header lists for their path, so binaries are checked
    /// against (and found by) the build that ran.
    pub fn set_recorded_build_ids<'a>(
        &mut self,
        build_ids: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) {
        self.recorded_build_ids = build_ids
            .into_iter()
            .filter(|(path, id)| path.starts_with('/') && id.iter().any(|&b| b != 0))
            .map(|(path, id)| (path.to_string(), id.to_vec()))
            .collect();
    }

    pub fn modules(&self) -> &[ModuleRef] {
        &self.modules
    }

    pub fn module(&self, id: ModuleId) -> &ModuleRef {
        &self.modules[id as usize]
    }

    /// Where a module was first mapped; None for the kernel and JIT code.
    pub fn first_mapping(&self, id: ModuleId) -> Option<MappingRange> {
        self.first_mappings.get(id as usize).copied().flatten()
    }

    fn intern(&mut self, module: ModuleRef) -> ModuleId {
        let key = (module.kind, module.path.clone(), module.build_id.clone());
        if let Some(&id) = self.module_ids.get(&key) {
            return id;
        }
        let id = self.modules.len() as ModuleId;
        self.module_ids.insert(key, id);
        self.modules.push(module);
        self.first_mappings.push(None);
        id
    }

    /// Applies one record. Samples are ignored (see [`ProcessModel::locate`]).
    pub fn apply(&mut self, record: &Record<'_>) {
        match record {
            Record::Comm(c) => {
                if c.exec {
                    // exec replaces the address space; the new image's mmaps follow.
                    let generation = self.next_generation();
                    self.processes.insert(
                        c.pid,
                        Process {
                            generation,
                            ..Process::default()
                        },
                    );
                }
                self.comms.insert(c.tid, Rc::from(c.comm.as_str()));
                self.thread_pid.insert(c.tid, c.pid);
            }
            Record::Fork(t) => {
                self.thread_pid.insert(t.tid, t.pid);
                // A new thread starts with its parent's name (a reused tid
                // must not keep the name of the thread that had it before).
                if let Some(parent_comm) = self.comms.get(&t.ptid).cloned() {
                    self.comms.insert(t.tid, parent_comm);
                }
                if t.pid != t.ppid {
                    // A new process starts with a copy of its parent's address space.
                    let mut child = self.processes.get(&t.ppid).cloned().unwrap_or_default();
                    child.generation = self.next_generation();
                    self.processes.insert(t.pid, child);
                }
            }
            Record::Mmap(m) => self.add_mmap(m),
            _ => {}
        }
    }

    fn add_mmap(&mut self, m: &Mmap) {
        // Data mappings (perf's `-d`, and DWARF-mode recordings, which ask
        // for them so that perf's unwinder finds each file's headers) hold
        // no code: they name nothing a sample runs in.
        if m.len == 0 || !m.is_code() {
            return;
        }
        if m.cpumode == CpuMode::Kernel || m.pid == u32::MAX {
            // `[kernel.kallsyms]_text` and kernel modules: named via kallsyms.
            let id = self.kernel_module();
            self.kernel = Some(id);
            return;
        }
        let mut module = elf_or_jit_module(m);
        if module.kind == ModuleKind::Elf && module.build_id.is_none() {
            module.build_id = self.recorded_build_ids.get(&module.path).cloned();
        }
        let module = self.intern(module);
        let start = m.start;
        let end = m.start.saturating_add(m.len);
        if self.modules[module as usize].kind == ModuleKind::Elf {
            self.first_mappings[module as usize].get_or_insert(MappingRange {
                start,
                limit: end,
                offset: m.pgoff,
            });
        }
        let generation = self.next_generation();
        let process = self.processes.entry(m.pid).or_default();
        process.generation = generation;
        // A new mapping replaces whatever it overlaps (mmap semantics).
        let overlapping: Vec<u64> = process
            .mappings
            .range(..end)
            .rev()
            .take_while(|(_, old)| old.end > start)
            .map(|(&s, _)| s)
            .collect();
        for s in overlapping {
            process.mappings.remove(&s);
        }
        process.mappings.insert(
            start,
            Mapping {
                end,
                pgoff: m.pgoff,
                module,
            },
        );
    }

    fn next_generation(&mut self) -> u64 {
        self.generations += 1;
        self.generations
    }

    /// Changes whenever the mappings of `pid` do; 0 for a process without any.
    pub fn mappings_generation(&self, pid: u32) -> u64 {
        self.processes.get(&pid).map_or(0, |p| p.generation)
    }

    /// The ELF mappings of `pid` now: (AVMA range, file offset, module).
    pub fn mappings(&self, pid: u32) -> impl Iterator<Item = (Range<u64>, u64, ModuleId)> + '_ {
        self.processes
            .get(&pid)
            .into_iter()
            .flat_map(|p| p.mappings.iter())
            .filter(|(_, m)| self.modules[m.module as usize].kind == ModuleKind::Elf)
            .map(|(&start, m)| (start..m.end, m.pgoff, m.module))
    }

    /// Every executable mapping of `pid` (files and JIT code), by start.
    pub fn code_ranges(&self, pid: u32) -> impl Iterator<Item = Range<u64>> + '_ {
        self.processes
            .get(&pid)
            .into_iter()
            .flat_map(|p| p.mappings.iter())
            .map(|(&start, m)| start..m.end)
    }

    fn kernel_module(&mut self) -> ModuleId {
        if let Some(id) = self.kernel {
            return id;
        }
        let id = self.intern(ModuleRef {
            kind: ModuleKind::Kernel,
            path: KERNEL_MODULE_PATH.to_string(),
            build_id: None,
            pid: None,
        });
        self.kernel = Some(id);
        id
    }

    /// The thread's current name, falling back to its process's, then `:TID`.
    /// The idle task (tid 0) has no COMM record; perf calls it `swapper`.
    pub fn comm(&self, pid: u32, tid: u32) -> Rc<str> {
        match self.comms.get(&tid).or_else(|| self.comms.get(&pid)) {
            Some(comm) => Rc::clone(comm),
            None if tid == 0 => Rc::from("swapper"),
            None => Rc::from(format!(":{tid}")),
        }
    }

    /// Finds the module and module-relative address of a frame of `pid`.
    /// User addresses outside every file mapping go to the process's JIT map
    /// (`/tmp/perf-PID.map`), which the symbolizer reads if it exists.
    pub fn locate(&mut self, pid: u32, frame: &RawFrame) -> ModuleAddr {
        let addr = frame.lookup_addr();
        match frame.space {
            Space::Kernel => {
                return ModuleAddr {
                    module: self.kernel_module(),
                    addr,
                }
            }
            Space::Truncated => {
                return ModuleAddr {
                    module: self.intern(ModuleRef {
                        kind: ModuleKind::Marker,
                        path: TRUNCATED_FRAME.to_string(),
                        build_id: None,
                        pid: None,
                    }),
                    addr: 0,
                }
            }
            Space::User => {}
        }
        let found = self.processes.get(&pid).and_then(|p| {
            p.mappings
                .range(..=addr)
                .next_back()
                .filter(|(_, m)| addr < m.end)
                .map(|(&start, m)| (start, *m))
        });
        match found {
            Some((start, m)) if self.modules[m.module as usize].kind == ModuleKind::Elf => {
                ModuleAddr {
                    module: m.module,
                    addr: (addr - start).wrapping_add(m.pgoff),
                }
            }
            Some((_, m)) => ModuleAddr {
                module: m.module,
                addr,
            },
            None => ModuleAddr {
                module: self.intern(jit_module(pid)),
                addr,
            },
        }
    }
}

fn jit_module(pid: u32) -> ModuleRef {
    ModuleRef {
        kind: ModuleKind::Jit,
        path: format!("/tmp/perf-{pid}.map"),
        build_id: None,
        pid: Some(pid),
    }
}

/// File-backed mappings and `[vdso]` are ELF images; anonymous memory
/// (`//anon`, `[anon:...]`, memfds of JITs) is looked up in the JIT map.
fn elf_or_jit_module(m: &Mmap) -> ModuleRef {
    let name = m.filename.as_str();
    let is_file =
        name.starts_with('/') && !name.starts_with("//anon") && !name.starts_with("/memfd:");
    if is_file || name == "[vdso]" {
        ModuleRef {
            kind: ModuleKind::Elf,
            path: name.to_string(),
            build_id: m.build_id.clone(),
            pid: Some(m.pid),
        }
    } else {
        jit_module(m.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perfdata::records::{Comm, TaskEvent};

    fn mmap(pid: u32, start: u64, len: u64, pgoff: u64, name: &str) -> Record<'static> {
        Record::Mmap(Mmap {
            cpumode: CpuMode::User,
            pid,
            tid: pid,
            start,
            len,
            pgoff,
            filename: name.to_string(),
            prot: crate::perfdata::records::PROT_READ | crate::perfdata::records::PROT_EXEC,
            ..Mmap::default()
        })
    }

    fn user(addr: u64, is_return_address: bool) -> RawFrame {
        RawFrame {
            addr,
            space: Space::User,
            is_return_address,
        }
    }

    #[test]
    fn header_build_ids_fill_in_for_mappings_without_one() {
        let mut model = ProcessModel::new();
        model
            .set_recorded_build_ids([("/usr/bin/app", &[7u8; 20][..]), ("[vdso]", &[1u8; 20][..])]);
        model.apply(&mmap(10, 0x40_0000, 0x1000, 0, "/usr/bin/app"));
        model.apply(&mmap(10, 0x50_0000, 0x1000, 0, "/usr/lib/other.so"));
        let ids: Vec<_> = model.modules().iter().map(|m| m.build_id.clone()).collect();
        assert_eq!(ids, [Some(vec![7u8; 20]), None]);
    }

    #[test]
    fn user_address_maps_to_file_offset() {
        let mut model = ProcessModel::new();
        model.apply(&mmap(10, 0x40_0000, 0x1000, 0x2000, "/bin/app"));
        let located = model.locate(10, &user(0x40_0010, false));
        assert_eq!(model.module(located.module).path, "/bin/app");
        assert_eq!(located.addr, 0x2010);
        // Return addresses are looked up minus one.
        assert_eq!(model.locate(10, &user(0x40_0010, true)).addr, 0x200f);
    }

    #[test]
    fn later_mapping_replaces_overlapped_one() {
        let mut model = ProcessModel::new();
        model.apply(&mmap(10, 0x1000, 0x3000, 0, "/lib/old.so"));
        model.apply(&mmap(10, 0x2000, 0x1000, 0, "/lib/new.so"));
        let at = model.locate(10, &user(0x2800, false));
        assert_eq!(model.module(at.module).path, "/lib/new.so");
        // The old mapping is gone entirely (not split), so its tail is unknown: JIT map.
        let tail = model.locate(10, &user(0x3800, false));
        assert_eq!(model.module(tail.module).kind, ModuleKind::Jit);
    }

    #[test]
    fn forked_child_inherits_mappings_and_exec_clears_them() {
        let mut model = ProcessModel::new();
        model.apply(&mmap(10, 0x1000, 0x1000, 0, "/bin/parent"));
        model.apply(&Record::Fork(TaskEvent {
            pid: 11,
            ppid: 10,
            tid: 11,
            ptid: 10,
            ..TaskEvent::default()
        }));
        let at = model.locate(11, &user(0x1100, false));
        assert_eq!(model.module(at.module).path, "/bin/parent");
        model.apply(&Record::Comm(Comm {
            pid: 11,
            tid: 11,
            comm: "child".into(),
            exec: true,
            ..Comm::default()
        }));
        model.apply(&mmap(11, 0x5000, 0x1000, 0, "/bin/child"));
        assert_eq!(&*model.comm(11, 11), "child");
        let at = model.locate(11, &user(0x5004, false));
        assert_eq!(model.module(at.module).path, "/bin/child");
        let gone = model.locate(11, &user(0x1100, false));
        assert_eq!(model.module(gone.module).kind, ModuleKind::Jit);
    }

    #[test]
    fn idle_task_is_called_swapper_and_unknown_threads_by_tid() {
        let model = ProcessModel::new();
        assert_eq!(&*model.comm(0, 0), "swapper");
        assert_eq!(&*model.comm(42, 43), ":43");
    }

    #[test]
    fn kernel_frames_go_to_kallsyms_with_raw_address() {
        let mut model = ProcessModel::new();
        let f = RawFrame {
            addr: 0xffff_ffff_8100_0000,
            space: Space::Kernel,
            is_return_address: false,
        };
        let at = model.locate(1, &f);
        assert_eq!(model.module(at.module).kind, ModuleKind::Kernel);
        assert_eq!(at.addr, 0xffff_ffff_8100_0000);
    }
}
