//! Unwind sections of ELF modules for the DWARF unwinder: the file-reading
//! half of `unwind::dwarf`, which is pure. Files are found and opened as
//! for symbols (regular files only, inside the process's root first, the
//! vdso copied from memory) and mapped, not read: sections are slices of
//! the mapping, shared by every process that maps the module.

use std::ops::Range;
use std::sync::Arc;

use object::{Object, ObjectSection, ObjectSegment};

use super::debuginfo::hex;
use super::elf::{self, recorded_build_id, same_build_id};
use super::files::Image;
use super::{ModuleKind, ModuleRef, SymbolizeError, SymbolizeOptions};
use crate::unwind::dwarf::{DebugFrameOnly, LoadSegment, ModuleUnwindInfo, SectionBytes};
use crate::unwind::UnwindInfoSource;

/// Loads unwind sections from the modules' files (or nothing for a module
/// whose file is missing, different from the recorded build, or not ELF:
/// its frames are then walked by frame pointer).
#[derive(Debug, Default)]
pub struct ElfUnwindInfo {
    /// Modules that could not be loaded, and why.
    pub problems: Vec<(String, String)>,
}

impl UnwindInfoSource for ElfUnwindInfo {
    fn load(&mut self, module: &ModuleRef) -> Option<Arc<ModuleUnwindInfo>> {
        match load_unwind_info(module) {
            Ok(info) => Some(Arc::new(info)),
            Err(error) => {
                // JIT code and the kernel have no file to read: no news.
                if module.kind == ModuleKind::Elf {
                    self.problems.push((module.path.clone(), error.to_string()));
                }
                None
            }
        }
    }

    fn problems(&self) -> &[(String, String)] {
        &self.problems
    }
}

/// The unwind sections and load segments of an ELF module's file.
pub fn load_unwind_info(module: &ModuleRef) -> Result<ModuleUnwindInfo, SymbolizeError> {
    if module.kind != ModuleKind::Elf {
        return Err(SymbolizeError::NoFile(module.path.clone()));
    }
    let owner = Arc::new(recorded_build(module)?);
    let obj = elf::parse(&owner)?;
    if let (Some(recorded), Some(on_disk)) =
        (recorded_build_id(module), obj.build_id().ok().flatten())
    {
        if !same_build_id(recorded, on_disk) {
            // Rules of another build would walk the stack astray.
            return Err(SymbolizeError::BuildIdMismatch {
                recorded: hex(recorded),
                on_disk: hex(on_disk),
            });
        }
    }
    let shared: Arc<dyn AsRef<[u8]> + Send + Sync> = owner.clone();
    let section = |name: &str| {
        let section = obj.section_by_name(name)?;
        // Compressed sections (a .debug_frame can be) are not read in place.
        let range = section.compressed_file_range().ok()?;
        if range.format != object::CompressionFormat::None {
            return None;
        }
        let start = usize::try_from(range.offset).ok()?;
        let end = start.checked_add(usize::try_from(range.compressed_size).ok()?)?;
        let bytes = SectionBytes::new(Arc::clone(&shared), start..end)?;
        let svma = section.address()..section.address().saturating_add(section.size());
        Some((svma, bytes))
    };
    let mut sections = framehop::ExplicitModuleSectionInfo {
        base_svma: 0,
        ..Default::default()
    };
    if let Some((svma, bytes)) = section(".text") {
        sections.text_svma = Some(svma);
        sections.text = Some(bytes);
    }
    sections.got_svma = section(".got").map(|(svma, _)| svma);
    if let Some((svma, bytes)) = section(".eh_frame") {
        sections.eh_frame_svma = Some(svma);
        sections.eh_frame = Some(bytes);
    }
    if let Some((svma, bytes)) = section(".eh_frame_hdr") {
        sections.eh_frame_hdr_svma = Some(svma);
        sections.eh_frame_hdr = Some(bytes);
    }
    let debug_frame = section(".debug_frame")
        .map(|(_, bytes)| bytes)
        .or_else(|| separate_debug_frame(&owner));
    let debug_frame_only = debug_frame.and_then(|debug_frame| {
        let ranges = debug_frame_only_ranges(&sections, &debug_frame);
        (!ranges.is_empty()).then(|| DebugFrameOnly {
            sections: framehop::ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: sections.text_svma.clone(),
                got_svma: sections.got_svma.clone(),
                debug_frame: Some(debug_frame),
                ..Default::default()
            },
            ranges,
        })
    });
    let segments = obj
        .segments()
        .map(|segment| {
            let (offset, filesz) = segment.file_range();
            LoadSegment {
                offset,
                vaddr: segment.address(),
                filesz,
                executable: matches!(
                    segment.flags(),
                    object::SegmentFlags::Elf { p_flags, .. } if p_flags.contains(object::elf::PF_X)
                ),
            }
        })
        .collect();
    Ok(ModuleUnwindInfo {
        sections,
        segments,
        debug_frame_only,
    })
}

/// The module's file: at its path if it is the recorded build, else (a
/// recording from another machine, a binary rebuilt or gone) a copy kept
/// by build id, as perf's build-id cache (`~/.debug/.build-id/xx/rest/elf`)
/// holds them.
fn recorded_build(module: &ModuleRef) -> Result<Image, SymbolizeError> {
    let on_path = elf::open_code(module);
    let Some(recorded) = recorded_build_id(module) else {
        return on_path;
    };
    let is_recorded = on_path.as_ref().is_ok_and(|image| {
        let on_disk = elf::parse(image)
            .ok()
            .and_then(|o| o.build_id().ok().flatten());
        on_disk.map_or(true, |id| same_build_id(recorded, id))
    });
    if is_recorded {
        return on_path;
    }
    elf::kept_binary(recorded, &SymbolizeOptions::default()).map_or(on_path, Ok)
}

/// `.debug_frame` from the module's separate debug file (by build id or
/// `.gnu_debuglink`): `strip` moves it there with the rest of the DWARF.
fn separate_debug_frame(code: &Arc<Image>) -> Option<SectionBytes> {
    let debug = Arc::new(elf::separate_debug_file(
        code,
        &SymbolizeOptions::default(),
    )?);
    let obj = elf::parse(&debug).ok()?;
    let section = obj.section_by_name(".debug_frame")?;
    let range = section.compressed_file_range().ok()?;
    if range.format != object::CompressionFormat::None {
        return None;
    }
    let start = usize::try_from(range.offset).ok()?;
    let end = start.checked_add(usize::try_from(range.compressed_size).ok()?)?;
    let shared: Arc<dyn AsRef<[u8]> + Send + Sync> = debug.clone();
    SectionBytes::new(shared, start..end)
}

/// The code (SVMA ranges, sorted) that `.debug_frame` describes and
/// `.eh_frame` does not: functions built without unwind tables
/// (`-fno-asynchronous-unwind-tables -g`) beside ones with them.
fn debug_frame_only_ranges(
    sections: &framehop::ExplicitModuleSectionInfo<SectionBytes>,
    debug_frame: &[u8],
) -> Vec<Range<u64>> {
    use gimli::{BaseAddresses, CieOrFde, DebugFrame, EhFrame, LittleEndian, UnwindSection};

    fn fde_ranges<R: gimli::Reader<Offset = usize>, S: UnwindSection<R>>(
        section: &S,
        bases: &BaseAddresses,
    ) -> Vec<Range<u64>> {
        let mut ranges = Vec::new();
        let mut entries = section.entries(bases);
        while let Ok(Some(entry)) = entries.next() {
            if let CieOrFde::Fde(partial) = entry {
                if let Ok(fde) = partial.parse(S::cie_from_offset) {
                    let start = fde.initial_address();
                    ranges.push(start..start.saturating_add(fde.len()));
                }
            }
        }
        ranges.sort_by_key(|r| r.start);
        ranges
    }
    let mut bases = BaseAddresses::default();
    if let Some(text) = &sections.text_svma {
        bases = bases.set_text(text.start);
    }
    if let Some(got) = &sections.got_svma {
        bases = bases.set_got(got.start);
    }
    let described = match (&sections.eh_frame, &sections.eh_frame_svma) {
        (Some(eh_frame), Some(svma)) => {
            let bases = bases.clone().set_eh_frame(svma.start);
            fde_ranges(&EhFrame::new(eh_frame, LittleEndian), &bases)
        }
        _ => Vec::new(),
    };
    let mut debug = DebugFrame::new(debug_frame, LittleEndian);
    debug.set_address_size(8);
    fde_ranges(&debug, &bases)
        .into_iter()
        .filter(|r| {
            // The first `.eh_frame` entry ending after r's start must start
            // at or after r's end, else they overlap.
            let next = described.partition_point(|d| d.end <= r.start);
            described.get(next).map_or(true, |d| d.start >= r.end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_binary_has_eh_frame_and_an_executable_segment() {
        let exe = std::env::current_exe().unwrap();
        let module = ModuleRef {
            kind: ModuleKind::Elf,
            path: exe.display().to_string(),
            build_id: None,
            pid: None,
        };
        let info = load_unwind_info(&module).unwrap();
        assert!(info
            .sections
            .eh_frame
            .as_ref()
            .is_some_and(|b| !b.is_empty()));
        assert!(info.sections.eh_frame_hdr.is_some());
        assert!(info.segments.iter().any(|s| s.executable));
    }

    #[test]
    fn recorded_build_id_of_another_build_is_refused() {
        let exe = std::env::current_exe().unwrap();
        let module = ModuleRef {
            kind: ModuleKind::Elf,
            path: exe.display().to_string(),
            build_id: Some(vec![0xab; 20]),
            pid: None,
        };
        let error = load_unwind_info(&module).unwrap_err();
        assert!(
            matches!(error, SymbolizeError::BuildIdMismatch { .. }),
            "{error}"
        );
    }
}
