//! Module files held open by the recorder (`record --rotate`): an interval
//! is unwound and symbolized when it ends, up to a rotation period after a
//! process ran, and by then the process may have exited and its binary
//! been deleted (`go run`, a CI job's build directory) or replaced (a
//! deploy). The recorder opens the files of every process it samples while
//! the process lives, and the interval's finisher installs them with
//! [`use_held`]: a module's file is then read through the held file, which
//! is exactly the file that was mapped, before any path is tried.
//!
//! One set is in use at a time: intervals are finished one after another
//! on one thread (the symbolizer's own threads look it up too, so the set
//! is process-wide rather than thread-local).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, PoisonError};

use super::files::strip_deleted;

/// A file the recorder holds, which it can take back before the interval
/// is finished (a file on a mount that may be unmounted once its process
/// exits must not keep it busy).
#[derive(Debug)]
pub struct HeldFile(Mutex<Option<File>>);

impl HeldFile {
    pub fn new(file: File) -> Arc<HeldFile> {
        Arc::new(HeldFile(Mutex::new(Some(file))))
    }

    /// Closes the file now; lookups then fall back to paths.
    pub fn release(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    #[cfg(test)]
    pub fn is_released(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// A new descriptor of the file, unless it was released.
    fn dup(&self) -> Option<File> {
        let file = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        file.as_ref()?.try_clone().ok()
    }

    /// (device, inode) of the file, unless it was released.
    pub fn identity(&self) -> Option<(u64, u64)> {
        let file = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let meta = file.as_ref()?.metadata().ok()?;
        Some((meta.dev(), meta.ino()))
    }
}

/// A held file and its (device, inode).
type OneFile = (Arc<HeldFile>, (u64, u64));

/// The files of the processes one interval sampled, by (pid, mapped path).
#[derive(Default)]
pub struct HeldFiles {
    by_module: HashMap<(u32, String), Arc<HeldFile>>,
    /// The one file held under a path, for a module named by a process
    /// that was not sampled (a report keys a shared binary by the first
    /// process that mapped it); None when processes mapped different files
    /// under the same path (a deploy: old and new builds both running).
    by_path: HashMap<String, Option<OneFile>>,
}

impl HeldFiles {
    pub fn insert(&mut self, pid: u32, path: &str, file: Arc<HeldFile>) {
        let path = strip_deleted(path);
        if let Some(identity) = file.identity() {
            self.by_path
                .entry(path.to_string())
                .and_modify(|one| {
                    if one.as_ref().is_some_and(|(_, known)| *known != identity) {
                        *one = None;
                    }
                })
                .or_insert_with(|| Some((file.clone(), identity)));
        }
        self.by_module.insert((pid, path.to_string()), file);
    }

    pub fn len(&self) -> usize {
        self.by_module.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_module.is_empty()
    }

    fn get(&self, pid: Option<u32>, path: &str) -> Option<File> {
        let path = strip_deleted(path);
        // A lookup by borrowed parts would need a second map; modules are
        // looked up a handful of times per interval.
        let by_pid = pid.and_then(|pid| self.by_module.get(&(pid, path.to_string())));
        match by_pid {
            Some(file) => file.dup(),
            None => self.by_path.get(path)?.as_ref()?.0.dup(),
        }
    }
}

impl std::fmt::Debug for HeldFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldFiles({} modules)", self.by_module.len())
    }
}

static IN_USE: Mutex<Option<Arc<HeldFiles>>> = Mutex::new(None);

/// Puts `files` in use until the guard is dropped; then they are closed
/// unless someone else still holds them.
pub fn use_held(files: HeldFiles) -> HeldInUse {
    let files = Arc::new(files);
    *IN_USE.lock().unwrap_or_else(PoisonError::into_inner) = Some(files.clone());
    HeldInUse(files)
}

/// Ends [`use_held`] when dropped.
#[must_use = "the held files are in use only while this lives"]
pub struct HeldInUse(Arc<HeldFiles>);

impl Drop for HeldInUse {
    fn drop(&mut self) {
        let mut in_use = IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
        // Another set put in use since is left alone.
        if in_use.as_ref().is_some_and(|f| Arc::ptr_eq(f, &self.0)) {
            in_use.take();
        }
    }
}

/// The held file of the module `path` mapped by `pid` (a descriptor of
/// its own), if a set is in use and has it.
pub(super) fn held_file(pid: Option<u32>, path: &str) -> Option<File> {
    let files = IN_USE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()?;
    files.get(pid, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set in use is process-wide: one test at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn temp_file(dir: &std::path::Path, name: &str) -> File {
        let path = dir.join(name);
        std::fs::write(&path, name).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[test]
    fn held_files_are_found_only_while_in_use_and_until_released() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let app = HeldFile::new(temp_file(dir.path(), "app"));
        let mut files = HeldFiles::default();
        files.insert(7, "/opt/app (deleted)", app.clone());
        assert!(held_file(Some(7), "/opt/app").is_none());
        {
            let _in_use = use_held(files);
            assert!(held_file(Some(7), "/opt/app").is_some());
            // The kernel's name for a mapping of a deleted file.
            assert!(held_file(Some(7), "/opt/app (deleted)").is_some());
            // Another process's module of the same, single file.
            assert!(held_file(Some(8), "/opt/app").is_some());
            assert!(held_file(None, "/opt/app").is_some());
            assert!(held_file(Some(7), "/opt/other").is_none());
            app.release();
            assert!(held_file(Some(7), "/opt/app").is_none());
        }
        assert!(held_file(Some(7), "/opt/app").is_none());
        // Only the test's handle is left: the set let go of its copy.
        assert_eq!(Arc::strong_count(&app), 1);
    }

    #[test]
    fn a_path_with_two_different_files_is_found_only_by_pid() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let old = HeldFile::new(temp_file(dir.path(), "old"));
        let new = HeldFile::new(temp_file(dir.path(), "new"));
        let mut files = HeldFiles::default();
        files.insert(1, "/srv/app", old);
        files.insert(2, "/srv/app", new.clone());
        let _in_use = use_held(files);
        let read = |pid| {
            use std::io::Read;
            let mut text = String::new();
            held_file(pid, "/srv/app")?.read_to_string(&mut text).ok()?;
            Some(text)
        };
        // Each is read once: descriptors from try_clone share the offset.
        assert_eq!(read(Some(1)).as_deref(), Some("old"));
        assert_eq!(read(Some(2)).as_deref(), Some("new"));
        assert_eq!(read(Some(3)), None);
        // A newer set in use is not cleared by an older guard.
        let newer = use_held(HeldFiles::default());
        drop(_in_use);
        assert!(IN_USE.lock().unwrap().is_some());
        drop(newer);
        assert!(IN_USE.lock().unwrap().is_none());
        assert_eq!(Arc::strong_count(&new), 1);
    }
}
