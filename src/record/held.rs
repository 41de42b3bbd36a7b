//! Keeps the module files of sampled processes open until their interval
//! is symbolized (`record --rotate`; see `symbolize::held` for why).
//!
//! [`FileHolder`] reads the record stream (and the mappings described from
//! /proc) on the recording thread. The first sample of a process in an
//! interval opens the files of its executable mappings, while the process
//! still lives: `/proc/PID/map_files/` names the mapped file itself (even
//! deleted, even on a container's overlay), else the path in the
//! process's root, checked against the inode the kernel recorded. At the
//! end of an interval [`FileHolder::take_interval`] hands the files of the
//! processes it sampled to the finisher, which closes them once the
//! interval is symbolized; the holder keeps only those of processes that
//! ran in that interval and still live.
//!
//! An open file keeps its filesystem busy: `umount` fails with EBUSY. A
//! file on a mount that appeared after rprof started (a container's root,
//! removable media) is therefore let go when the process that mapped it
//! exits, and its interval is symbolized from the path like any other;
//! files on the mounts rprof started with (`/`, `/tmp`, `/home`: where
//! `go run` and build jobs put binaries they delete) are kept until their
//! interval is symbolized, at most one interval past the process's exit.
//!
//! Cost: no system call for a file already open (mappings are told apart
//! by the identity the kernel gave them), and at most
//! [`FileHolder::MAX_FILES`] files open (a quarter of the fd limit).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use crate::abi::{misc, record_type};
use crate::perfdata::writer::AttrEntry;
use crate::perfdata::{Decoder, Record};
use crate::symbolize::held::HeldFiles;
use crate::symbolize::{open_regular, Links};

/// What the kernel (or /proc) said the mapped file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Identity {
    /// MMAP2's device and inode (an inode of 0: unknown, as synthesized).
    Inode { major: u32, minor: u32, ino: u64 },
    /// MMAP2 with a build id instead (the 20 bytes as recorded).
    BuildId([u8; 20]),
    /// MMAP (v1) records carry nothing.
    Unknown,
}

impl Identity {
    /// From an MMAP/MMAP2 record body (after the 8-byte header).
    fn of(kind: u32, flags: u16, body: &[u8]) -> Identity {
        if kind != record_type::MMAP2 {
            return Identity::Unknown;
        }
        let Some(raw) = body.get(32..56) else {
            return Identity::Unknown;
        };
        if flags & misc::MMAP_BUILD_ID != 0 {
            let mut id = [0; 20];
            id.copy_from_slice(&raw[4..24]);
            return Identity::BuildId(id);
        }
        let u32_at = |at: usize| u32::from_ne_bytes(raw[at..at + 4].try_into().expect("4 bytes"));
        Identity::Inode {
            major: u32_at(0),
            minor: u32_at(4),
            ino: u64::from_ne_bytes(raw[8..16].try_into().expect("8 bytes")),
        }
    }

    /// Whether an opened file can be the mapped one (a path may have been
    /// replaced since the mapping).
    fn admits(&self, meta: &std::fs::Metadata) -> bool {
        match *self {
            Identity::Inode { ino, .. } if ino != 0 => meta.ino() == ino,
            _ => true,
        }
    }
}

/// One executable file mapping of a process.
#[derive(Debug, Clone)]
struct Mapping {
    start: u64,
    end: u64,
    identity: Identity,
    /// Mapped before the process's latest exec: dropped at the next
    /// interval's start (this one's samples may still need it).
    before_exec: bool,
}

type FileKey = (String, Identity);

/// One file held open.
struct Held {
    file: Arc<File>,
    /// On a mount rprof started with: may outlive the processes using it.
    on_startup_mount: bool,
}

/// See the module docs.
pub(crate) struct FileHolder {
    decoder: Decoder,
    /// Executable file mappings of each known process, by path.
    mappings: HashMap<u32, HashMap<String, Mapping>>,
    open: HashMap<FileKey, Held>,
    /// Ids of the mounts that existed when recording started.
    startup_mounts: HashSet<u64>,
    /// Processes sampled in the current interval.
    sampled: HashSet<u32>,
    exited: Vec<u32>,
    limit: usize,
    /// Files not held because [`FileHolder::limit`] files were open.
    over_limit: u64,
    /// Files not held because they could not be opened, or were not the
    /// mapped file any more (replaced since).
    unopened: u64,
}

impl FileHolder {
    /// At most this many files open, and a quarter of the fd limit.
    pub const MAX_FILES: usize = 4096;

    pub fn new(entries: &[AttrEntry]) -> FileHolder {
        let attrs = entries.iter().map(|e| e.attr).collect();
        let ids: Vec<Vec<u64>> = entries.iter().map(|e| e.ids.clone()).collect();
        let (soft, _) = crate::sys::fd_limits();
        FileHolder {
            decoder: Decoder::new(attrs, &ids),
            mappings: HashMap::new(),
            open: HashMap::new(),
            startup_mounts: mount_ids(),
            sampled: HashSet::new(),
            exited: Vec::new(),
            limit: Self::MAX_FILES.min(usize::try_from(soft / 4).unwrap_or(usize::MAX)),
            over_limit: 0,
            unopened: 0,
        }
    }

    /// Files open now.
    #[cfg(test)]
    fn open_files(&self) -> usize {
        self.open.len()
    }

    /// A warning when the limit kept files from being held.
    pub fn limit_warning(&self) -> Option<String> {
        (self.over_limit > 0).then(|| {
            format!(
                "{} module files were not held open for symbolization ({} open at most, a quarter \
                 of the open-file limit): samples in binaries deleted before their interval \
                 ended may stay unnamed; raise the limit with `ulimit -n`",
                self.over_limit, self.limit
            )
        })
    }

    /// Reads whole records (a drain, or what was described from /proc).
    pub fn scan(&mut self, mut bytes: &[u8]) {
        while bytes.len() >= 8 {
            let kind = u32::from_ne_bytes(bytes[..4].try_into().expect("4 bytes"));
            let flags = u16::from_ne_bytes([bytes[4], bytes[5]]);
            let size = usize::from(u16::from_ne_bytes([bytes[6], bytes[7]]));
            if size < 8 || size > bytes.len() {
                return;
            }
            let body = &bytes[8..size];
            bytes = &bytes[size..];
            if !matches!(
                kind,
                record_type::SAMPLE
                    | record_type::MMAP
                    | record_type::MMAP2
                    | record_type::COMM
                    | record_type::EXIT
            ) {
                continue;
            }
            match self.decoder.decode(kind, flags, body) {
                Some(Record::Sample(sample)) => self.sampled_process(sample.pid),
                Some(Record::Mmap(map)) => {
                    if map.pid == u32::MAX || !map.is_code() || !map.filename.starts_with('/') {
                        continue;
                    }
                    let path = map.filename;
                    let mapping = Mapping {
                        start: map.start,
                        end: map.start.saturating_add(map.len),
                        identity: Identity::of(kind, flags, body),
                        before_exec: false,
                    };
                    if self.sampled.contains(&map.pid) {
                        self.hold(map.pid, &path, &mapping);
                    }
                    self.mappings
                        .entry(map.pid)
                        .or_default()
                        .insert(path, mapping);
                }
                Some(Record::Comm(comm)) if comm.exec => {
                    for mapping in self.mappings.entry(comm.pid).or_default().values_mut() {
                        mapping.before_exec = true;
                    }
                }
                // The process ends with its main thread.
                Some(Record::Exit(exit)) if exit.pid == exit.tid => self.process_exited(exit.pid),
                _ => {}
            }
        }
    }

    fn sampled_process(&mut self, pid: u32) {
        if pid == 0 || pid == u32::MAX || !self.sampled.insert(pid) {
            return;
        }
        let Some(mappings) = self.mappings.get(&pid) else {
            return;
        };
        let wanted: Vec<(String, Mapping)> = mappings
            .iter()
            .filter(|(path, m)| !self.open.contains_key(&((*path).clone(), m.identity)))
            .map(|(path, m)| (path.clone(), m.clone()))
            .collect();
        for (path, mapping) in wanted {
            self.hold(pid, &path, &mapping);
        }
    }

    /// Lets go at once of the process's files on mounts that may be
    /// unmounted now that it is gone (see module docs).
    fn process_exited(&mut self, pid: u32) {
        self.exited.push(pid);
        for (path, mapping) in self.mappings.get(&pid).into_iter().flatten() {
            let key = (path.clone(), mapping.identity);
            if self.open.get(&key).is_some_and(|h| !h.on_startup_mount) {
                self.open.remove(&key);
            }
        }
    }

    /// Opens the mapped file unless it is open already.
    fn hold(&mut self, pid: u32, path: &str, mapping: &Mapping) {
        let key = (path.to_string(), mapping.identity);
        if self.open.contains_key(&key) {
            return;
        }
        if self.open.len() >= self.limit {
            self.over_limit += 1;
            return;
        }
        match open_mapped(pid, path, mapping) {
            Some(file) => {
                let on_startup_mount =
                    mount_id_of(&file).is_some_and(|id| self.startup_mounts.contains(&id));
                let file = Arc::new(file);
                self.open.insert(
                    key,
                    Held {
                        file,
                        on_startup_mount,
                    },
                );
            }
            None => self.unopened += 1,
        }
    }

    /// The interval ends: the files of the processes it sampled, for its
    /// finisher. Then forgets what ended: exited processes, mappings
    /// replaced by an exec, processes gone from /proc, and files of
    /// processes that did not run in this interval.
    pub fn take_interval(&mut self) -> HeldFiles {
        let mut held = HeldFiles::default();
        for pid in &self.sampled {
            for (path, mapping) in self.mappings.get(pid).into_iter().flatten() {
                if let Some(open) = self.open.get(&(path.clone(), mapping.identity)) {
                    held.insert(*pid, path.clone(), open.file.clone());
                }
            }
        }
        for pid in self.exited.drain(..) {
            self.mappings.remove(&pid);
        }
        self.mappings.retain(|pid, mappings| {
            mappings.retain(|_, m| !m.before_exec);
            Path::new(&format!("/proc/{pid}")).exists()
        });
        let mut still_used = HashSet::new();
        for pid in self.sampled.drain() {
            for (path, mapping) in self.mappings.get(&pid).into_iter().flatten() {
                still_used.insert((path.clone(), mapping.identity));
            }
        }
        self.open.retain(|key, _| still_used.contains(key));
        held
    }
}

/// The ids of this process's mounts (`/proc/self/mountinfo`, first field).
fn mount_ids() -> HashSet<u64> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The id of the mount an open file is on (`/proc/self/fdinfo/N`).
fn mount_id_of(file: &File) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd())).ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("mnt_id:"))?
        .trim()
        .parse()
        .ok()
}

/// The file `pid` mapped at `mapping`, opened while the process lives.
fn open_mapped(pid: u32, path: &str, mapping: &Mapping) -> Option<File> {
    // The mapping itself: right even for a deleted or replaced file (root
    // only; elsewhere, and for a mapping gone since, the path below).
    let map_file = format!(
        "/proc/{pid}/map_files/{:x}-{:x}",
        mapping.start, mapping.end
    );
    if let Ok((file, _)) = open_regular(Path::new(&map_file), Links::Follow) {
        return Some(file);
    }
    let in_root = format!("/proc/{pid}/root{path}");
    let found = [in_root.as_str(), path].into_iter().find_map(|candidate| {
        let (file, meta) = open_regular(Path::new(candidate), Links::Follow).ok()?;
        mapping.identity.admits(&meta).then_some(file)
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{sample, EventAttr};

    fn record(kind: u32, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut r = kind.to_ne_bytes().to_vec();
        r.extend(flags.to_ne_bytes());
        r.extend(((8 + body.len()) as u16).to_ne_bytes());
        r.extend(body);
        r
    }

    fn mmap2(pid: u32, start: u64, end: u64, ino: u64, path: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for w in [pid, pid] {
            body.extend(w.to_ne_bytes());
        }
        for q in [start, end - start, 0] {
            body.extend(q.to_ne_bytes());
        }
        body.extend(0u32.to_ne_bytes()); // major
        body.extend(0u32.to_ne_bytes()); // minor
        body.extend(ino.to_ne_bytes());
        body.extend(0u64.to_ne_bytes()); // ino generation
        body.extend(5u32.to_ne_bytes()); // PROT_READ | PROT_EXEC
        body.extend(2u32.to_ne_bytes()); // MAP_PRIVATE
        let mut name = path.as_bytes().to_vec();
        name.resize((path.len() + 8) & !7, 0);
        body.extend(name);
        record(record_type::MMAP2, misc::USER, &body)
    }

    fn sample(pid: u32) -> Vec<u8> {
        let mut body = 0x1000u64.to_ne_bytes().to_vec();
        body.extend(pid.to_ne_bytes());
        body.extend(pid.to_ne_bytes());
        record(record_type::SAMPLE, misc::USER, &body)
    }

    fn exit(pid: u32) -> Vec<u8> {
        let body: Vec<u8> = [pid, pid, pid, pid]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .chain(0u64.to_ne_bytes())
            .collect();
        record(record_type::EXIT, 0, &body)
    }

    fn holder() -> FileHolder {
        let attr = EventAttr {
            sample_type: sample::IP | sample::TID,
            ..EventAttr::default()
        };
        FileHolder::new(&[AttrEntry { attr, ids: vec![] }])
    }

    /// This test process's own executable mapping (start, end, path).
    fn own_code_mapping() -> (u64, u64, String) {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy().into_owned();
        let line = maps
            .lines()
            .find(|l| l.contains(" r-xp ") && l.ends_with(&exe))
            .expect("an executable mapping of the test binary");
        let (range, _) = line.split_once(' ').unwrap();
        let (start, end) = range.split_once('-').unwrap();
        (
            u64::from_str_radix(start, 16).unwrap(),
            u64::from_str_radix(end, 16).unwrap(),
            exe,
        )
    }

    #[test]
    fn files_of_sampled_processes_are_held_until_their_interval_is_taken() {
        let pid = std::process::id();
        let (start, end, exe) = own_code_mapping();
        let ino = std::fs::metadata(&exe).unwrap().ino();
        let mut holder = holder();
        // Mapped but never sampled: nothing is opened.
        holder.scan(&mmap2(pid, start, end, ino, &exe));
        assert_eq!(holder.open_files(), 0);
        holder.scan(&[sample(pid), sample(pid)].concat());
        assert_eq!(holder.open_files(), 1);
        let held = holder.take_interval();
        assert_eq!(held.len(), 1);
        // The process lives and ran: still held for the next interval.
        assert_eq!(holder.open_files(), 1);
        // An interval it did not run in: the holder lets go.
        assert!(holder.take_interval().is_empty());
        assert_eq!(holder.open_files(), 0);
        assert_eq!((holder.over_limit, holder.unopened), (0, 0));
    }

    #[test]
    fn an_exited_process_is_forgotten_after_its_interval() {
        let pid = std::process::id();
        let (start, end, exe) = own_code_mapping();
        let mut holder = holder();
        holder.scan(&[mmap2(pid, start, end, 0, &exe), sample(pid), exit(pid)].concat());
        let held = holder.take_interval();
        // The exit's interval still gets the file...
        assert_eq!(held.len(), 1);
        // ...but the holder keeps nothing of the process.
        assert_eq!(holder.open_files(), 0);
        assert!(holder.mappings.is_empty());
    }

    #[test]
    fn files_on_mounts_newer_than_the_recording_are_let_go_at_exit() {
        let pid = std::process::id();
        let (start, end, exe) = own_code_mapping();
        let mut holder = holder();
        assert!(!holder.startup_mounts.is_empty());
        // As if the binary's filesystem had been mounted after the start
        // (a container's root): its file must not keep it busy.
        holder.startup_mounts.clear();
        holder.scan(&[mmap2(pid, start, end, 0, &exe), sample(pid)].concat());
        assert_eq!(holder.open_files(), 1);
        holder.scan(&exit(pid));
        assert_eq!(holder.open_files(), 0);
        assert!(holder.take_interval().is_empty());
    }

    #[test]
    fn a_replaced_file_is_not_taken_for_the_mapped_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app");
        std::fs::write(&path, b"new build").unwrap();
        let path = path.to_string_lossy().into_owned();
        let ino = std::fs::metadata(&path).unwrap().ino();
        // A process that does not exist: no map_files, no root; only the path.
        let pid = u32::MAX - 1;
        let mut holder = holder();
        holder.scan(&[mmap2(pid, 0x1000, 0x2000, ino + 1, &path), sample(pid)].concat());
        assert_eq!((holder.open_files(), holder.unopened), (0, 1));
        let mut holder = self::holder();
        holder.scan(&[mmap2(pid, 0x1000, 0x2000, ino, &path), sample(pid)].concat());
        assert_eq!((holder.open_files(), holder.unopened), (1, 0));
    }

    #[test]
    fn the_mapping_itself_is_opened_even_when_its_path_is_gone() {
        // /proc/PID/map_files needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE).
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let pid = std::process::id();
        let (start, end, exe) = own_code_mapping();
        let mut holder = holder();
        let gone = "/nonexistent/rprof-test-binary";
        holder.scan(&[mmap2(pid, start, end, 0, gone), sample(pid)].concat());
        assert_eq!((holder.open_files(), holder.unopened), (1, 0));
        let held = holder
            .open
            .values()
            .next()
            .unwrap()
            .file
            .metadata()
            .unwrap();
        assert_eq!(held.ino(), std::fs::metadata(exe).unwrap().ino());
    }

    #[test]
    fn the_limit_bounds_the_files_open() {
        let pid = std::process::id();
        let (start, end, exe) = own_code_mapping();
        let mut holder = holder();
        holder.limit = 1;
        holder.scan(
            &[
                mmap2(pid, start, end, 0, &exe),
                mmap2(pid, 0x1000, 0x2000, 0, "/bin/sh"),
                sample(pid),
            ]
            .concat(),
        );
        assert_eq!((holder.open_files(), holder.over_limit), (1, 1));
        assert!(holder.limit_warning().unwrap().contains("ulimit -n"));
    }
}
