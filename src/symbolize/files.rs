//! Getting module bytes: mapping files, finding them through
//! `/proc/PID/root` for containerised processes, and copying the vdso.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io;
use std::ops::Deref;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
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

impl AsRef<[u8]> for Image {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Image {
    /// Maps the regular file at `path`; symbolic links are followed (system
    /// libraries are often reached through them).
    pub fn open(path: &Path) -> io::Result<Image> {
        let (file, meta) = open_regular(path, Links::Follow)?;
        let len = meta.len();
        let bytes = if len == 0 {
            // mmap of an empty file fails; an empty image is simply malformed.
            FileBytes::Owned(Vec::new())
        } else {
            FileBytes::Mapped(crate::sys::map_read_only(&file)?)
        };
        Ok(Image {
            path: path.to_path_buf(),
            bytes,
        })
    }
}

impl Image {
    /// Maps a module file the recorder held open (see `held`); `path` is
    /// the name it was mapped under.
    pub fn of_held(file: &File, path: &str) -> io::Result<Image> {
        let meta = file.metadata()?;
        check_regular(meta.file_type())?;
        let bytes = if meta.len() == 0 {
            FileBytes::Owned(Vec::new())
        } else {
            FileBytes::Mapped(crate::sys::map_read_only(file)?)
        };
        Ok(Image {
            path: PathBuf::from(strip_deleted(path)),
            bytes,
        })
    }
}

/// Whether a symbolic link at the last component of a path is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    Follow,
    /// For files in world-writable places (`/tmp`), where anyone can plant one.
    Refuse,
}

/// Opens `path` for reading if it is a regular file, and nothing else:
/// paths come from recordings, and a FIFO would block forever, a device
/// (`/dev/zero`) never end or have side effects on open. The type is checked
/// before opening (so no device is opened) and again on the open file
/// (fstat), so a swap in between slips nothing through; `O_NONBLOCK` keeps
/// even that open from waiting on a FIFO.
pub fn open_regular(path: &Path, links: Links) -> io::Result<(File, Metadata)> {
    let symlink_refused = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is a symbolic link, refused in a world-writable directory where anyone could \
             have planted it; replace it with the file itself",
        )
    };
    let before = match links {
        Links::Follow => std::fs::metadata(path)?,
        Links::Refuse => std::fs::symlink_metadata(path)?,
    };
    if before.file_type().is_symlink() {
        return Err(symlink_refused());
    }
    check_regular(before.file_type())?;
    let mut flags = libc::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if links == Links::Refuse => symlink_refused(),
            _ => e,
        })?;
    let meta = file.metadata()?;
    check_regular(meta.file_type())?;
    Ok((file, meta))
}

fn check_regular(kind: FileType) -> io::Result<()> {
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}, not a regular file; rprof reads only regular files"),
    ))
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

    /// Runs `open` on another thread: a hang fails the test instead of
    /// hanging the suite.
    fn within_a_minute<T: Send + 'static>(open: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(open()));
        result
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("opening hung")
    }

    #[test]
    fn a_fifo_module_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("libfifo.so");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        for candidate in [fifo.clone(), dir.path().join("link.so")] {
            if candidate != fifo {
                std::os::unix::fs::symlink(&fifo, &candidate).unwrap();
            }
            let error = within_a_minute(move || Image::open(&candidate).err())
                .expect("a FIFO opened as a module");
            assert!(error.to_string().contains("a FIFO"), "{error}");
        }
    }

    #[test]
    fn devices_and_directories_are_not_modules() {
        for (path, what) in [("/dev/zero", "a device"), ("/tmp", "a directory")] {
            let error = within_a_minute(move || Image::open(Path::new(path)).err())
                .expect("opened as a module");
            assert!(error.to_string().contains(what), "{path}: {error}");
        }
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.so");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(Image::open(&link).is_err());
    }

    #[test]
    fn symbolic_links_to_regular_files_are_followed_unless_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("lib.so");
        std::fs::write(&target, b"\x7fELF").unwrap();
        let link = dir.path().join("lib.so.1");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(&*Image::open(&link).unwrap().bytes, b"\x7fELF");
        let error = open_regular(&link, Links::Refuse).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(open_regular(&target, Links::Refuse).is_ok());
    }

    #[test]
    fn own_vdso_is_an_elf_image() {
        let image = read_vdso(None).expect("read own vdso");
        assert!(image.bytes.starts_with(b"\x7fELF"));
    }
}
