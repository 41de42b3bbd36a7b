//! DWARF CFI unwinding of copied user stacks (x86_64), on framehop.
//!
//! Pure: the sampled registers, the copied stack bytes and the unwind
//! sections of the process's modules come in, the sampled IP and the return
//! addresses go out. No OS access: the sections are loaded elsewhere
//! (`symbolize::unwind_info`) and handed over as bytes, so tests drive this
//! on fixture bytes.
//!
//! Address spaces as framehop names them: AVMA is an address in the
//! profiled process, SVMA one stated in the ELF file. A mapping of a file
//! at AVMA `start` from file offset `pgoff` puts SVMA 0 at [`base_avma`].

use std::collections::BTreeMap;
use std::ops::{Deref, Range};
use std::sync::Arc;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};

/// perf's x86 register numbers (`arch/x86/include/uapi/asm/perf_regs.h`).
pub mod x86_reg {
    pub const BP: u32 = 6;
    pub const SP: u32 = 7;
    pub const IP: u32 = 8;
}

/// More frames than this and the stack is cut (and marked truncated): a
/// loop in a corrupt stack must not run forever.
pub const MAX_FRAMES: usize = 1024;

/// Bytes of one section, sharing the image (a mapped file, a copy) that
/// holds them: cloning is cheap, nothing is copied.
#[derive(Clone)]
pub struct SectionBytes {
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
    range: Range<usize>,
}

impl SectionBytes {
    /// `owner[range]`; `None` when the range is not inside it.
    pub fn new(owner: Arc<dyn AsRef<[u8]> + Send + Sync>, range: Range<usize>) -> Option<Self> {
        (*owner).as_ref().get(range.clone())?;
        Some(SectionBytes { owner, range })
    }

    /// Bytes owned outright (tests, small copies).
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let range = 0..bytes.len();
        SectionBytes {
            owner: Arc::new(bytes),
            range,
        }
    }
}

impl Default for SectionBytes {
    fn default() -> Self {
        SectionBytes::from_vec(Vec::new())
    }
}

impl Deref for SectionBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // The range was checked against the owner, which never changes.
        (*self.owner)
            .as_ref()
            .get(self.range.clone())
            .unwrap_or(&[])
    }
}

impl std::fmt::Debug for SectionBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SectionBytes({:?})", self.range)
    }
}

/// A `PT_LOAD` segment: where file offsets land in SVMAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    /// `PF_X`: the segment holds code.
    pub executable: bool,
}

/// What unwinding needs from one ELF image, in the image's own addresses.
#[derive(Debug, Clone)]
pub struct ModuleUnwindInfo {
    /// `.eh_frame`, `.eh_frame_hdr`, `.text`, `.got`.
    pub sections: ExplicitModuleSectionInfo<SectionBytes>,
    pub segments: Vec<LoadSegment>,
    /// `.debug_frame` rules for code `.eh_frame` has none for.
    pub debug_frame_only: Option<DebugFrameOnly>,
}

/// `.debug_frame` (from the image or its separate debug file) for the
/// functions `.eh_frame` does not describe: framehop reads one or the
/// other per module, so these get a second unwinder, asked per frame.
#[derive(Debug, Clone)]
pub struct DebugFrameOnly {
    /// `.debug_frame`, with `.text` and `.got` for its base addresses.
    pub sections: ExplicitModuleSectionInfo<SectionBytes>,
    /// The code (SVMAs, sorted, disjoint) only `.debug_frame` describes.
    pub ranges: Vec<Range<u64>>,
}

impl ModuleUnwindInfo {
    /// The AVMA of SVMA 0 for a mapping at `start` of file offset `pgoff`:
    /// the segment holding `pgoff` (mappings start at page boundaries, so
    /// up to a page before the segment's own offset) says which SVMA lies
    /// at `start`. One file page can hold the end of one segment and the
    /// start of the next (lld packs them: rustc's default linker puts the
    /// read-only segment and the code in one page), so the mapping is taken
    /// for an executable segment first (only code is unwound), then for the
    /// segment that starts in its first page (a segment is mapped from
    /// there).
    pub fn base_avma(&self, start: u64, pgoff: u64) -> Option<u64> {
        const PAGE: u64 = 4096;
        let rank = |s: &LoadSegment| (s.executable, s.offset & !(PAGE - 1) == pgoff);
        let segment = self
            .segments
            .iter()
            .filter(|s| {
                s.offset & !(PAGE - 1) <= pgoff && pgoff < s.offset.saturating_add(s.filesz.max(1))
            })
            // The first of the best: max_by_key would keep the last.
            .fold(None, |best: Option<&LoadSegment>, s| match best {
                Some(b) if rank(b) >= rank(s) => Some(b),
                _ => Some(s),
            })?;
        // svma(start) = vaddr - (offset - pgoff); base = start - svma(start).
        let svma_at_start = segment
            .vaddr
            .wrapping_sub(segment.offset.wrapping_sub(pgoff));
        Some(start.wrapping_sub(svma_at_start))
    }
}

/// A module mapped into a process: one executable mapping of an image.
#[derive(Debug, Clone)]
pub struct MappedModule {
    pub name: String,
    pub avma: Range<u64>,
    pub pgoff: u64,
    pub info: Arc<ModuleUnwindInfo>,
}

/// The rule caches (`.eh_frame`, `.debug_frame`), shared by every
/// process's unwinder (framehop keys its entries by module generation, so
/// unwinders can share them).
#[derive(Default)]
pub struct UnwindCache {
    eh_frame: CacheX86_64,
    debug_frame: CacheX86_64,
}

/// The registers and stack copy of one sample.
#[derive(Debug, Clone, Copy)]
pub struct UserStack<'a> {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// The copied stack, from `sp` up.
    pub stack: &'a [u8],
}

impl UserStack<'_> {
    /// The u64 at `addr`, if the copy holds all 8 bytes of it.
    pub fn read(&self, addr: u64) -> Option<u64> {
        let offset = usize::try_from(addr.checked_sub(self.sp)?).ok()?;
        let bytes = self.stack.get(offset..offset.checked_add(8)?)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// How an unwind ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The CFI (or a zero frame pointer or return address) says the root
    /// frame was reached.
    Complete,
    /// The walk stopped before the root: the copy ended, a return address
    /// was not code, or the stack looped.
    Truncated,
}

/// One address of an unwound stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnwoundFrame {
    pub addr: u64,
    /// Where a call returns to (symbolized minus one). False for the
    /// sampled IP, and for both addresses a signal frame gives: the
    /// sigreturn trampoline (the handler "returns" to its first
    /// instruction, which no call precedes) and the PC the signal
    /// interrupted.
    pub is_return_address: bool,
}

/// x86-64 Linux's rt_sigreturn trampoline, glibc's and musl's
/// `__restore_rt`: `mov $15, %rax; syscall` (gdb and libunwind know signal
/// frames by these bytes too).
const SIGRETURN: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];

/// Where the kernel's signal frame keeps the interrupted registers, from
/// the stack pointer in the trampoline (the handler's return popped the
/// trampoline's address): `struct ucontext` (uc_flags, uc_link, uc_stack:
/// 40 bytes), then `uc_mcontext`: r8..r15, rdi, rsi, rbp, rbx, rdx, rax,
/// rcx, rsp, rip.
const SIGFRAME_RBP: u64 = 40 + 10 * 8;
const SIGFRAME_RSP: u64 = 40 + 15 * 8;
const SIGFRAME_RIP: u64 = 40 + 16 * 8;

/// A module as added: to tell what changed, and to read its code.
#[derive(Clone)]
struct Added {
    end: u64,
    pgoff: u64,
    base_avma: u64,
    info: Arc<ModuleUnwindInfo>,
}

/// One process's unwinder: its modules, kept in step with its mappings.
/// Cloning shares the modules' parsed sections.
#[derive(Default, Clone)]
pub struct ProcessUnwinder {
    unwinder: UnwinderX86_64<SectionBytes>,
    /// The modules' [`DebugFrameOnly`] rules, and the code (AVMAs, sorted)
    /// they are asked for.
    debug_frame: UnwinderX86_64<SectionBytes>,
    debug_frame_code: Vec<Range<u64>>,
    /// start -> what was added there.
    added: BTreeMap<u64, Added>,
}

impl ProcessUnwinder {
    pub fn new() -> Self {
        ProcessUnwinder::default()
    }

    /// Makes the module set `modules`: mappings gone (or changed) are
    /// removed, new ones added; unchanged ones keep their parsed state.
    pub fn set_modules(&mut self, modules: impl IntoIterator<Item = MappedModule>) {
        let wanted: BTreeMap<u64, MappedModule> =
            modules.into_iter().map(|m| (m.avma.start, m)).collect();
        let stale: Vec<u64> = self
            .added
            .iter()
            .filter(|(start, added)| {
                !matches!(wanted.get(start), Some(w) if w.avma.end == added.end
                    && w.pgoff == added.pgoff
                    && Arc::ptr_eq(&w.info, &added.info))
            })
            .map(|(&start, _)| start)
            .collect();
        for start in stale {
            self.unwinder.remove_module(start);
            self.debug_frame.remove_module(start);
            self.added.remove(&start);
        }
        for (start, module) in wanted {
            if self.added.contains_key(&start) {
                continue;
            }
            let Some(base_avma) = module.info.base_avma(start, module.pgoff) else {
                continue;
            };
            if let Some(only) = &module.info.debug_frame_only {
                self.debug_frame.add_module(Module::new(
                    module.name.clone(),
                    module.avma.clone(),
                    base_avma,
                    only.sections.clone(),
                ));
            }
            self.unwinder.add_module(Module::new(
                module.name,
                module.avma.clone(),
                base_avma,
                module.info.sections.clone(),
            ));
            self.added.insert(
                start,
                Added {
                    end: module.avma.end,
                    pgoff: module.pgoff,
                    base_avma,
                    info: module.info,
                },
            );
        }
        self.debug_frame_code = self
            .added
            .values()
            .flat_map(|added| {
                let base = added.base_avma;
                let only = added.info.debug_frame_only.as_ref();
                only.into_iter()
                    .flat_map(|only| only.ranges.iter())
                    .map(move |r| base.wrapping_add(r.start)..base.wrapping_add(r.end))
            })
            .collect();
        self.debug_frame_code.sort_by_key(|r| r.start);
    }

    /// Whether `.debug_frame` rather than `.eh_frame` describes `avma`.
    fn in_debug_frame_code(&self, avma: u64) -> bool {
        let after = self.debug_frame_code.partition_point(|r| r.start <= avma);
        after > 0 && avma < self.debug_frame_code[after - 1].end
    }

    /// Whether the sigreturn trampoline starts at `avma` (read from the
    /// module's `.text`).
    fn is_sigreturn(&self, avma: u64) -> bool {
        let code = || -> Option<bool> {
            let (_, added) = self.added.range(..=avma).next_back()?;
            if avma >= added.end {
                return None;
            }
            let sections = &added.info.sections;
            let text_start = sections.text_svma.as_ref()?.start;
            let offset = avma.checked_sub(added.base_avma)?.checked_sub(text_start)?;
            let offset = usize::try_from(offset).ok()?;
            let text = sections.text.as_deref()?;
            Some(text.get(offset..offset.checked_add(SIGRETURN.len())?)? == SIGRETURN)
        };
        code().unwrap_or(false)
    }

    /// Whether a PC the walk starts from (the sampled IP, or one a signal
    /// interrupted) lies in the sigreturn trampoline: at its start, at its
    /// syscall, or just after it (in the kernel, doing the sigreturn). The
    /// stack pointer is the same at all three.
    fn in_sigreturn(&self, pc: u64) -> bool {
        [0, 7, 9]
            .iter()
            .any(|&back| pc.checked_sub(back).is_some_and(|a| self.is_sigreturn(a)))
    }

    /// Unwinds `stack` into `out` (cleared first): the sampled IP, then
    /// return addresses, caller last. Where there is no CFI (JIT code,
    /// addresses outside every module, functions without FDEs) framehop
    /// follows the frame pointer; every return address must be code by
    /// `is_code`, else the walk went astray and the stack is truncated there.
    /// Signal frames are walked here, not by framehop, which cannot run the
    /// trampoline's CFI (its CFA is loaded from the stack): the walk goes on
    /// from the registers the kernel saved, as from a fresh sample.
    pub fn unwind(
        &self,
        cache: &mut UnwindCache,
        stack: &UserStack<'_>,
        is_code: impl Fn(u64) -> bool,
        out: &mut Vec<UnwoundFrame>,
    ) -> Completion {
        out.clear();
        out.push(UnwoundFrame {
            addr: stack.ip,
            is_return_address: false,
        });
        let mut regs = UnwindRegsX86_64::new(stack.ip, stack.sp, stack.bp);
        let mut read = |addr: u64| stack.read(addr).ok_or(());
        let mut address = FrameAddress::from_instruction_pointer(stack.ip);
        let mut at_sigreturn = self.in_sigreturn(stack.ip);
        while out.len() < MAX_FRAMES {
            if at_sigreturn {
                let saved = |offset: u64| stack.read(regs.sp().checked_add(offset)?);
                let (Some(ip), Some(sp), Some(bp)) = (
                    saved(SIGFRAME_RIP),
                    saved(SIGFRAME_RSP),
                    saved(SIGFRAME_RBP),
                ) else {
                    return Completion::Truncated;
                };
                if !is_code(ip) {
                    return Completion::Truncated;
                }
                out.push(UnwoundFrame {
                    addr: ip,
                    is_return_address: false,
                });
                regs = UnwindRegsX86_64::new(ip, sp, bp);
                address = FrameAddress::from_instruction_pointer(ip);
                at_sigreturn = self.in_sigreturn(ip);
                continue;
            }
            let unwound = if self.in_debug_frame_code(address.address_for_lookup()) {
                self.debug_frame
                    .unwind_frame(address, &mut regs, &mut cache.debug_frame, &mut read)
            } else {
                self.unwinder
                    .unwind_frame(address, &mut regs, &mut cache.eh_frame, &mut read)
            };
            match unwound {
                Ok(None) => return Completion::Complete,
                Ok(Some(return_address)) => {
                    if !is_code(return_address) {
                        return Completion::Truncated;
                    }
                    at_sigreturn = self.is_sigreturn(return_address);
                    out.push(UnwoundFrame {
                        addr: return_address,
                        is_return_address: !at_sigreturn,
                    });
                    match FrameAddress::from_return_address(return_address) {
                        Some(next) => address = next,
                        None => return Completion::Complete,
                    }
                }
                Err(_) => return Completion::Truncated,
            }
        }
        Completion::Truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.eh_frame` bytes by hand: one CIE (CFA = rsp + 8, return address at
    /// CFA - 8, absolute 4-byte pointers) and one FDE per function, each
    /// `(start, len, instructions)`.
    fn eh_frame(functions: &[(u32, u32, &[u8])]) -> Vec<u8> {
        fn entry(out: &mut Vec<u8>, body: &[u8]) {
            let mut body = body.to_vec();
            while (body.len() + 4) % 8 != 0 {
                body.push(0); // DW_CFA_nop
            }
            out.extend((body.len() as u32).to_le_bytes());
            out.extend(body);
        }
        let mut out = Vec::new();
        let cie = [
            0, 0, 0, 0, // CIE id
            1, // version
            b'z', b'R', 0,    // augmentation
            1,    // code alignment
            0x78, // data alignment -8
            16,   // return address register (rip)
            1, 0x03, // augmentation data: FDE pointers are udata4
            0x0c, 7, 8, // DW_CFA_def_cfa rsp+8
            0x90, 1, // DW_CFA_offset rip at cfa-8
        ];
        entry(&mut out, &cie);
        for &(start, len, instructions) in functions {
            let cie_pointer = (out.len() + 4) as u32;
            let mut body = cie_pointer.to_le_bytes().to_vec();
            body.extend(start.to_le_bytes());
            body.extend(len.to_le_bytes());
            body.push(0); // augmentation data length
            body.extend(instructions);
            entry(&mut out, &body);
        }
        out.extend(0u32.to_le_bytes()); // terminator
        out
    }

    /// `sub $0x18, %rsp` at offset 0: from offset 4 the CFA is rsp + 0x20.
    const FRAME_0X20: &[u8] = &[0x44, 0x0e, 0x20];
    /// The root: the return address is undefined (like `_start`).
    const ROOT: &[u8] = &[0x07, 16];

    /// A module at AVMA 0x10000 (file offset 0 = SVMA 0) with functions
    /// a (0x1100), b (0x1200) and the root (0x1300), and a sigreturn
    /// trampoline at 0x1400 (no FDE: the walk must not need one).
    fn unwinder() -> ProcessUnwinder {
        let mut text = vec![0xcc; 0x1000];
        text[0x400..0x409].copy_from_slice(&SIGRETURN);
        let eh = eh_frame(&[
            (0x1100, 0x100, FRAME_0X20),
            (0x1200, 0x100, FRAME_0X20),
            (0x1300, 0x100, ROOT),
        ]);
        let len = eh.len() as u64;
        let info = ModuleUnwindInfo {
            debug_frame_only: None,
            sections: ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: Some(0x1000..0x2000),
                text: Some(SectionBytes::from_vec(text)),
                eh_frame_svma: Some(0x3000..0x3000 + len),
                eh_frame: Some(SectionBytes::from_vec(eh)),
                ..Default::default()
            },
            segments: vec![LoadSegment {
                offset: 0,
                vaddr: 0,
                filesz: 0x4000,
                executable: true,
            }],
        };
        let mut unwinder = ProcessUnwinder::new();
        unwinder.set_modules([MappedModule {
            name: "fixture".into(),
            avma: 0x10000..0x14000,
            pgoff: 0,
            info: Arc::new(info),
        }]);
        unwinder
    }

    const SP: u64 = 0x7fff_0000;

    fn addrs(out: &[UnwoundFrame]) -> Vec<u64> {
        out.iter().map(|f| f.addr).collect()
    }

    /// a's frame (0x20 bytes, return address into b at its top), then b's
    /// (return address into the root).
    fn stack_bytes() -> Vec<u8> {
        let mut words = [0u64; 8];
        words[3] = 0x11250; // a's return address, at CFA - 8 = sp + 0x18
        words[7] = 0x11350; // b's, at sp + 0x20 + 0x18
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn in_module(addr: u64) -> bool {
        (0x10000..0x14000).contains(&addr)
    }

    #[test]
    fn cfi_walk_reaches_the_root() {
        let unwinder = unwinder();
        let bytes = stack_bytes();
        let stack = UserStack {
            ip: 0x11150,
            sp: SP,
            bp: 0xdead, // a general register here: never read
            stack: &bytes,
        };
        let mut out = Vec::new();
        let mut cache = UnwindCache::default();
        let done = unwinder.unwind(&mut cache, &stack, in_module, &mut out);
        assert_eq!(addrs(&out), [0x11150, 0x11250, 0x11350]);
        assert_eq!(done, Completion::Complete);
        // Again, from the rule cache.
        let done = unwinder.unwind(&mut cache, &stack, in_module, &mut out);
        assert_eq!((out.len(), done), (3, Completion::Complete));
    }

    #[test]
    fn stack_copy_ending_early_is_truncated_not_cut() {
        let unwinder = unwinder();
        let bytes = stack_bytes();
        let stack = UserStack {
            ip: 0x11150,
            sp: SP,
            bp: 0,
            stack: &bytes[..0x30], // b's return address is not in the copy
        };
        let mut out = Vec::new();
        let done = unwinder.unwind(&mut UnwindCache::default(), &stack, in_module, &mut out);
        assert_eq!(addrs(&out), [0x11150, 0x11250]);
        assert_eq!(done, Completion::Truncated);
    }

    /// A handler (a) interrupted b at its first instruction: a's return
    /// address is the trampoline, above it the kernel's ucontext with b's
    /// registers; b's frame (just its return address into the root) lies
    /// at the interrupted sp.
    fn signal_stack() -> Vec<u8> {
        let mut words = [0u64; 0x30];
        let word = |addr: u64| ((addr - SP) / 8) as usize;
        words[3] = 0x11400; // a's return address: the trampoline
        let uc = SP + 0x20; // a's CFA
        let interrupted_sp = SP + 0x100;
        words[word(uc + SIGFRAME_RIP)] = 0x11200;
        words[word(uc + SIGFRAME_RSP)] = interrupted_sp;
        words[word(uc + SIGFRAME_RBP)] = 0xdead;
        words[word(interrupted_sp)] = 0x11350;
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn signal_frames_continue_into_the_interrupted_code() {
        let unwinder = unwinder();
        let bytes = signal_stack();
        let stack = UserStack {
            ip: 0x11150,
            sp: SP,
            bp: 0,
            stack: &bytes,
        };
        let mut out = Vec::new();
        let done = unwinder.unwind(&mut UnwindCache::default(), &stack, in_module, &mut out);
        // b's entry is looked up as itself, not minus one (which would be
        // a's CFI): the walk reaches the root.
        assert_eq!(addrs(&out), [0x11150, 0x11400, 0x11200, 0x11350]);
        assert_eq!(done, Completion::Complete);
        let returns: Vec<bool> = out.iter().map(|f| f.is_return_address).collect();
        assert_eq!(returns, [false, false, false, true]);

        // Sampled in the kernel doing the sigreturn: the user IP is just
        // after the trampoline's syscall, sp at the ucontext.
        let stack = UserStack {
            ip: 0x11409,
            sp: SP + 0x20,
            stack: &bytes[0x20..],
            ..stack
        };
        let done = unwinder.unwind(&mut UnwindCache::default(), &stack, in_module, &mut out);
        assert_eq!(
            (addrs(&out), done),
            (vec![0x11409, 0x11200, 0x11350], Completion::Complete)
        );

        // A ucontext cut off by the end of the copy: truncated, not guessed.
        let stack = UserStack {
            ip: 0x11150,
            sp: SP,
            bp: 0,
            stack: &bytes[..0x40],
        };
        let done = unwinder.unwind(&mut UnwindCache::default(), &stack, in_module, &mut out);
        assert_eq!(
            (addrs(&out), done),
            (vec![0x11150, 0x11400], Completion::Truncated)
        );
    }

    #[test]
    fn code_without_cfi_is_walked_by_frame_pointer_if_sane() {
        let unwinder = unwinder();
        // JIT code at 0x9000 with a frame: [bp] = caller's bp, [bp+8] = return into b.
        let mut words = [0u64; 12];
        words[2] = SP + 0x40; // saved bp (into b's frame, unused by b's CFI)
        words[3] = 0x11250; // return address into b
                            // b's CFA = (SP + 0x20) + 0x20: its return address at SP + 0x38
        words[7] = 0x11350;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let stack = UserStack {
            ip: 0x9000,
            sp: SP,
            bp: SP + 0x10,
            stack: &bytes,
        };
        let is_code = |a: u64| in_module(a) || (0x9000..0xa000).contains(&a);
        let mut out = Vec::new();
        let done = unwinder.unwind(&mut UnwindCache::default(), &stack, is_code, &mut out);
        assert_eq!(addrs(&out), [0x9000, 0x11250, 0x11350]);
        assert_eq!(done, Completion::Complete);

        // The same walk where the "return address" is not code: truncated.
        let mut bad = bytes.clone();
        bad[24..32].copy_from_slice(&0x1234u64.to_le_bytes());
        let stack = UserStack {
            stack: &bad,
            ..stack
        };
        let done = unwinder.unwind(&mut UnwindCache::default(), &stack, is_code, &mut out);
        assert_eq!((addrs(&out), done), (vec![0x9000], Completion::Truncated));
    }

    #[test]
    fn base_avma_follows_the_segment_holding_the_mapping() {
        let info = ModuleUnwindInfo {
            sections: ExplicitModuleSectionInfo::default(),
            debug_frame_only: None,
            segments: vec![
                LoadSegment {
                    offset: 0,
                    vaddr: 0x40_0000,
                    filesz: 0x1000,
                    executable: false,
                },
                LoadSegment {
                    offset: 0x1234,
                    vaddr: 0x40_1234,
                    filesz: 0x800,
                    executable: true,
                },
            ],
        };
        // Non-PIE: mapped where it says, base 0.
        assert_eq!(info.base_avma(0x40_1000, 0x1000), Some(0));
        // PIE-style: the same offsets shifted.
        let pie = ModuleUnwindInfo {
            segments: vec![LoadSegment {
                offset: 0x1000,
                vaddr: 0x1000,
                filesz: 0x2000,
                executable: true,
            }],
            ..info.clone()
        };
        assert_eq!(
            pie.base_avma(0x5555_5555_5000, 0x1000),
            Some(0x5555_5555_4000)
        );
        assert_eq!(pie.base_avma(0x5555_5555_5000, 0x9000), None);
    }

    /// lld's layout (rustc's default linker): the read-only segment ends
    /// and the code segment starts in one file page, and the code is
    /// mapped from that page one page further on in memory.
    #[test]
    fn a_page_shared_by_two_segments_is_mapped_for_the_code() {
        let segment = |offset, vaddr, filesz, executable| LoadSegment {
            offset,
            vaddr,
            filesz,
            executable,
        };
        let info = ModuleUnwindInfo {
            sections: ExplicitModuleSectionInfo::default(),
            debug_frame_only: None,
            segments: vec![
                segment(0, 0, 0x16fdc, false),
                segment(0x16fe0, 0x17fe0, 0x3fd70, true),
                segment(0x56d50, 0x58d50, 0x2a40, false),
            ],
        };
        // The code mapping: file page 0x16000 at base + 0x17000.
        let base = 0x5555_5550_0000;
        assert_eq!(info.base_avma(base + 0x17000, 0x16000), Some(base));
        // Without the flags, the segment starting in the page still wins.
        let unflagged = ModuleUnwindInfo {
            segments: info
                .segments
                .iter()
                .map(|s| LoadSegment {
                    executable: false,
                    ..*s
                })
                .collect(),
            ..info.clone()
        };
        assert_eq!(unflagged.base_avma(base + 0x17000, 0x16000), Some(base));
    }

    #[test]
    fn changed_mappings_replace_modules() {
        let mut unwinder = unwinder();
        assert_eq!(unwinder.added.len(), 1);
        unwinder.set_modules([]);
        assert!(unwinder.added.is_empty());
        let bytes = stack_bytes();
        let stack = UserStack {
            ip: 0x11150,
            sp: SP,
            bp: 0,
            stack: &bytes,
        };
        // Without the module, a frame-pointer walk from bp 0 ends at once.
        let mut out = Vec::new();
        unwinder.unwind(&mut UnwindCache::default(), &stack, in_module, &mut out);
        assert_eq!(addrs(&out), [0x11150]);
    }
}
