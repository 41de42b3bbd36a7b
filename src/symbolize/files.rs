//! Getting module bytes: mapping files, finding them through
//! `/proc/PID/root` for containerised processes, and copying the vdso.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

/// The bytes of a module image: a read-only mapping of a file, or a copy
/// (the vdso, small or empty files).
pub enum FileBytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            FileBytes::Owned(bytes) => bytes,
        }
    }
}

/// A module image and where it came from.
pub struct Image {
    pub path: PathBuf,
    pub bytes: FileBytes,
}

impl Image {
    pub fn open(path: &Path) -> io::Result<Image> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let bytes = if len == 0 {
            // mmap of an empty file fails; an empty image is simply malformed.
            FileBytes::Owned(Vec::new())
        } else {
            FileBytes::Mapped(map_readonly(&file)?)
        };
        Ok(Image {
            path: path.to_path_buf(),
            bytes,
        })
    }
}

#[allow(unsafe_code)]
fn map_readonly(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is private and read-only, and every parser that reads
    // it (object, gimli) bounds-checks its input, so any bytes are fine. The
    // one hazard of file mappings, the file being truncated while mapped
    // (SIGBUS), is the same one perf and every debugger accept for binaries.
    unsafe { Mmap::map(file) }
}

/// Where to look for a module's file: inside the process's root first (a
/// container sees its own `/usr/lib`), then the path as recorded.
pub fn candidate_paths(path: &str, pid: Option<u32>) -> Vec<PathBuf> {
    let path = strip_deleted(path);
    let mut candidates = Vec::with_capacity(2);
    if let Some(pid) = pid {
        if path.starts_with('/') {
            candidates.push(PathBuf::from(format!("/proc/{pid}/root{path}")));
        }
    }
    candidates.push(PathBuf::from(path));
    candidates
}

/// The kernel appends " (deleted)" to mappings of unlinked files.
pub fn strip_deleted(path: &str) -> &str {
    path.strip_suffix(" (deleted)").unwrap_or(path)
}

pub fn is_deleted(path: &str) -> bool {
    path.ends_with(" (deleted)")
}

/// Opens the first candidate that exists.
pub fn open_first(candidates: &[PathBuf]) -> Option<io::Result<Image>> {
    let path = candidates.iter().find(|p| p.exists())?;
    Some(Image::open(path))
}

/// Copies the vdso image of `pid` (while it lives), else of this process:
/// both come from the same running kernel.
pub fn read_vdso(pid: Option<u32>) -> io::Result<Image> {
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no [vdso] mapping");
    let procs = pid
        .map(|p| p.to_string())
        .into_iter()
        .chain(["self".to_string()]);
    for proc in procs {
        match read_vdso_of(&proc) {
            Ok(bytes) => {
                return Ok(Image {
                    path: PathBuf::from(format!("/proc/{proc}/mem [vdso]")),
                    bytes: FileBytes::Owned(bytes),
                })
            }
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

fn read_vdso_of(proc: &str) -> io::Result<Vec<u8>> {
    let maps = std::fs::read_to_string(format!("/proc/{proc}/maps"))?;
    let (start, end) = maps
        .lines()
        .find(|line| line.ends_with("[vdso]"))
        .and_then(|line| crate::procfs::parse_maps_line(line).map(|m| (m.start, m.end)))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no [vdso] mapping"))?;
    let len = usize::try_from(end.saturating_sub(start))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad [vdso] range"))?;
    let mut bytes = vec![0; len];
    File::open(format!("/proc/{proc}/mem"))?.read_exact_at(&mut bytes, start)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_root_is_tried_first() {
        let paths = candidate_paths("/usr/bin/app (deleted)", Some(42));
        assert_eq!(
            paths,
            [
                PathBuf::from("/proc/42/root/usr/bin/app"),
                PathBuf::from("/usr/bin/app")
            ]
        );
        assert_eq!(candidate_paths("/bin/x", None), [PathBuf::from("/bin/x")]);
    }

    #[test]
    fn own_vdso_is_an_elf_image() {
        let image = read_vdso(None).expect("read own vdso");
        assert!(image.bytes.starts_with(b"\x7fELF"));
    }
}
