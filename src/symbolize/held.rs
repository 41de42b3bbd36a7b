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
use std::sync::{Arc, Mutex, PoisonError};

/// The files of the processes one interval sampled, by (pid, mapped path).
#[derive(Default)]
pub struct HeldFiles {
    by_module: HashMap<(u32, String), Arc<File>>,
}

impl HeldFiles {
    pub fn insert(&mut self, pid: u32, path: String, file: Arc<File>) {
        self.by_module.insert((pid, path), file);
    }

    pub fn len(&self) -> usize {
        self.by_module.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_module.is_empty()
    }

    fn get(&self, pid: u32, path: &str) -> Option<Arc<File>> {
        // A lookup by borrowed parts would need a second map; modules are
        // looked up a handful of times per interval.
        self.by_module.get(&(pid, path.to_string())).cloned()
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
pub fn use_held(files: Arc<HeldFiles>) -> HeldInUse {
    *IN_USE.lock().unwrap_or_else(PoisonError::into_inner) = Some(files);
    HeldInUse(())
}

/// Ends [`use_held`] when dropped.
#[must_use = "the held files are in use only while this lives"]
pub struct HeldInUse(());

impl Drop for HeldInUse {
    fn drop(&mut self) {
        IN_USE.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

/// The held file of the module `path` mapped by `pid`, if one is in use.
pub(super) fn held_file(pid: Option<u32>, path: &str) -> Option<Arc<File>> {
    let pid = pid?;
    let files = IN_USE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()?;
    files.get(pid, super::files::strip_deleted(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_files_are_found_only_while_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        std::fs::write(&path, b"x").unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let mut files = HeldFiles::default();
        files.insert(7, "/opt/app".into(), file.clone());
        assert!(held_file(Some(7), "/opt/app").is_none());
        {
            let _in_use = use_held(Arc::new(files));
            assert!(held_file(Some(7), "/opt/app").is_some());
            // The kernel's name for a mapping of a deleted file.
            assert!(held_file(Some(7), "/opt/app (deleted)").is_some());
            assert!(held_file(Some(8), "/opt/app").is_none());
            assert!(held_file(None, "/opt/app").is_none());
        }
        assert!(held_file(Some(7), "/opt/app").is_none());
        // Only the test's own handle is left: the set closed its copy.
        assert_eq!(Arc::strong_count(&file), 1);
    }
}
