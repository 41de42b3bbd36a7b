//! ELF modules: file offsets to SVMAs through the PT_LOAD headers, names from
//! `.symtab` / `.dynsym` / synthesized PLT entries, inline frames and lines
//! from DWARF (in the file or a separate debug file).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use addr2line::Context;
use gimli::{DwarfSections, EndianSlice, RunTimeEndian};
use object::{
    Architecture, Object, ObjectSection, ObjectSegment, ObjectSymbol, ObjectSymbolTable,
    RelocationTarget, SectionFlags, SectionKind, SymbolKind, SymbolScope, SymbolSection,
};

use super::debuginfo::{build_id_binary_paths, build_id_paths, crc32, debuglink_paths, hex};
use super::demangle::demangle;
use super::files::{self, Image};
use super::held;
use super::prune;
use super::{Frame, Frames, ModuleRef, ModuleReport, Resolved, SymbolizeError, SymbolizeOptions};

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// Resolves `addrs` (file offsets, sorted and unique) in one ELF module.
pub fn symbolize(module: &ModuleRef, addrs: &[u64], options: &SymbolizeOptions) -> Resolved {
    let mut report = ModuleReport::default();
    let frames = load_sources(module, options, &mut report)
        .and_then(|sources| resolve_all(&sources, addrs, options, &mut report));
    match frames {
        Ok(frames) => Resolved { frames, report },
        Err(error) => {
            report.problem = Some(error.to_string());
            Resolved {
                frames: Vec::new(),
                report,
            }
        }
    }
}

/// The files one module is resolved from.
struct Sources {
    /// The image whose program headers translate file offsets: the binary,
    /// or a debug file found by the recorded build id when the binary is
    /// gone or was rebuilt.
    code: Image,
    /// A separate debug file (DWARF, often the full `.symtab`).
    debug: Option<Image>,
    /// A dwz supplementary file (`.gnu_debugaltlink`) of the DWARF file.
    sup: Option<Image>,
}

/// What the symbolizer needs to know about a file before choosing sources.
struct FileInfo {
    build_id: Option<Vec<u8>>,
    debuglink: Option<(String, u32)>,
    altlink: Option<(String, Vec<u8>)>,
    has_dwarf: bool,
    has_symtab: bool,
}

impl FileInfo {
    fn read(image: &Image) -> Result<FileInfo, SymbolizeError> {
        let obj = parse(image)?;
        let malformed = |source| SymbolizeError::Malformed {
            path: image.path.display().to_string(),
            source,
        };
        let build_id = obj.build_id().map_err(malformed)?.map(<[u8]>::to_vec);
        let debuglink = obj
            .gnu_debuglink()
            .map_err(malformed)?
            .map(|(name, crc)| (String::from_utf8_lossy(name).into_owned(), crc));
        let altlink = obj
            .gnu_debugaltlink()
            .map_err(malformed)?
            .map(|(name, id)| (String::from_utf8_lossy(name).into_owned(), id.to_vec()));
        Ok(FileInfo {
            build_id,
            debuglink,
            altlink,
            has_dwarf: has_dwarf(&obj),
            has_symtab: obj.symbol_table().is_some(),
        })
    }
}

pub(super) fn parse(image: &Image) -> Result<object::File<'_>, SymbolizeError> {
    let malformed = |source| SymbolizeError::Malformed {
        path: image.path.display().to_string(),
        source,
    };
    let obj = object::File::parse(&*image.bytes).map_err(malformed)?;
    if obj.format() != object::BinaryFormat::Elf {
        return Err(SymbolizeError::NotElf(image.path.display().to_string()));
    }
    Ok(obj)
}

fn has_dwarf(obj: &object::File<'_>) -> bool {
    obj.section_by_name(".debug_info")
        .is_some_and(|s| s.size() > 0 && s.kind() != SectionKind::UninitializedData)
}

/// Build ids match when equal up to zero padding (perf.data stores them
/// padded to 20 bytes).
pub fn same_build_id(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.starts_with(short) && long[short.len()..].iter().all(|&b| b == 0)
}

/// The recorded build id, unless it is empty or all zero (unknown).
pub fn recorded_build_id(module: &ModuleRef) -> Option<&[u8]> {
    module
        .build_id
        .as_deref()
        .filter(|id| id.iter().any(|&b| b != 0))
}

fn load_sources(
    module: &ModuleRef,
    options: &SymbolizeOptions,
    report: &mut ModuleReport,
) -> Result<Sources, SymbolizeError> {
    let recorded = recorded_build_id(module);
    let code = match open_code(module) {
        Ok(code) => code,
        // The binary is gone; its debug file still names the same addresses.
        Err(error) => {
            let kept = recorded.and_then(|id| find_kept_build(id, options));
            return kept.ok_or(error);
        }
    };
    let info = FileInfo::read(&code)?;
    report.build_id = info.build_id.clone();
    if let (Some(recorded), Some(on_disk)) = (recorded, info.build_id.as_deref()) {
        if !same_build_id(recorded, on_disk) {
            // Rebuilt since recording: only the recorded build's debug file
            // can give correct names.
            return find_kept_build(recorded, options).ok_or_else(|| {
                SymbolizeError::BuildIdMismatch {
                    recorded: hex(recorded),
                    on_disk: hex(on_disk),
                }
            });
        }
    }
    let wants_debug = !info.has_dwarf && (options.dwarf || !info.has_symtab);
    let debug = if wants_debug {
        find_debug_file(&code, &info, options)
    } else {
        None
    };
    let sup = if options.dwarf {
        find_sup(debug.as_ref().unwrap_or(&code), options)
    } else {
        None
    };
    Ok(Sources { code, debug, sup })
}

/// The recorded build, when the binary on disk is gone or different: a full
/// copy kept by build id, else its debug file alone.
fn find_kept_build(build_id: &[u8], options: &SymbolizeOptions) -> Option<Sources> {
    let code = kept_binary(build_id, options).or_else(|| find_by_build_id(build_id, options))?;
    Some(Sources {
        code,
        debug: None,
        sup: None,
    })
}

/// A full copy of the binary with `build_id` kept by build id (perf's
/// build-id cache, Fedora's links), for unwind tables.
pub(super) fn kept_binary(build_id: &[u8], options: &SymbolizeOptions) -> Option<Image> {
    build_id_binary_paths(build_id, &options.debug_dirs)
        .into_iter()
        .filter(|path| path.is_file())
        .filter_map(|path| Image::open(&path).ok())
        .find(|image| has_build_id(image, build_id))
}

fn has_build_id(image: &Image, build_id: &[u8]) -> bool {
    FileInfo::read(image)
        .is_ok_and(|info| info.build_id.is_some_and(|id| same_build_id(&id, build_id)))
}

pub(super) fn open_code(module: &ModuleRef) -> Result<Image, SymbolizeError> {
    let path = module.path.as_str();
    if path == "[vdso]" {
        return files::read_vdso(module.pid).map_err(|source| SymbolizeError::Io {
            path: path.to_string(),
            source,
        });
    }
    if !path.starts_with('/') {
        // [heap], [stack], //anon, memfd:...: no file to read names from.
        return Err(SymbolizeError::NoFile(path.to_string()));
    }
    // The very file that was mapped, even if deleted or replaced since.
    if let Some(file) = held::held_file(module.pid, path) {
        return Image::of_held(&file, path).map_err(|source| SymbolizeError::Io {
            path: path.to_string(),
            source,
        });
    }
    let candidates = files::candidate_paths(path, module.pid);
    match files::open_first(&candidates) {
        Some(Ok(image)) => Ok(image),
        Some(Err(source)) => Err(SymbolizeError::Io {
            path: path.to_string(),
            source,
        }),
        None if files::is_deleted(path) => Err(SymbolizeError::Deleted(path.to_string())),
        None => Err(SymbolizeError::NotFound(path.to_string())),
    }
}

/// A debug file under `DIR/.build-id/` whose own build id matches.
fn find_by_build_id(build_id: &[u8], options: &SymbolizeOptions) -> Option<Image> {
    build_id_paths(build_id, &options.debug_dirs)
        .into_iter()
        .filter(|path| path.exists())
        .filter_map(|path| Image::open(&path).ok())
        .find(|image| has_build_id(image, build_id))
}

/// The separate debug file of `code` (by build id, then `.gnu_debuglink`),
/// checked to belong to it.
pub(super) fn separate_debug_file(code: &Image, options: &SymbolizeOptions) -> Option<Image> {
    let info = FileInfo::read(code).ok()?;
    find_debug_file(code, &info, options)
}

fn find_debug_file(code: &Image, info: &FileInfo, options: &SymbolizeOptions) -> Option<Image> {
    let by_id = info
        .build_id
        .as_deref()
        .and_then(|id| find_by_build_id(id, options));
    by_id.or_else(|| {
        let (link, crc) = info.debuglink.as_ref()?;
        debuglink_paths(&code.path, link, &options.debug_dirs)
            .into_iter()
            .filter(|path| path.exists())
            .filter_map(|path| Image::open(&path).ok())
            .find(|image| debuglink_matches(image, info, *crc))
    })
}

/// Checks a debuglink candidate: by build id when both have one (cheap),
/// else by the CRC the link records.
fn debuglink_matches(image: &Image, info: &FileInfo, crc: u32) -> bool {
    let Ok(candidate) = FileInfo::read(image) else {
        return false;
    };
    let useful = candidate.has_dwarf || candidate.has_symtab;
    match (&info.build_id, &candidate.build_id) {
        (Some(a), Some(b)) => useful && same_build_id(a, b),
        _ => useful && crc32(&image.bytes) == crc,
    }
}

/// The dwz supplementary file named by `.gnu_debugaltlink`, checked by build id.
fn find_sup(dwarf_file: &Image, options: &SymbolizeOptions) -> Option<Image> {
    let info = FileInfo::read(dwarf_file).ok()?;
    let (name, build_id) = info.altlink?;
    let dir = dwarf_file.path.parent()?;
    let named = dir.join(name);
    std::iter::once(named)
        .chain(build_id_paths(&build_id, &options.debug_dirs))
        .filter(|path| path.exists())
        .filter_map(|path| Image::open(&path).ok())
        .find(|image| has_build_id(image, &build_id))
}

fn resolve_all(
    sources: &Sources,
    addrs: &[u64],
    options: &SymbolizeOptions,
    report: &mut ModuleReport,
) -> Result<Vec<Frames>, SymbolizeError> {
    resolve_with(sources, addrs, options, report, UnitPruning::Allowed)
}

/// Whether compile units that cover no address may be emptied (see
/// `prune`); tests compare both ways.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UnitPruning {
    Allowed,
    #[cfg_attr(not(test), allow(dead_code))]
    Off,
}

fn resolve_with(
    sources: &Sources,
    addrs: &[u64],
    options: &SymbolizeOptions,
    report: &mut ModuleReport,
    pruning: UnitPruning,
) -> Result<Vec<Frames>, SymbolizeError> {
    let code = parse(&sources.code)?;
    let debug = sources.debug.as_ref().map(parse).transpose()?;
    let sup = sources.sup.as_ref().and_then(|image| parse(image).ok());

    let symbols = SymbolIndex::from_best(&code, debug.as_ref());
    let plt = Plt::build(&code);
    let dwarf_obj = debug.as_ref().unwrap_or(&code);
    let endian = if code.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    // Section data must outlive the context that borrows it. Bad DWARF
    // costs lines and inline frames, not the names from the symbol table.
    let mut dwarf_problem = None;
    let segments = Segment::load(&code);
    let needed = (pruning == UnitPruning::Allowed).then(|| {
        let mut svmas: Vec<u64> = addrs
            .iter()
            .filter_map(|&a| svma_in(&segments, a))
            .collect();
        svmas.sort_unstable();
        svmas.dedup();
        Needed { svmas, endian }
    });
    let dwarf_sections = (options.dwarf && has_dwarf(dwarf_obj))
        .then(|| load_dwarf(dwarf_obj, needed.as_ref()))
        .and_then(|loaded| loaded.map_err(|e| dwarf_problem = Some(e.to_string())).ok());
    let sup_sections = sup.as_ref().and_then(|obj| load_dwarf(obj, None).ok());
    let context = dwarf_sections.as_ref().and_then(|sections| {
        make_context(sections, sup_sections.as_ref(), endian)
            .map_err(|e| dwarf_problem = Some(e.to_string()))
            .ok()
    });
    if let Some(problem) = dwarf_problem {
        report.problem = Some(format!("bad DWARF, using symbols only: {problem}"));
    }
    if symbols.is_empty() && context.is_none() {
        // PLT stubs may still be named, so carry on.
        report.problem = Some(SymbolizeError::NoSymbols.to_string());
    }

    let resolver = Resolver {
        segments,
        symbols,
        plt,
        context,
    };
    Ok(resolver.resolve_all(addrs, &mut Names::new(options.demangle)))
}

/// The addresses a module's DWARF is read for: compile units covering none
/// of them are emptied (see `prune`).
struct Needed {
    svmas: Vec<u64>,
    endian: RunTimeEndian,
}

fn load_dwarf<'data>(
    obj: &object::File<'data>,
    needed: Option<&Needed>,
) -> Result<DwarfSections<Cow<'data, [u8]>>, object::Error> {
    use gimli::SectionId;
    let load = |id: SectionId| match obj.section_by_name(id.name()) {
        Some(section) => section.uncompressed_data(),
        None => Ok(Cow::Borrowed(&[][..])),
    };
    let mut units = match needed {
        Some(needed) => {
            let mut units = prune::UnitSections {
                info: load(SectionId::DebugInfo)?,
                abbrev: load(SectionId::DebugAbbrev)?,
                aranges: load(SectionId::DebugAranges)?,
            };
            prune::keep_units_covering(&mut units, needed.endian, &needed.svmas);
            Some(units)
        }
        None => None,
    };
    DwarfSections::load(
        |id| match (id, obj.section_by_name(id.name()), units.as_mut()) {
            (SectionId::DebugInfo, _, Some(units)) => Ok(std::mem::take(&mut units.info)),
            (SectionId::DebugAbbrev, _, Some(units)) => Ok(std::mem::take(&mut units.abbrev)),
            (SectionId::DebugAranges, _, Some(units)) => Ok(std::mem::take(&mut units.aranges)),
            // Variable locations and macros name no code: not read (nor
            // inflated, in compressed debug files, where they are a fifth).
            (
                SectionId::DebugLoc
                | SectionId::DebugLocLists
                | SectionId::DebugMacinfo
                | SectionId::DebugMacro,
                _,
                _,
            )
            | (_, None, _) => Ok(Cow::Borrowed(&[][..])),
            (_, Some(section), _) => section.uncompressed_data(),
        },
    )
}

fn make_context<'a>(
    sections: &'a DwarfSections<Cow<'_, [u8]>>,
    sup: Option<&'a DwarfSections<Cow<'_, [u8]>>>,
    endian: RunTimeEndian,
) -> Result<Context<Reader<'a>>, gimli::Error> {
    let mut dwarf = sections.borrow(|data| EndianSlice::new(data, endian));
    if let Some(sup) = sup {
        dwarf.set_sup(sup.borrow(|data| EndianSlice::new(data, endian)));
    }
    Context::from_dwarf(dwarf)
}

/// A PT_LOAD header: file offsets `[offset, offset + filesz)` load at `vaddr`.
struct Segment {
    offset: u64,
    filesz: u64,
    vaddr: u64,
}

impl Segment {
    fn load(obj: &object::File<'_>) -> Vec<Segment> {
        if is_debug_only(obj) {
            return Segment::reconstruct(obj);
        }
        obj.segments()
            .map(|segment| {
                let (offset, filesz) = segment.file_range();
                Segment {
                    offset,
                    filesz,
                    vaddr: segment.address(),
                }
            })
            .collect()
    }
}

impl Segment {
    /// `objcopy --only-keep-debug` keeps each PT_LOAD's address and memory
    /// size but zeroes its file size and offset. Linkers place segments in
    /// address order, each at the first file offset congruent to its address
    /// modulo its alignment (what mmap needs); replaying that rule recovers
    /// the offsets of the code segments (which have no bss).
    fn reconstruct(obj: &object::File<'_>) -> Vec<Segment> {
        let mut loads: Vec<(u64, u64, u64)> = obj
            .segments()
            .map(|s| (s.address(), s.size(), s.align().max(1)))
            .collect();
        loads.sort_unstable();
        let mut end = 0u64;
        let mut segments = Vec::with_capacity(loads.len());
        for (vaddr, memsz, align) in loads {
            let gap = (vaddr % align + align - end % align) % align;
            let Some(offset) = end.checked_add(gap) else {
                break;
            };
            segments.push(Segment {
                offset,
                filesz: memsz,
                vaddr,
            });
            end = offset.saturating_add(memsz);
        }
        segments
    }
}

/// By flag, not kind: a debug file's code sections are NOBITS.
fn is_executable(section: &object::Section<'_, '_>) -> bool {
    matches!(section.flags(), SectionFlags::Elf { sh_flags, .. }
        if sh_flags.0 & object::elf::SHF_EXECINSTR.0 != 0)
}

/// A separate debug file: its code sections are NOBITS placeholders.
fn is_debug_only(obj: &object::File<'_>) -> bool {
    obj.section_by_name(".text")
        .is_some_and(|s| s.kind() == SectionKind::UninitializedData)
}

/// The lookup structures of one module.
struct Resolver<'a> {
    segments: Vec<Segment>,
    symbols: SymbolIndex<'a>,
    plt: Plt<'a>,
    context: Option<Context<Reader<'a>>>,
}

/// Everything known about one address before any string is built, so that
/// neighbours with the same answer share one `Frames`.
#[derive(PartialEq, Eq)]
enum Lookup<'a, 'c> {
    Unknown,
    /// In the PLT: the stub's symbol, if named.
    Plt(Option<&'a [u8]>),
    Code {
        symbol: Option<&'a [u8]>,
        /// DWARF frames, innermost first.
        dwarf: Vec<RawFrame<'a, 'c>>,
    },
}

/// A DWARF frame before its name is demangled.
#[derive(PartialEq, Eq)]
struct RawFrame<'a, 'c> {
    name: Option<&'a [u8]>,
    file: Option<&'c str>,
    line: u32,
}

impl<'a> Resolver<'a> {
    /// Frames for each file offset in `addrs` (sorted); empty when unknown.
    fn resolve_all(&self, addrs: &[u64], names: &mut Names<'a>) -> Vec<Frames> {
        let mut out = Vec::with_capacity(addrs.len());
        let mut previous: Option<(Lookup<'a, '_>, Frames)> = None;
        for &addr in addrs {
            let lookup = self.lookup(addr);
            let frames = match &previous {
                Some((last, frames)) if *last == lookup => frames.clone(),
                _ => build_frames(&lookup, names),
            };
            out.push(frames.clone());
            previous = Some((lookup, frames));
        }
        out
    }

    fn lookup(&self, offset: u64) -> Lookup<'a, '_> {
        let Some(svma) = self.svma(offset) else {
            return Lookup::Unknown;
        };
        if let Some(stub) = self.plt.lookup(svma) {
            return Lookup::Plt(stub);
        }
        let symbol = self.symbols.lookup(svma);
        let dwarf = self
            .context
            .as_ref()
            .map(|context| dwarf_frames(context, svma))
            .unwrap_or_default();
        if symbol.is_none() && dwarf.is_empty() {
            return Lookup::Unknown;
        }
        Lookup::Code { symbol, dwarf }
    }

    fn svma(&self, offset: u64) -> Option<u64> {
        svma_in(&self.segments, offset)
    }
}

/// The SVMA of file offset `offset`, through the segment holding it.
fn svma_in(segments: &[Segment], offset: u64) -> Option<u64> {
    segments
        .iter()
        .find(|s| offset >= s.offset && offset - s.offset < s.filesz)
        .map(|s| offset - s.offset + s.vaddr)
}

/// DWARF frames at `svma`, innermost first.
fn dwarf_frames<'a, 'c>(context: &'c Context<Reader<'a>>, svma: u64) -> Vec<RawFrame<'a, 'c>> {
    let Ok(mut iter) = context.find_frames(svma).skip_all_loads() else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = iter.next() {
        let (file, line) = frame
            .location
            .map_or((None, 0), |l| (l.file, l.line.unwrap_or(0)));
        frames.push(RawFrame {
            name: frame.function.map(|f| f.name.slice()),
            file,
            line,
        });
    }
    frames
}

/// Innermost first; the outermost frame takes the ELF symbol's name when
/// DWARF has none for it (or no DWARF covers the address).
fn build_frames<'a>(lookup: &Lookup<'a, '_>, names: &mut Names<'a>) -> Frames {
    let (symbol, dwarf) = match lookup {
        Lookup::Unknown => return Frames::from([]),
        Lookup::Plt(stub) => {
            let name = match stub {
                Some(raw) => format!("{}@plt", names.get(raw)),
                None => "[plt]".to_string(),
            };
            return Frames::from([outer_frame(Some(name.into()))]);
        }
        Lookup::Code { symbol, dwarf } => (symbol, dwarf),
    };
    let symbol = symbol.map(|raw| names.get(raw));
    let mut frames: Vec<Frame> = dwarf
        .iter()
        .map(|raw| Frame {
            function: raw.name.map(|n| names.get(n)),
            file: raw.file.map(|f| names.file(f)),
            line: raw.line,
            inlined: true,
        })
        .collect();
    match frames.last_mut() {
        Some(outer) => {
            outer.inlined = false;
            if outer.function.is_none() {
                outer.function = symbol;
            }
        }
        None => frames.push(outer_frame(symbol)),
    }
    frames.into()
}

/// Demangled names by raw name, and file names: many addresses share a
/// function and a file, and their frames share one copy of each.
struct Names<'a> {
    demangle: bool,
    cache: HashMap<&'a [u8], Arc<str>>,
    files: HashMap<String, Arc<str>>,
}

impl<'a> Names<'a> {
    fn new(demangle: bool) -> Names<'a> {
        Names {
            demangle,
            cache: HashMap::new(),
            files: HashMap::new(),
        }
    }

    fn file(&mut self, file: &str) -> Arc<str> {
        if let Some(shared) = self.files.get(file) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(file);
        self.files.insert(file.to_string(), Arc::clone(&shared));
        shared
    }

    fn get(&mut self, raw: &'a [u8]) -> Arc<str> {
        let demangle_names = self.demangle;
        self.cache
            .entry(raw)
            .or_insert_with(|| {
                let name = String::from_utf8_lossy(raw);
                if demangle_names {
                    Arc::from(demangle(&name))
                } else {
                    Arc::from(name)
                }
            })
            .clone()
    }
}

fn outer_frame(function: Option<Arc<str>>) -> Frame {
    Frame {
        function,
        file: None,
        line: 0,
        inlined: false,
    }
}

/// A function symbol covering `[start, end)`.
#[derive(Debug, Clone, Copy)]
struct Symbol<'a> {
    start: u64,
    end: u64,
    name: &'a [u8],
}

/// Function symbols sorted by address, one per address.
struct SymbolIndex<'a> {
    symbols: Vec<Symbol<'a>>,
}

impl<'a> SymbolIndex<'a> {
    /// The first non-empty of: the binary's `.symtab`, the debug file's
    /// `.symtab`, the binary's `.dynsym`.
    fn from_best(code: &object::File<'a>, debug: Option<&object::File<'a>>) -> SymbolIndex<'a> {
        let code_symtab = SymbolIndex::build(code, code.symbols());
        if !code_symtab.is_empty() {
            return code_symtab;
        }
        if let Some(debug) = debug {
            let debug_symtab = SymbolIndex::build(debug, debug.symbols());
            if !debug_symtab.is_empty() {
                return debug_symtab;
            }
        }
        SymbolIndex::build(code, code.dynamic_symbols())
    }

    fn build<'file>(
        obj: &'file object::File<'a>,
        symbols: impl Iterator<Item = object::Symbol<'a, 'file>>,
    ) -> SymbolIndex<'a> {
        // (symbol, rank): at one address prefer sized, then global symbols.
        let mut found: Vec<(Symbol<'a>, u8, u64)> = symbols
            .filter_map(|symbol| {
                let SymbolSection::Section(section) = symbol.section() else {
                    return None;
                };
                let is_code = match symbol.kind() {
                    SymbolKind::Text => true,
                    // Global untyped symbols in code: hand-written assembly.
                    SymbolKind::Unknown => {
                        symbol.scope() != SymbolScope::Compilation
                            && obj
                                .section_by_index(section)
                                .is_ok_and(|s| is_executable(&s))
                    }
                    _ => false,
                };
                let name = symbol.name_bytes().ok()?;
                if !is_code || name.is_empty() || symbol.is_undefined() {
                    return None;
                }
                let section_end = obj
                    .section_by_index(section)
                    .map(|s| s.address().saturating_add(s.size()))
                    .unwrap_or(u64::MAX);
                let rank = u8::from(symbol.size() == 0) * 2
                    + u8::from(symbol.scope() == SymbolScope::Compilation);
                let start = symbol.address();
                let end = start.saturating_add(symbol.size());
                Some((Symbol { start, end, name }, rank, section_end))
            })
            .collect();
        found.sort_unstable_by_key(|(s, rank, _)| (s.start, *rank, s.name));
        found.dedup_by_key(|(s, _, _)| s.start);

        // Unsized symbols end at the next symbol or their section's end.
        let next_starts: Vec<u64> = found
            .iter()
            .skip(1)
            .map(|(s, _, _)| s.start)
            .chain([u64::MAX])
            .collect();
        let symbols = found
            .into_iter()
            .zip(next_starts)
            .map(|((mut symbol, _, section_end), next)| {
                if symbol.end == symbol.start {
                    symbol.end = next.min(section_end);
                }
                symbol
            })
            .collect();
        SymbolIndex { symbols }
    }

    fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    fn lookup(&self, svma: u64) -> Option<&'a [u8]> {
        let after = self.symbols.partition_point(|s| s.start <= svma);
        // A symbol nested in a bigger one (a local label typed FUNC) may end
        // before `svma`; a few steps back find the enclosing one.
        self.symbols[..after]
            .iter()
            .rev()
            .take(4)
            .find(|s| svma < s.end)
            .map(|s| s.name)
    }
}

/// PLT stubs named after the symbols whose GOT slots they jump through.
struct Plt<'a> {
    /// `.plt`, `.plt.sec`, `.plt.got`, `.iplt` address ranges.
    ranges: Vec<(u64, u64)>,
    /// `(start, end, symbol name)`, sorted.
    entries: Vec<(u64, u64, &'a [u8])>,
}

/// The PLT layout of one architecture.
struct PltLayout {
    /// Size of PLT0, the lazy-binding trampoline before the first entry.
    header: u64,
    entry: u64,
    pointer: u64,
    /// `.got.plt` slots before the first function's.
    reserved_slots: u64,
}

impl PltLayout {
    fn of(arch: Architecture) -> Option<PltLayout> {
        let (header, entry, pointer) = match arch {
            Architecture::X86_64 => (16, 16, 8),
            Architecture::I386 => (16, 16, 4),
            Architecture::Aarch64 => (32, 16, 8),
            _ => return None,
        };
        Some(PltLayout {
            header,
            entry,
            pointer,
            reserved_slots: 3,
        })
    }
}

impl<'a> Plt<'a> {
    fn build(obj: &object::File<'a>) -> Plt<'a> {
        let range = |name: &str| {
            obj.section_by_name(name)
                .map(|s| (s.address(), s.address().saturating_add(s.size())))
        };
        let ranges = [".plt", ".plt.sec", ".plt.got", ".iplt"]
            .into_iter()
            .filter_map(range)
            .collect();
        let mut plt = Plt {
            ranges,
            entries: Vec::new(),
        };
        if let (Some(layout), Some(got)) = (PltLayout::of(obj.architecture()), range(".got.plt")) {
            plt.add_entries(obj, &layout, got, range(".plt"), range(".plt.sec"));
        }
        plt.entries.sort_unstable();
        plt
    }

    /// Entry `i` jumps through `.got.plt` slot `reserved + i`; with IBT the
    /// code lives in `.plt.sec` (no header), else in `.plt` after PLT0.
    fn add_entries(
        &mut self,
        obj: &object::File<'a>,
        layout: &PltLayout,
        got: (u64, u64),
        plt: Option<(u64, u64)>,
        plt_sec: Option<(u64, u64)>,
    ) {
        let (Some(relocations), Some(dynsym)) =
            (obj.dynamic_relocations(), obj.dynamic_symbol_table())
        else {
            return;
        };
        for (slot_addr, relocation) in relocations {
            if slot_addr < got.0 || slot_addr >= got.1 {
                continue;
            }
            let slot = (slot_addr - got.0) / layout.pointer;
            let Some(index) = slot.checked_sub(layout.reserved_slots) else {
                continue;
            };
            let RelocationTarget::Symbol(symbol) = relocation.target() else {
                continue;
            };
            let Some(name) = dynsym
                .symbol_by_index(symbol)
                .ok()
                .and_then(|s| s.name_bytes().ok())
            else {
                continue;
            };
            let entry_at = |(start, end): (u64, u64), header: u64| {
                let at = start
                    .checked_add(header)?
                    .checked_add(index.checked_mul(layout.entry)?)?;
                (at.checked_add(layout.entry)? <= end).then_some(at)
            };
            for at in [
                plt.and_then(|r| entry_at(r, layout.header)),
                plt_sec.and_then(|r| entry_at(r, 0)),
            ]
            .into_iter()
            .flatten()
            {
                self.entries.push((at, at + layout.entry, name));
            }
        }
    }

    /// `None` outside the PLT; `Some(None)` for an unnamed part of it.
    fn lookup(&self, svma: u64) -> Option<Option<&'a [u8]>> {
        if !self.ranges.iter().any(|&(s, e)| s <= svma && svma < e) {
            return None;
        }
        let after = self.entries.partition_point(|e| e.0 <= svma);
        let entry = after.checked_sub(1).map(|i| self.entries[i]);
        Some(entry.filter(|e| svma < e.1).map(|e| e.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vdso_of_a_live_process() {
        let image = files::read_vdso(None).expect("own vdso");
        let obj = object::File::parse(&*image.bytes).expect("vdso is ELF");
        let symbol = obj
            .dynamic_symbols()
            .find(|s| s.name() == Ok("__vdso_clock_gettime"))
            .expect("__vdso_clock_gettime");
        let segments = Segment::load(&obj);
        let segment = segments
            .iter()
            .find(|s| s.vaddr <= symbol.address() && symbol.address() < s.vaddr + s.filesz)
            .expect("symbol in a PT_LOAD");
        let offset = symbol.address() - segment.vaddr + segment.offset;
        let module = ModuleRef {
            kind: super::super::ModuleKind::Elf,
            path: "[vdso]".to_string(),
            build_id: None,
            pid: Some(std::process::id()),
        };
        let resolved = symbolize(&module, &[offset, offset + 1], &SymbolizeOptions::default());
        assert_eq!(resolved.report.problem, None);
        for frames in &resolved.frames {
            let name = frames.last().and_then(|f| f.function.as_deref());
            assert!(
                name.is_some_and(|n| n.contains("clock_gettime")),
                "{frames:?}"
            );
        }
    }

    /// File offsets inside every `step`th function of `sources`' symbol
    /// table.
    fn offsets_in_functions(sources: &Sources, step: usize) -> Vec<u64> {
        let code = parse(&sources.code).expect("ELF");
        let debug = sources.debug.as_ref().map(|d| parse(d).expect("ELF"));
        let symbols = debug.as_ref().unwrap_or(&code);
        let segments = Segment::load(&code);
        let mut offsets: Vec<u64> = symbols
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.size() > 8)
            .step_by(step)
            .filter_map(|s| {
                let svma = s.address() + s.size() / 2;
                let segment = segments
                    .iter()
                    .find(|g| g.vaddr <= svma && svma < g.vaddr + g.filesz)?;
                Some(svma - segment.vaddr + segment.offset)
            })
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        offsets
    }

    /// Emptying the units no address needs must not change one frame.
    fn assert_pruning_changes_nothing(sources: &Sources, offsets: &[u64]) {
        let options = SymbolizeOptions::default();
        let mut report = ModuleReport::default();
        let pruned = resolve_with(
            sources,
            offsets,
            &options,
            &mut report,
            UnitPruning::Allowed,
        )
        .expect("resolves");
        let full = resolve_with(sources, offsets, &options, &mut report, UnitPruning::Off)
            .expect("resolves");
        assert_eq!(pruned.len(), full.len());
        let mut inline = 0;
        for ((offset, a), b) in offsets.iter().zip(&pruned).zip(&full) {
            assert_eq!(a, b, "offset {offset:#x}");
            inline += usize::from(a.len() > 1);
        }
        assert!(inline > 0, "some frames are inlined, so DWARF was used");
    }

    /// How many units `prune` empties for `offsets` of `sources`.
    fn emptied_units(sources: &Sources, offsets: &[u64]) -> Option<prune::Pruned> {
        let code = parse(&sources.code).expect("ELF");
        let debug = sources.debug.as_ref().map(|d| parse(d).expect("ELF"));
        let obj = debug.as_ref().unwrap_or(&code);
        let load = |name: &str| {
            obj.section_by_name(name)
                .unwrap()
                .uncompressed_data()
                .unwrap()
        };
        let mut sections = prune::UnitSections {
            info: load(".debug_info"),
            abbrev: load(".debug_abbrev"),
            aranges: load(".debug_aranges"),
        };
        let segments = Segment::load(&code);
        let mut svmas: Vec<u64> = offsets
            .iter()
            .filter_map(|&o| svma_in(&segments, o))
            .collect();
        svmas.sort_unstable();
        prune::keep_units_covering(&mut sections, RunTimeEndian::Little, &svmas)
    }

    #[test]
    fn pruned_units_give_the_same_frames_in_a_c_program() {
        let dir = std::env::temp_dir().join(format!("rprof-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Several compile units with inlined helpers, so that some units
        // are needed and some are not.
        let mut files = Vec::new();
        for unit in 0..6 {
            let path = dir.join(format!("u{unit}.c"));
            std::fs::write(
                &path,
                format!(
                    "static inline __attribute__((always_inline)) long mix{unit}(long x) {{ return x * {m} + (x >> 3); }}\n\
                     __attribute__((noinline)) long f{unit}(long x) {{ for (int i = 0; i < 9; i++) x = mix{unit}(x) ^ i; return x; }}\n",
                    m = unit + 3
                ),
            )
            .unwrap();
            files.push(path);
        }
        let main = dir.join("main.c");
        std::fs::write(
            &main,
            "long f0(long),f1(long),f2(long),f3(long),f4(long),f5(long);\n\
             int main(int c, char **v) { (void)v; return (int)(f0(c)+f1(c)+f2(c)+f3(c)+f4(c)+f5(c)); }\n",
        )
        .unwrap();
        let exe = dir.join("prog");
        let status = std::process::Command::new("cc")
            .args(["-O2", "-g", "-o"])
            .arg(&exe)
            .arg(&main)
            .args(&files)
            .status()
            .expect("cc runs");
        assert!(status.success());
        let sources = Sources {
            code: Image::open(&exe).unwrap(),
            debug: None,
            sup: None,
        };
        // Only f2's unit is needed: the others are emptied (crt files may
        // carry units of their own).
        let f2 = offsets_in_functions(&sources, 1)
            .into_iter()
            .filter(|&offset| {
                let frames = resolve_with(
                    &sources,
                    &[offset],
                    &SymbolizeOptions::default(),
                    &mut ModuleReport::default(),
                    UnitPruning::Off,
                )
                .unwrap();
                frames[0]
                    .iter()
                    .any(|f| matches!(f.function.as_deref(), Some("f2" | "_start")))
            })
            .collect::<Vec<_>>();
        // f2, and _start, which crt1.o brings without DWARF (no arange
        // set covers it).
        assert!(f2.len() >= 2, "f2 and _start found");
        let pruned = emptied_units(&sources, &f2).expect("units emptied");
        assert!(pruned.emptied >= 5, "{pruned:?}");
        assert_pruning_changes_nothing(&sources, &f2);
        let all = offsets_in_functions(&sources, 1);
        assert_pruning_changes_nothing(&sources, &all);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Where libc's separate debug file is installed (libc6-dbg), the
    /// pruned result over a spread of its functions is the same.
    #[test]
    fn pruned_units_give_the_same_frames_in_libc_where_its_debug_file_is_installed() {
        let module = ModuleRef {
            kind: super::super::ModuleKind::Elf,
            path: "/lib/x86_64-linux-gnu/libc.so.6".to_string(),
            build_id: None,
            pid: None,
        };
        let Ok(sources) = load_sources(
            &module,
            &SymbolizeOptions::default(),
            &mut ModuleReport::default(),
        ) else {
            return;
        };
        if sources.debug.is_none() {
            return; // no libc6-dbg here: the C program test covers pruning
        }
        let offsets = offsets_in_functions(&sources, 3);
        let few: Vec<u64> = offsets.iter().step_by(97).copied().collect();
        let pruned = emptied_units(&sources, &few).expect("units emptied");
        assert!(pruned.emptied * 2 > pruned.units, "{pruned:?}");
        assert_pruning_changes_nothing(&sources, &few);
        assert_pruning_changes_nothing(&sources, &offsets);
    }

    #[test]
    fn build_ids_compare_up_to_padding() {
        assert!(same_build_id(&[1, 2, 3], &[1, 2, 3, 0, 0]));
        assert!(same_build_id(&[1, 2, 3, 0], &[1, 2, 3]));
        assert!(!same_build_id(&[1, 2, 3], &[1, 2, 4]));
        assert!(!same_build_id(&[1, 2, 3], &[1, 2, 3, 1]));
    }
}
