//! A minimal x86_64 DWARF CFI unwinder written directly on gimli 0.34: the
//! "write your own" side of issue 7's framehop evaluation. Bench-only; it
//! is not, and is not meant to be, part of `src/`.
//!
//! Same input and output as rprof's framehop-based
//! `unwind::dwarf::ProcessUnwinder`: the modules' `ModuleUnwindInfo`
//! (`.eh_frame`, `.eh_frame_hdr` and their SVMAs), a `UserStack`, an
//! `is_code` check; the sampled IP and the return addresses out. Per frame:
//!
//! 1. the module holding the lookup address (binary search by AVMA);
//! 2. the module's rule cache, a direct-mapped table keyed by the pc;
//! 3. on a miss: the `.eh_frame_hdr` search table, binary-searched in place
//!    (the `datarel|sdata4` layout every Linux linker writes; gimli's own
//!    `EhHdrTable::lookup` otherwise) -> the FDE (its CIE from a per-module
//!    CIE cache) -> gimli's `UnwindContext` row for the pc -> a small rule
//!    (CFA = rsp/rbp + offset, return address at CFA - 8, rbp restored
//!    from CFA + offset, or the end of the stack), cached;
//! 4. rows that fit no such rule (CFA expressions, as in PLT stubs, or a
//!    return address elsewhere) are evaluated once, uncached.
//!
//! Where nothing covers an address it does what framehop does, so both
//! give the same frames: outside every module, or before the first FDE of
//! a module, a frame-pointer step; in a gap between FDEs, a plain return
//! for the first frame and a frame-pointer step for callers. Modules
//! without `.eh_frame_hdr` are walked by frame pointer (framehop would
//! index `.eh_frame`): every module this bench loads has one.

use std::ops::Range;

use gimli::{
    BaseAddresses, CfaRule, CommonInformationEntry, EhFrame, EhFrameHdr, EhFrameOffset,
    EndianSlice, Evaluation, EvaluationResult, LittleEndian, Location, Register, RegisterRule,
    UnwindContext, UnwindSection, UnwindTableRow, Value, X86_64,
};
use rprof::unwind::dwarf::{Completion, MappedModule, SectionBytes, UserStack, MAX_FRAMES};
use rustc_hash::FxHashMap;

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// How to find the caller's registers; the return address is always at
/// the new sp - 8 (the CFA - 8), as on every x86_64 frame outside
/// hand-written assembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The return address is undefined: the outermost frame.
    EndOfStack,
    /// CFA = rsp + `cfa`; rbp saved at CFA + `bp` if any, else unchanged.
    Sp { cfa: i32, bp: Option<i32> },
    /// CFA = rbp + `cfa`, rbp saved at CFA + `bp` (`Bp { 16, -16 }` is the
    /// frame-pointer step, with framehop's checks).
    Bp { cfa: i32, bp: i32 },
    /// No FDE covers the pc (a gap between FDEs): a plain return in the
    /// first frame (it may be a stub), else a frame-pointer step.
    ReturnIfFirstElseFramePointer,
}

const FRAME_POINTER: Rule = Rule::Bp { cfa: 16, bp: -16 };

/// One module: where it is and its sections, ready for lookups.
struct GimliModule {
    avma: Range<u64>,
    /// The AVMA of SVMA 0.
    base_avma: u64,
    eh_frame: SectionBytes,
    eh_frame_hdr: SectionBytes,
    bases: BaseAddresses,
    /// The `.eh_frame_hdr` search table when it is `datarel|sdata4` pairs:
    /// its byte offset in the section and its entry count.
    table: Option<(usize, usize)>,
    hdr_svma: u64,
    eh_frame_svma: u64,
}

/// The registers framehop tracks on x86_64 (and so does this).
#[derive(Debug, Clone, Copy)]
struct Regs {
    ip: u64,
    sp: u64,
    bp: u64,
}

impl Regs {
    fn get(&self, register: Register) -> Option<u64> {
        match register {
            X86_64::RA => Some(self.ip),
            X86_64::RSP => Some(self.sp),
            X86_64::RBP => Some(self.bp),
            _ => None,
        }
    }
}

const SLOTS: usize = 4096;

/// One module's rule cache: direct-mapped, keyed by the lookup pc.
struct RuleSlots {
    slots: Box<[(u64, Rule)]>,
}

impl RuleSlots {
    fn new() -> Self {
        RuleSlots {
            slots: vec![(u64::MAX, Rule::EndOfStack); SLOTS].into_boxed_slice(),
        }
    }

    fn index(pc: u64) -> usize {
        (pc.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOTS.trailing_zeros())) as usize
    }
}

/// Everything that changes while unwinding: the rule caches (one per
/// module of the unwinder it is used with), the CIEs parsed so far (they
/// borrow the unwinder's sections, hence `'a`), gimli's context.
pub struct GimliCache<'a> {
    rules: Vec<RuleSlots>,
    cies: Vec<FxHashMap<usize, CommonInformationEntry<Slice<'a>>>>,
    context: Box<UnwindContext<usize>>,
    pub hits: u64,
    pub misses: u64,
}

impl<'a> GimliCache<'a> {
    /// An empty cache for `unwinder`, its tables allocated up front.
    pub fn new(unwinder: &'a GimliUnwinder) -> Self {
        let count = unwinder.modules.len();
        GimliCache {
            rules: (0..count).map(|_| RuleSlots::new()).collect(),
            cies: vec![FxHashMap::default(); count],
            context: Box::new(UnwindContext::new()),
            hits: 0,
            misses: 0,
        }
    }
}

/// One process's modules, as `ProcessUnwinder` has them.
pub struct GimliUnwinder {
    /// Sorted by start address.
    modules: Vec<GimliModule>,
}

/// What a rule-cache miss found.
enum Found {
    Rule(Rule),
    /// A row that fits no rule, evaluated here: the return address.
    Evaluated(Result<Option<u64>, ()>),
}

impl GimliUnwinder {
    pub fn new(mapped: &[MappedModule]) -> Self {
        let mut modules: Vec<GimliModule> = mapped.iter().filter_map(GimliModule::new).collect();
        modules.sort_by_key(|m| m.avma.start);
        GimliUnwinder { modules }
    }

    /// As `ProcessUnwinder::unwind`: the sampled IP, then return addresses.
    pub fn unwind<'a>(
        &'a self,
        cache: &mut GimliCache<'a>,
        stack: &UserStack<'_>,
        is_code: impl Fn(u64) -> bool,
        out: &mut Vec<u64>,
    ) -> Completion {
        out.clear();
        out.push(stack.ip);
        let mut regs = Regs {
            ip: stack.ip,
            sp: stack.sp,
            bp: stack.bp,
        };
        let mut lookup = stack.ip;
        let mut first = true;
        while out.len() < MAX_FRAMES {
            match self.step(cache, lookup, first, &mut regs, stack) {
                Ok(None) => return Completion::Complete,
                Ok(Some(return_address)) => {
                    if !is_code(return_address) {
                        return Completion::Truncated;
                    }
                    out.push(return_address);
                    if return_address == 0 {
                        return Completion::Complete;
                    }
                    lookup = return_address - 1;
                    first = false;
                }
                Err(()) => return Completion::Truncated,
            }
        }
        Completion::Truncated
    }

    /// One frame: the caller's return address, `None` at the root.
    fn step<'a>(
        &'a self,
        cache: &mut GimliCache<'a>,
        pc: u64,
        first: bool,
        regs: &mut Regs,
        stack: &UserStack<'_>,
    ) -> Result<Option<u64>, ()> {
        let at = self.modules.partition_point(|m| m.avma.start <= pc);
        let Some(index) = at.checked_sub(1).filter(|&i| self.modules[i].avma.end > pc) else {
            return exec(FRAME_POINTER, first, regs, stack);
        };
        let module = &self.modules[index];
        let slot = &mut cache.rules[index].slots[RuleSlots::index(pc)];
        if slot.0 == pc {
            cache.hits += 1;
            return exec(slot.1, first, regs, stack);
        }
        cache.misses += 1;
        let svma = pc.wrapping_sub(module.base_avma);
        let cies = &mut cache.cies[index];
        match module.find(svma, cies, &mut cache.context, first, regs, stack) {
            Found::Rule(rule) => {
                cache.rules[index].slots[RuleSlots::index(pc)] = (pc, rule);
                exec(rule, first, regs, stack)
            }
            Found::Evaluated(result) => result,
        }
    }
}

impl GimliModule {
    fn new(mapped: &MappedModule) -> Option<Self> {
        let sections = &mapped.info.sections;
        let eh_frame = sections.eh_frame.clone()?;
        let eh_frame_hdr = sections.eh_frame_hdr.clone()?;
        let eh_frame_svma = sections.eh_frame_svma.as_ref()?.start;
        let hdr_svma = sections.eh_frame_hdr_svma.as_ref()?.start;
        let base_avma = mapped.info.base_avma(mapped.avma.start, mapped.pgoff)?;
        let bases = BaseAddresses::default()
            .set_eh_frame(eh_frame_svma)
            .set_eh_frame_hdr(hdr_svma)
            .set_text(sections.text_svma.as_ref().map_or(0, |r| r.start))
            .set_got(sections.got_svma.as_ref().map_or(0, |r| r.start));
        // version 1, eh_frame_ptr 4 bytes, fde_count udata4, table datarel|sdata4.
        let hdr = &eh_frame_hdr[..];
        let table = (hdr.len() >= 12
            && hdr[0] == 1
            && matches!(hdr[1] & 0x0f, 0x03 | 0x0b)
            && hdr[2] == 0x03
            && hdr[3] == 0x3b)
            .then(|| {
                let count = u32::from_le_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
                (12, count.min((hdr.len() - 12) / 8))
            });
        Some(GimliModule {
            avma: mapped.avma.clone(),
            base_avma,
            eh_frame,
            eh_frame_hdr,
            bases,
            table,
            hdr_svma,
            eh_frame_svma,
        })
    }

    /// The `.eh_frame` offset of the FDE that may hold `svma` (the last one
    /// starting at or before it, else the first: as gimli's lookup).
    fn fde_offset(&self, svma: u64) -> Option<usize> {
        let hdr = &self.eh_frame_hdr[..];
        let Some((start, count)) = self.table else {
            let parsed = EhFrameHdr::new(hdr, LittleEndian)
                .parse(&self.bases, 8)
                .ok()?;
            let table = parsed.table()?;
            let pointer = table.lookup(svma, &self.bases).ok()?;
            return Some(table.pointer_to_offset(pointer).ok()?.0);
        };
        if count == 0 {
            return None;
        }
        let entry = |i: usize| {
            let at = start + 8 * i;
            let word =
                |o: usize| i32::from_le_bytes([hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]]) as i64;
            (word(at), word(at + 4))
        };
        let relative = svma.wrapping_sub(self.hdr_svma) as i64;
        let after = {
            let (mut lo, mut hi) = (0, count);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if entry(mid).0 <= relative {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let (_, fde) = entry(after.saturating_sub(1));
        usize::try_from((self.hdr_svma as i64 + fde) - self.eh_frame_svma as i64).ok()
    }

    fn find<'a>(
        &'a self,
        svma: u64,
        cies: &mut FxHashMap<usize, CommonInformationEntry<Slice<'a>>>,
        context: &mut UnwindContext<usize>,
        first: bool,
        regs: &mut Regs,
        stack: &UserStack<'_>,
    ) -> Found {
        let Some(offset) = self.fde_offset(svma) else {
            return Found::Rule(FRAME_POINTER);
        };
        let bytes: &'a [u8] = &self.eh_frame;
        let eh_frame = EhFrame::new(bytes, LittleEndian);
        // gimli parses an FDE's CIE anew each time; the cache keeps them.
        let fde =
            eh_frame.fde_from_offset(&self.bases, EhFrameOffset(offset), |section, bases, o| {
                if let Some(cie) = cies.get(&o.0) {
                    return Ok(cie.clone());
                }
                let cie = section.cie_from_offset(bases, o)?;
                cies.insert(o.0, cie.clone());
                Ok(cie)
            });
        let Ok(fde) = fde else {
            return Found::Rule(FRAME_POINTER);
        };
        let Ok(row) = fde.unwind_info_for_address(&eh_frame, &self.bases, context, svma) else {
            return Found::Rule(Rule::ReturnIfFirstElseFramePointer);
        };
        match to_rule(row) {
            Some(rule) => Found::Rule(rule),
            None => Found::Evaluated(evaluate(
                &eh_frame,
                row,
                fde.cie().encoding(),
                first,
                regs,
                stack,
            )),
        }
    }
}

/// The row as a cacheable rule, if it is one of the common shapes.
fn to_rule(row: &UnwindTableRow<usize>) -> Option<Rule> {
    let bp = row.register(X86_64::RBP);
    match row.register(X86_64::RA) {
        None | Some(RegisterRule::Undefined) => return Some(Rule::EndOfStack),
        Some(RegisterRule::Offset(-8)) => {}
        _ => return None,
    }
    let bp = match bp {
        None | Some(RegisterRule::Undefined) | Some(RegisterRule::SameValue) => None,
        Some(RegisterRule::Offset(offset)) => Some(i32::try_from(offset).ok()?),
        _ => return None,
    };
    match *row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => {
            let cfa = i32::try_from(offset).ok()?;
            match register {
                X86_64::RSP => Some(Rule::Sp { cfa, bp }),
                X86_64::RBP => Some(Rule::Bp { cfa, bp: bp? }),
                _ => None,
            }
        }
        CfaRule::Expression(_) => None,
    }
}

/// Runs a cached rule: the caller's registers and its return address.
fn exec(
    rule: Rule,
    first: bool,
    regs: &mut Regs,
    stack: &UserStack<'_>,
) -> Result<Option<u64>, ()> {
    let read = |addr: u64| stack.read(addr).ok_or(());
    let sp = regs.sp;
    let (new_sp, new_bp) = match rule {
        Rule::EndOfStack => return Ok(None),
        Rule::ReturnIfFirstElseFramePointer if first => (sp.checked_add(8).ok_or(())?, regs.bp),
        // framehop ends the stack at a zero rbp in a frame-pointer step,
        // but not in this fallback.
        Rule::ReturnIfFirstElseFramePointer | Rule::Bp { cfa: 16, bp: -16 } => {
            if regs.bp == 0 && rule != Rule::ReturnIfFirstElseFramePointer {
                return Ok(None);
            }
            let new_sp = regs.bp.checked_add(16).ok_or(())?;
            if new_sp <= sp {
                return Err(());
            }
            (new_sp, read(regs.bp)?)
        }
        Rule::Sp { cfa, bp } => {
            let new_sp = sp.checked_add_signed(i64::from(cfa)).ok_or(())?;
            let new_bp = match bp {
                None => regs.bp,
                Some(offset) => {
                    let at = new_sp.checked_add_signed(i64::from(offset)).ok_or(())?;
                    match read(at) {
                        Ok(value) => value,
                        // Epilogues: a register popped already, below sp,
                        // outside the copy (as framehop).
                        Err(()) if first && at < sp => regs.bp,
                        Err(()) => return Err(()),
                    }
                }
            };
            (new_sp, new_bp)
        }
        Rule::Bp { cfa, bp } => {
            let new_sp = regs.bp.checked_add_signed(i64::from(cfa)).ok_or(())?;
            if !first && new_sp < sp {
                return Err(());
            }
            let at = new_sp.checked_add_signed(i64::from(bp)).ok_or(())?;
            (new_sp, read(at)?)
        }
    };
    let return_address = read(new_sp.checked_sub(8).ok_or(())?)?;
    if return_address == 0 {
        return Ok(None);
    }
    if new_sp == sp && return_address == regs.ip {
        return Err(());
    }
    *regs = Regs {
        ip: return_address,
        sp: new_sp,
        bp: new_bp,
    };
    Ok(Some(return_address))
}

/// The slow path for rows no rule fits (expressions): evaluated as
/// framehop does, not cached.
fn evaluate(
    section: &EhFrame<Slice<'_>>,
    row: &UnwindTableRow<usize>,
    encoding: gimli::Encoding,
    first: bool,
    regs: &mut Regs,
    stack: &UserStack<'_>,
) -> Result<Option<u64>, ()> {
    let read = |addr: u64| stack.read(addr).ok_or(());
    let expression = |expr: &gimli::UnwindExpression<usize>| -> Option<u64> {
        let expr = expr.get(section).ok()?;
        let mut eval: Evaluation<Slice<'_>> = Evaluation::new_in(expr.0, encoding);
        let mut result = eval.evaluate().ok()?;
        loop {
            match result {
                EvaluationResult::Complete => break,
                EvaluationResult::RequiresRegister { register, .. } => {
                    let value = regs.get(register)?;
                    result = eval.resume_with_register(Value::Generic(value)).ok()?;
                }
                _ => return None,
            }
        }
        match eval.as_result().last()?.location {
            Location::Address { address } => Some(address),
            _ => None,
        }
    };
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => regs
            .get(*register)
            .and_then(|v| v.checked_add_signed(*offset)),
        CfaRule::Expression(expr) => expression(expr),
    }
    .ok_or(())?;
    let register = |rule: Option<RegisterRule<usize>>, value: u64| -> Option<u64> {
        match rule? {
            RegisterRule::Undefined => None,
            RegisterRule::SameValue => Some(value),
            RegisterRule::Offset(offset) => read(cfa.checked_add_signed(offset)?).ok(),
            RegisterRule::ValOffset(offset) => cfa.checked_add_signed(offset),
            RegisterRule::Register(register) => regs.get(register),
            RegisterRule::Expression(expr) => read(expression(&expr)?).ok(),
            RegisterRule::ValExpression(expr) => expression(&expr),
            _ => None,
        }
    };
    let new_bp = register(row.register(X86_64::RBP), regs.bp).unwrap_or(regs.bp);
    let return_address = match register(row.register(X86_64::RA), regs.ip) {
        Some(address) => address,
        None => read(cfa.checked_sub(8).ok_or(())?)?,
    };
    if cfa == regs.sp && return_address == regs.ip {
        return Err(());
    }
    if !first && cfa < regs.sp {
        return Err(());
    }
    *regs = Regs {
        ip: return_address,
        sp: cfa,
        bp: new_bp,
    };
    Ok(Some(return_address))
}
