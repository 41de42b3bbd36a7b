//! Unwinding: turns a sample into its frames, leaf first.
//!
//! In frame-pointer mode the kernel walks the stacks and hands us a call chain
//! with `PERF_CONTEXT_*` markers between the kernel and the user part; this
//! stage splits it, drops the markers, and says which addresses are return
//! addresses (looked up minus one so they land in the call instruction).
//!
//! In DWARF mode (`perf record --call-graph dwarf`) the call chain holds only
//! the kernel part; the user part is unwound here from the copied registers
//! and stack with the modules' CFI ([`dwarf`], on framehop). A stack that
//! cannot be completed ends with a [`RawFrame::TRUNCATED`] frame.
//! Pure: no OS access; module sections come from an [`UnwindInfoSource`].

pub mod dwarf;

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use rustc_hash::FxHashMap;

use crate::abi::context;
use crate::perfdata::records::{CpuMode, Sample, REGS_ABI_64};
use crate::process::{ModuleId, ModuleRef, ProcessModel};
use dwarf::{
    Completion, MappedModule, ModuleUnwindInfo, ProcessUnwinder, UnwindCache, UnwoundFrame,
    UserStack,
};

/// In a recording whose user stacks `rprof record` unwound, the last
/// address of a stack it could not complete. Never code (the first page is
/// never mapped); perf shows it as `[unknown]`.
pub const TRUNCATED_MARK: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    Kernel,
    User,
    /// Not an address: the mark of a stack the unwinder could not complete.
    Truncated,
}

/// One frame as sampled: an address in the process (AVMA) and its space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame {
    pub addr: u64,
    pub space: Space,
    /// True for caller frames: the address is where the call returns to.
    pub is_return_address: bool,
}

impl RawFrame {
    /// The outermost frame of a stack cut short: shown as `[truncated]`.
    pub const TRUNCATED: RawFrame = RawFrame {
        addr: 0,
        space: Space::Truncated,
        is_return_address: false,
    };

    /// The address to symbolize: return addresses minus one, so the lookup
    /// lands inside the call instruction (and its inline context).
    pub fn lookup_addr(&self) -> u64 {
        if self.is_return_address {
            self.addr.saturating_sub(1)
        } else {
            self.addr
        }
    }
}

/// The frames of a sample, leaf first. Without a call chain it is the
/// sampled IP alone, in the space the sample's cpumode says.
pub fn frames(sample: &Sample<'_>) -> Vec<RawFrame> {
    let mut out = Vec::with_capacity(sample.callchain.len().max(1));
    frames_into(sample, &mut out);
    out
}

/// As [`frames`], reusing `out` (cleared first) to spare an allocation per sample.
pub fn frames_into(sample: &Sample<'_>, out: &mut Vec<RawFrame>) {
    out.clear();
    let default_space = match sample.cpumode {
        CpuMode::Kernel | CpuMode::GuestKernel | CpuMode::Hypervisor => Space::Kernel,
        _ => Space::User,
    };
    if sample.callchain.is_empty() {
        out.push(RawFrame {
            addr: sample.ip,
            space: default_space,
            is_return_address: false,
        });
        return;
    }
    let mut space = default_space;
    // The first address after a context marker is where that context was
    // interrupted (a real PC); the ones after it are return addresses.
    let mut first_in_context = true;
    for &addr in sample.callchain.iter() {
        if addr >= context::MAX {
            space = match addr {
                context::KERNEL | context::GUEST_KERNEL | context::HV => Space::Kernel,
                _ => Space::User,
            };
            first_in_context = true;
            continue;
        }
        out.push(RawFrame {
            addr,
            space,
            is_return_address: !first_in_context,
        });
        first_in_context = false;
    }
    if out.is_empty() {
        out.push(RawFrame {
            addr: sample.ip,
            space: default_space,
            is_return_address: false,
        });
    }
}

/// Where the unwind sections of a module come from (the symbolizer's file
/// loading in a report, fixture bytes in tests). `None`: no usable file.
pub trait UnwindInfoSource {
    fn load(&mut self, module: &ModuleRef) -> Option<Arc<ModuleUnwindInfo>>;

    /// Modules whose sections could not be had, and why (for the report).
    fn problems(&self) -> &[(String, String)] {
        &[]
    }
}

/// No sections at all: only frame-pointer walks within the stack copies.
pub struct NoUnwindInfo;

impl UnwindInfoSource for NoUnwindInfo {
    fn load(&mut self, _module: &ModuleRef) -> Option<Arc<ModuleUnwindInfo>> {
        None
    }
}

/// The register bits perf defines for x86-64 (ax..r15).
const X86_64_REG_BITS: u64 = (1 << 24) - 1;

/// Modules without unwind tables named one by one in warnings.
const SHOWN_PROBLEMS: usize = 5;

/// User frames from copied registers and stacks: one framehop unwinder per
/// process, built lazily from the process model's mappings at the time of
/// the sample, and one rule cache for all of them. Each module's sections
/// are loaded once.
pub struct StackUnwinder {
    source: Box<dyn UnwindInfoSource>,
    infos: FxHashMap<ModuleId, Option<Arc<ModuleUnwindInfo>>>,
    /// pid -> (the mappings' generation it was built for, its unwinder).
    processes: FxHashMap<u32, (u64, Arc<ProcessSnapshot>)>,
    cache: UnwindCache,
    addrs: Vec<UnwoundFrame>,
}

impl StackUnwinder {
    /// Modules unwound without CFI because their sections could not be
    /// loaded, and why.
    pub fn problems(&self) -> &[(String, String)] {
        self.source.problems()
    }

    /// Says which modules' stacks were walked without their CFI, and why:
    /// a binary that is gone or was rebuilt since the recording.
    pub fn warnings(&self) -> Vec<String> {
        let problems = self.problems();
        let mut warnings: Vec<String> = problems
            .iter()
            .take(SHOWN_PROBLEMS)
            .map(|(path, why)| {
                format!(
                    "no unwind tables for {path} ({why}): its DWARF frames were walked by frame \
                     pointer"
                )
            })
            .collect();
        let more = problems.len().saturating_sub(SHOWN_PROBLEMS);
        if more > 0 {
            warnings.push(format!("... and {more} more modules without unwind tables"));
        }
        warnings
    }

    pub fn new(source: Box<dyn UnwindInfoSource>) -> Self {
        StackUnwinder {
            source,
            infos: FxHashMap::default(),
            processes: FxHashMap::default(),
            cache: UnwindCache::default(),
            addrs: Vec::new(),
        }
    }

    /// Drops the unwinder of a process that exited: a long system-wide
    /// recording sees many short-lived processes. (A sample that still
    /// comes for it builds a new one from the process model.)
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    /// The frames of `sample` into `out` (cleared first), leaf first: its
    /// call chain; or, for a sample with copied user registers and stack
    /// (DWARF mode), the kernel part of the chain followed by the user stack
    /// unwound here. Says how that walk ended; `None` when there was none.
    pub fn sample_frames(
        &mut self,
        model: &ProcessModel,
        sample: &Sample<'_>,
        out: &mut Vec<RawFrame>,
    ) -> Option<Completion> {
        let Some(job) = self.job(model, sample) else {
            frames_into(sample, out);
            return None;
        };
        let done = job.run(&mut self.cache, &mut self.addrs);
        with_user_frames(sample, &self.addrs, done, out);
        Some(done)
    }

    /// What unwinding `sample`'s copied user stack needs, taken from the
    /// process model as it stands (the time of the sample): `None` when the
    /// sample has no usable registers (none copied, a 32-bit process, an
    /// aarch64 one).
    pub fn job<'a>(
        &mut self,
        model: &ProcessModel,
        sample: &'a Sample<'_>,
    ) -> Option<UnwindJob<'a>> {
        let regs = sample.user_regs.as_ref()?;
        let chain: &[u64] = &sample.callchain;
        // What the kernel walked of the user stack by frame pointers, if it
        // was asked to: the user PC, then return addresses.
        let kernel_user_chain = chain
            .iter()
            .position(|&a| a == context::USER)
            .map_or(&[][..], |at| &chain[at + 1..]);
        // x86-64's registers only (bits 0-23): an aarch64 recording (its
        // pc is bit 32) keeps its kernel call chain, unwound by nobody here.
        let x86_64_regs = regs.mask & !X86_64_REG_BITS == 0;
        if regs.abi != REGS_ABI_64 || !x86_64_regs {
            return None;
        }
        let stack = UserStack {
            ip: regs.get(dwarf::x86_reg::IP)?,
            sp: regs.get(dwarf::x86_reg::SP)?,
            bp: regs.get(dwarf::x86_reg::BP).unwrap_or(0),
            stack: &sample.user_stack,
        };
        let process = self.process(model, sample.pid);
        Some(UnwindJob {
            process,
            stack,
            kernel_user_chain,
        })
    }

    /// The unwinder of process `pid` for its mappings now: built when they
    /// changed (a snapshot still held by a job is left as it is).
    fn process(&mut self, model: &ProcessModel, pid: u32) -> Arc<ProcessSnapshot> {
        let generation = model.mappings_generation(pid);
        if let Some((built, process)) = self.processes.get(&pid) {
            if *built == generation {
                return Arc::clone(process);
            }
        }
        let modules: Vec<MappedModule> = model
            .mappings(pid)
            .filter_map(|(avma, pgoff, module)| {
                let info = self
                    .infos
                    .entry(module)
                    .or_insert_with(|| self.source.load(model.module(module)))
                    .clone()?;
                Some(MappedModule {
                    name: model.module(module).path.clone(),
                    avma,
                    pgoff,
                    info,
                })
            })
            .collect();
        let entry = self.processes.entry(pid).or_default();
        let snapshot = Arc::make_mut(&mut entry.1);
        snapshot.unwinder.set_modules(modules);
        snapshot.code = model.code_ranges(pid).collect();
        entry.0 = generation;
        Arc::clone(&entry.1)
    }
}

/// One process's unwinder with the code ranges return addresses must fall
/// in, as its mappings stood at some point.
#[derive(Default, Clone)]
struct ProcessSnapshot {
    unwinder: ProcessUnwinder,
    /// Every executable mapping, by start address.
    code: Vec<Range<u64>>,
}

impl ProcessSnapshot {
    fn is_code(&self, addr: u64) -> bool {
        let after = self.code.partition_point(|r| r.start <= addr);
        after > 0 && addr < self.code[after - 1].end
    }
}

/// A user stack to unwind with its process's unwinder at the time of the
/// sample: jobs need nothing else, so a batch runs in parallel.
pub struct UnwindJob<'a> {
    process: Arc<ProcessSnapshot>,
    stack: UserStack<'a>,
    /// The kernel's frame-pointer walk of the same stack (empty unless
    /// recorded): where the stack copy ends first, the walk goes on there.
    kernel_user_chain: &'a [u64],
}

impl UnwindJob<'_> {
    /// The sampled user IP, then the callers' addresses, into `out`.
    pub fn run(&self, cache: &mut UnwindCache, out: &mut Vec<UnwoundFrame>) -> Completion {
        let process = &self.process;
        let is_code = |addr| process.is_code(addr);
        match process.unwinder.unwind(cache, &self.stack, is_code, out) {
            Completion::Truncated => continue_on_chain(out, self.kernel_user_chain, is_code),
            done => done,
        }
    }
}

/// Goes on from a walk cut short (the stack copy ended) along the kernel's
/// frame-pointer chain of the same stack, when that chain is sane: it holds
/// the last address the walk reached, and from there on only code.
/// Without frame pointers the kernel's chain is noise, and holds neither.
fn continue_on_chain(
    out: &mut Vec<UnwoundFrame>,
    chain: &[u64],
    is_code: impl Fn(u64) -> bool,
) -> Completion {
    let Some(last) = out.last() else {
        return Completion::Truncated;
    };
    // The chain's first address is the PC, the others return addresses.
    let Some(at) = chain
        .iter()
        .enumerate()
        .position(|(i, &addr)| addr == last.addr && (i > 0) == last.is_return_address)
    else {
        return Completion::Truncated;
    };
    let rest = &chain[at + 1..];
    if rest.is_empty() || !rest.iter().all(|&addr| is_code(addr)) {
        return Completion::Truncated;
    }
    let room = dwarf::MAX_FRAMES.saturating_sub(out.len());
    out.extend(rest.iter().take(room).map(|&addr| UnwoundFrame {
        addr,
        is_return_address: true,
    }));
    Completion::Complete
}

/// A job's result: user frames (IP first) and how the walk ended.
pub type Unwound = (Vec<UnwoundFrame>, Completion);

/// Runs `jobs` on all cores (each thread with its own rule cache); the
/// results in the same order.
pub fn run_all(jobs: &[Option<UnwindJob<'_>>]) -> Vec<Option<Unwound>> {
    jobs.par_iter()
        .map_init(UnwindCache::default, |cache, job| {
            job.as_ref().map(|job| {
                let mut addrs = Vec::new();
                let done = job.run(cache, &mut addrs);
                (addrs, done)
            })
        })
        .collect()
}

/// `sample`'s frames with its user part replaced by unwound `user`
/// frames (IP first), and a [`RawFrame::TRUNCATED`] frame for a walk cut
/// short.
pub fn with_user_frames(
    sample: &Sample<'_>,
    user: &[UnwoundFrame],
    done: Completion,
    out: &mut Vec<RawFrame>,
) {
    frames_into(sample, out);
    let kernel_frames = out.iter().take_while(|f| f.space == Space::Kernel).count();
    out.truncate(kernel_frames);
    out.extend(user.iter().map(|frame| RawFrame {
        addr: frame.addr,
        space: Space::User,
        is_return_address: frame.is_return_address,
    }));
    if done == Completion::Truncated {
        out.push(RawFrame::TRUNCATED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(callchain: Vec<u64>) -> Sample<'static> {
        Sample {
            ip: 0xffff_ffff_8100_0010,
            cpumode: CpuMode::Kernel,
            callchain: callchain.into(),
            ..Sample::default()
        }
    }

    #[test]
    fn kernel_then_user_chain_is_split_and_markers_dropped() {
        let s = sample(vec![
            context::KERNEL,
            0xffff_ffff_8100_0010,
            0xffff_ffff_8100_0200,
            context::USER,
            0x40_1000,
            0x40_2000,
        ]);
        let f = frames(&s);
        assert_eq!(f.len(), 4);
        assert_eq!((f[0].space, f[0].is_return_address), (Space::Kernel, false));
        assert_eq!((f[1].space, f[1].is_return_address), (Space::Kernel, true));
        // The user PC at the syscall/interrupt point is not a return address.
        assert_eq!((f[2].space, f[2].is_return_address), (Space::User, false));
        assert_eq!((f[3].space, f[3].is_return_address), (Space::User, true));
        assert_eq!(f[3].lookup_addr(), 0x40_1fff);
        assert_eq!(f[2].lookup_addr(), 0x40_1000);
    }

    #[test]
    fn a_cut_walk_goes_on_along_a_sane_kernel_chain_only() {
        let frame = |addr, is_return_address| UnwoundFrame {
            addr,
            is_return_address,
        };
        let walked = vec![frame(0x1000, false), frame(0x2000, true)];
        let is_code = |addr: u64| (0x1000..0x9000).contains(&addr);
        // The chain holds the last frame reached: its callers follow.
        let mut out = walked.clone();
        let chain = [0x1000, 0x2000, 0x3000, 0x4000];
        assert_eq!(
            continue_on_chain(&mut out, &chain, is_code),
            Completion::Complete
        );
        assert_eq!(out[2..], [frame(0x3000, true), frame(0x4000, true)]);
        // Noise (code without frame pointers): the walk stays cut.
        for chain in [
            &[0x1000, 0x5000, 0x6000][..],
            &[0x1000, 0x2000, 0xdead_0000],
            &[],
        ] {
            let mut out = walked.clone();
            assert_eq!(
                continue_on_chain(&mut out, chain, is_code),
                Completion::Truncated
            );
            assert_eq!(out, walked);
        }
        // The PC alone: found as the chain's first address, not a later one.
        let mut out = vec![frame(0x2000, false)];
        assert_eq!(
            continue_on_chain(&mut out, &[0x1000, 0x2000, 0x3000], is_code),
            Completion::Truncated
        );
    }

    #[test]
    fn an_exited_process_unwinder_is_dropped() {
        let mut unwinder = StackUnwinder::new(Box::new(NoUnwindInfo));
        unwinder.processes.insert(7, (1, Arc::default()));
        unwinder.processes.insert(8, (1, Arc::default()));
        unwinder.forget(7);
        assert_eq!(unwinder.processes.keys().collect::<Vec<_>>(), [&8]);
    }

    #[test]
    fn no_callchain_uses_ip_and_cpumode() {
        let mut s = sample(vec![]);
        s.cpumode = CpuMode::User;
        s.ip = 0x1234;
        assert_eq!(
            frames(&s),
            vec![RawFrame {
                addr: 0x1234,
                space: Space::User,
                is_return_address: false
            }]
        );
    }
}
