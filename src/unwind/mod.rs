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

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::abi::context;
use crate::perfdata::records::{CpuMode, Sample, UserRegs, REGS_ABI_64};
use crate::process::{ModuleId, ModuleRef, ProcessModel};
use dwarf::{
    Completion, MappedModule, ModuleUnwindInfo, ProcessUnwinder, UnwindCache, UnwoundFrame,
    UserStack,
};

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

/// User frames from copied registers and stacks: one framehop unwinder per
/// process, built lazily from the process model's mappings at the time of
/// the sample, and one rule cache for all of them. Each module's sections
/// are loaded once.
pub struct StackUnwinder {
    source: Box<dyn UnwindInfoSource>,
    infos: FxHashMap<ModuleId, Option<Arc<ModuleUnwindInfo>>>,
    /// pid -> (the mappings' generation it was built for, its unwinder).
    processes: FxHashMap<u32, (u64, ProcessUnwinder)>,
    cache: UnwindCache,
    addrs: Vec<UnwoundFrame>,
}

impl StackUnwinder {
    /// Modules unwound without CFI because their sections could not be
    /// loaded, and why.
    pub fn problems(&self) -> &[(String, String)] {
        self.source.problems()
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

    /// Appends the user frames of `sample` of process `pid` to `out`: the
    /// sampled user IP, then return addresses, then [`RawFrame::TRUNCATED`]
    /// if the walk stopped short. `None` (nothing appended) when the sample
    /// carries no usable 64-bit user registers.
    pub fn user_frames(
        &mut self,
        model: &ProcessModel,
        pid: u32,
        regs: &UserRegs<'_>,
        stack: &[u8],
        out: &mut Vec<RawFrame>,
    ) -> Option<Completion> {
        if regs.abi != REGS_ABI_64 {
            return None;
        }
        let stack = UserStack {
            ip: regs.get(dwarf::x86_reg::IP)?,
            sp: regs.get(dwarf::x86_reg::SP)?,
            bp: regs.get(dwarf::x86_reg::BP).unwrap_or(0),
            stack,
        };
        let generation = model.mappings_generation(pid);
        let stale = !matches!(self.processes.get(&pid), Some((built, _)) if *built == generation);
        if stale {
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
            entry.1.set_modules(modules);
            entry.0 = generation;
        }
        let (_, unwinder) = self.processes.get(&pid)?;
        let is_code = |addr: u64| model.is_mapped(pid, addr);
        let done = unwinder.unwind(&mut self.cache, &stack, is_code, &mut self.addrs);
        out.extend(self.addrs.iter().map(|frame| RawFrame {
            addr: frame.addr,
            space: Space::User,
            is_return_address: frame.is_return_address,
        }));
        if done == Completion::Truncated {
            out.push(RawFrame::TRUNCATED);
        }
        Some(done)
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
    fn an_exited_process_unwinder_is_dropped() {
        let mut unwinder = StackUnwinder::new(Box::new(NoUnwindInfo));
        unwinder
            .processes
            .insert(7, (1, ProcessUnwinder::default()));
        unwinder
            .processes
            .insert(8, (1, ProcessUnwinder::default()));
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
