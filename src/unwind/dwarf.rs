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
}

/// What unwinding needs from one ELF image, in the image's own addresses.
#[derive(Debug, Clone)]
pub struct ModuleUnwindInfo {
    /// `.eh_frame`, `.eh_frame_hdr`, `.debug_frame`, `.text`, `.got`.
    pub sections: ExplicitModuleSectionInfo<SectionBytes>,
    pub segments: Vec<LoadSegment>,
}

impl ModuleUnwindInfo {
    /// The AVMA of SVMA 0 for a mapping at `start` of file offset `pgoff`:
    /// the segment mapped there says which SVMA lies at `start`. The loader
    /// maps each segment from its offset rounded down to a page, so that
    /// segment is the one starting in the page at `pgoff`; only when none
    /// does (a mapping split later), the one whose bytes hold `pgoff`.
    /// (lld packs segments into shared pages: the page where the code
    /// segment starts also holds the end of the read-only segment before
    /// it, whose SVMAs are a page off.)
    pub fn base_avma(&self, start: u64, pgoff: u64) -> Option<u64> {
        const PAGE: u64 = 4096;
        let segment = self
            .segments
            .iter()
            .find(|s| s.offset & !(PAGE - 1) == pgoff)
            .or_else(|| {
                self.segments.iter().find(|s| {
                    s.offset & !(PAGE - 1) <= pgoff
                        && pgoff < s.offset.saturating_add(s.filesz.max(1))
                })
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

/// The rule cache, shared by every process's unwinder (framehop keys its
/// entries by module generation, so unwinders can share one).
#[derive(Default)]
pub struct UnwindCache(CacheX86_64);

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

/// One process's unwinder: its modules, kept in step with its mappings.
#[derive(Default)]
pub struct ProcessUnwinder {
    unwinder: UnwinderX86_64<SectionBytes>,
    /// start -> (end, pgoff, image): what was added, to tell what changed.
    added: BTreeMap<u64, (u64, u64, usize)>,
}

impl ProcessUnwinder {
    pub fn new() -> Self {
        ProcessUnwinder::default()
    }

    /// Makes the module set `modules`: mappings gone (or changed) are
    /// removed, new ones added; unchanged ones keep their parsed state.
    pub fn set_modules(&mut self, modules: impl IntoIterator<Item = MappedModule>) {
        let wanted: BTreeMap<u64, (u64, u64, usize, MappedModule)> = modules
            .into_iter()
            .map(|m| {
                let key = Arc::as_ptr(&m.info) as usize;
                (m.avma.start, (m.avma.end, m.pgoff, key, m))
            })
            .collect();
        let stale: Vec<u64> = self
            .added
            .iter()
            .filter(|(start, &(end, pgoff, key))| {
                !matches!(wanted.get(start), Some(w) if (w.0, w.1, w.2) == (end, pgoff, key))
            })
            .map(|(&start, _)| start)
            .collect();
        for start in stale {
            self.unwinder.remove_module(start);
            self.added.remove(&start);
        }
        for (start, (end, pgoff, key, module)) in wanted {
            if self.added.contains_key(&start) {
                continue;
            }
            let Some(base_avma) = module.info.base_avma(start, pgoff) else {
                continue;
            };
            self.unwinder.add_module(Module::new(
                module.name,
                start..end,
                base_avma,
                module.info.sections.clone(),
            ));
            self.added.insert(start, (end, pgoff, key));
        }
    }

    /// Unwinds `stack` into `out` (cleared first): the sampled IP, then
    /// return addresses, caller last. Where there is no CFI (JIT code,
    /// addresses outside every module, functions without FDEs) framehop
    /// follows the frame pointer; every return address must be code by
    /// `is_code`, else the walk went astray and the stack is truncated there.
    pub fn unwind(
        &self,
        cache: &mut UnwindCache,
        stack: &UserStack<'_>,
        is_code: impl Fn(u64) -> bool,
        out: &mut Vec<u64>,
    ) -> Completion {
        out.clear();
        out.push(stack.ip);
        let mut regs = UnwindRegsX86_64::new(stack.ip, stack.sp, stack.bp);
        let mut read = |addr: u64| stack.read(addr).ok_or(());
        let mut address = FrameAddress::from_instruction_pointer(stack.ip);
        while out.len() < MAX_FRAMES {
            match self
                .unwinder
                .unwind_frame(address, &mut regs, &mut cache.0, &mut read)
            {
                Ok(None) => return Completion::Complete,
                Ok(Some(return_address)) => {
                    if !is_code(return_address) {
                        return Completion::Truncated;
                    }
                    out.push(return_address);
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
    /// a (0x1100), b (0x1200) and the root (0x1300).
    fn unwinder() -> ProcessUnwinder {
        let eh = eh_frame(&[
            (0x1100, 0x100, FRAME_0X20),
            (0x1200, 0x100, FRAME_0X20),
            (0x1300, 0x100, ROOT),
        ]);
        let len = eh.len() as u64;
        let info = ModuleUnwindInfo {
            sections: ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: Some(0x1000..0x2000),
                eh_frame_svma: Some(0x3000..0x3000 + len),
                eh_frame: Some(SectionBytes::from_vec(eh)),
                ..Default::default()
            },
            segments: vec![LoadSegment {
                offset: 0,
                vaddr: 0,
                filesz: 0x4000,
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
        assert_eq!(out, [0x11150, 0x11250, 0x11350]);
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
        assert_eq!(out, [0x11150, 0x11250]);
        assert_eq!(done, Completion::Truncated);
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
        assert_eq!(out, [0x9000, 0x11250, 0x11350]);
        assert_eq!(done, Completion::Complete);

        // The same walk where the "return address" is not code: truncated.
        let mut bad = bytes.clone();
        bad[24..32].copy_from_slice(&0x1234u64.to_le_bytes());
        let stack = UserStack {
            stack: &bad,
            ..stack
        };
        let done = unwinder.unwind(&mut UnwindCache::default(), &stack, is_code, &mut out);
        assert_eq!(
            (out.as_slice(), done),
            (&[0x9000][..], Completion::Truncated)
        );
    }

    #[test]
    fn base_avma_follows_the_segment_holding_the_mapping() {
        let info = ModuleUnwindInfo {
            sections: ExplicitModuleSectionInfo::default(),
            segments: vec![
                LoadSegment {
                    offset: 0,
                    vaddr: 0x40_0000,
                    filesz: 0x1000,
                },
                LoadSegment {
                    offset: 0x1234,
                    vaddr: 0x40_1234,
                    filesz: 0x800,
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
            }],
            ..info.clone()
        };
        assert_eq!(
            pie.base_avma(0x5555_5555_5000, 0x1000),
            Some(0x5555_5555_4000)
        );
        assert_eq!(pie.base_avma(0x5555_5555_5000, 0x9000), None);
    }

    /// rust-lld's layout (the default linker of Rust on x86_64 Linux):
    /// the read-only segment ends in the page where the code segment
    /// starts, and the code's SVMAs are a page above its file offsets.
    #[test]
    fn base_avma_of_code_in_a_page_shared_with_the_segment_before() {
        let info = ModuleUnwindInfo {
            sections: ExplicitModuleSectionInfo::default(),
            segments: vec![
                LoadSegment {
                    offset: 0,
                    vaddr: 0,
                    filesz: 0x8_5314,
                },
                LoadSegment {
                    offset: 0x8_5320,
                    vaddr: 0x8_6320,
                    filesz: 0x21_e9e0,
                },
            ],
        };
        let start = 0x5600_0008_5000;
        // The code mapping: file offset 0x85000 holds SVMA 0x86000.
        assert_eq!(info.base_avma(start, 0x8_5000), Some(start - 0x8_6000));
        // The read-only mapping at offset 0 still maps SVMA 0 there.
        assert_eq!(info.base_avma(0x5600_0000_0000, 0), Some(0x5600_0000_0000));
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
        assert_eq!(out, [0x11150]);
    }
}
