//! Unwind sections of ELF modules for the DWARF unwinder: the file-reading
//! half of `unwind::dwarf`, which is pure. Files are found and opened as
//! for symbols (regular files only, inside the process's root first, the
//! vdso copied from memory) and mapped, not read: sections are slices of
//! the mapping, shared by every process that maps the module.

use std::sync::Arc;

use object::{Object, ObjectSection, ObjectSegment};

use super::debuginfo::hex;
use super::elf::{self, recorded_build_id, same_build_id};
use super::{ModuleKind, ModuleRef, SymbolizeError};
use crate::unwind::dwarf::{LoadSegment, ModuleUnwindInfo, SectionBytes};
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
    let image = elf::open_code(module)?;
    let owner = Arc::new(image);
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
    sections.debug_frame = section(".debug_frame").map(|(_, bytes)| bytes);
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
    Ok(ModuleUnwindInfo { sections, segments })
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
