//! Keeps the module files of sampled processes open until their interval
//! is symbolized (`record --rotate`; see `symbolize::held` for why).
//!
//! [`FileHolder`] reads the record stream (and the mappings described from
//! /proc) on the recording thread. The first sample of a process in an
//! interval opens the files of its executable mappings, while the process
//! still lives: `/proc/PID/map_files/` names the mapped file itself (even
//! deleted; root only), else the path in the process's root; either must
//! have the inode the kernel (or /proc/PID/maps) gave the mapping. At the
//! end of an interval [`FileHolder::take_interval`] hands the files of the
//! processes it sampled to the finisher, which closes them once the
//! interval is symbolized; the holder keeps only those of processes that
//! ran in that interval and still live.
//!
//! An open file keeps its filesystem busy: `umount` fails with EBUSY. A
//! file on a mount that appeared after rprof started (a container's root,
//! removable media) is therefore let go when the process that mapped it
//! exits, also by the finisher if it still has it to come; its interval
//! is then symbolized from the path like any other. Files on the mounts
//! rprof started with (`/`, `/tmp`, `/home`: where `go run` and build jobs
//! put binaries they delete) are kept until their interval is symbolized,
//! at most one interval past the process's exit.
//!
//! Files are opened on a thread of their own ([`Opener`]): an open on a
//! hung FUSE or NFS mount can block for ever, and the recording thread
//! must never wait (its rings would overflow). The recording thread only
//! asks, and takes in what was opened between drains.
//!
//! Cost on the recording thread: no system call at all (mappings are told
//! apart by the identity the kernel gave them); at most
//! [`FileHolder::MAX_FILES`] files open (and a quarter of the fd limit).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::abi::record_type;
use crate::perfdata::writer::AttrEntry;
use crate::perfdata::{Decoder, Mmap, Record};
use crate::symbolize::held::{HeldFile, HeldFiles};
use crate::symbolize::{open_regular, Links};

/// What the kernel (or /proc) said the mapped file is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    /// Its device and inode.
    Inode { major: u32, minor: u32, ino: u64 },
    /// Its build id (MMAP2 in the build-id form).
    BuildId(Vec<u8>),
    /// Nothing (MMAP v1, or inode 0): such a file is never shared between
    /// processes, as two of them can be different files.
    Unknown { pid: u32 },
}

impl Identity {
    fn of(map: &Mmap) -> Identity {
        match (&map.build_id, map.inode) {
            (Some(id), _) => Identity::BuildId(id.clone()),
            (None, Some(inode)) => Identity::Inode {
                major: inode.major,
                minor: inode.minor,
                ino: inode.ino,
            },
            (None, None) => Identity::Unknown { pid: map.pid },
        }
    }

    /// Whether an opened file can be the mapped one (a path may have been
    /// replaced since the mapping, a range reused). The device is not
    /// compared: overlayfs shows its own where the kernel records the
    /// layer's. A build id is checked by the symbolizer, which reads it.
    fn admits(&self, meta: &std::fs::Metadata) -> bool {
        match *self {
            Identity::Inode { ino, .. } => meta.ino() == ino,
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
    file: Arc<HeldFile>,
    /// On a mount rprof started with: may outlive the processes using it.
    on_startup_mount: bool,
}

/// A file to open, for the [`Opener`] thread.
struct OpenRequest {
    key: FileKey,
    pid: u32,
    mapping: Mapping,
}

/// What the [`Opener`] thread opened (None: could not, or not the mapped file).
struct Opened {
    key: FileKey,
    held: Option<Held>,
}

/// The thread that opens files for a [`FileHolder`] (see module docs). It
/// ends when the holder is dropped, unless an open hangs, in which case it
/// is left behind rather than waited for.
struct Opener {
    requests: SyncSender<OpenRequest>,
    results: Receiver<Opened>,
}

impl Opener {
    /// Requests waiting beyond this are refused (counted as not held).
    const QUEUE: usize = 1024;

    fn start(startup_mounts: HashMap<u64, String>) -> Option<Opener> {
        let (requests, inbox) = sync_channel::<OpenRequest>(Self::QUEUE);
        let (outbox, results) = channel();
        std::thread::Builder::new()
            .name("rprof-hold".into())
            .spawn(move || {
                for request in inbox {
                    let held =
                        open_mapped(request.pid, &request.key.0, &request.mapping).map(|file| {
                            Held {
                                on_startup_mount: is_startup_mount(&startup_mounts, &file),
                                file: HeldFile::new(file),
                            }
                        });
                    let opened = Opened {
                        key: request.key,
                        held,
                    };
                    if outbox.send(opened).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Opener { requests, results })
    }
}

/// See the module docs.
pub(crate) struct FileHolder {
    decoder: Decoder,
    /// Executable file mappings of each known process, by path (without
    /// the kernel's " (deleted)").
    mappings: HashMap<u32, HashMap<String, Mapping>>,
    open: HashMap<FileKey, Held>,
    /// Asked of the opener, not answered yet.
    pending: HashSet<FileKey>,
    /// None when no thread could be started: nothing is held.
    opener: Option<Opener>,
    /// Processes sampled in the current interval.
    sampled: HashSet<u32>,
    exited: Vec<u32>,
    limit: usize,
    /// Times a file was not held because [`FileHolder::limit`] files were open.
    over_limit: u64,
    /// Files not held because they could not be opened, or were not the
    /// mapped file any more (replaced since).
    unopened: u64,
}

impl FileHolder {
    /// At most this many files open, and a quarter of the fd limit.
    pub const MAX_FILES: usize = 4096;

    pub fn new(entries: &[AttrEntry]) -> FileHolder {
        Self::with_startup_mounts(entries, mounts())
    }

    fn with_startup_mounts(
        entries: &[AttrEntry],
        startup_mounts: HashMap<u64, String>,
    ) -> FileHolder {
        let attrs = entries.iter().map(|e| e.attr).collect();
        let ids: Vec<Vec<u64>> = entries.iter().map(|e| e.ids.clone()).collect();
        let (soft, _) = crate::sys::fd_limits();
        FileHolder {
            decoder: Decoder::new(attrs, &ids),
            mappings: HashMap::new(),
            open: HashMap::new(),
            pending: HashSet::new(),
            opener: Opener::start(startup_mounts),
            sampled: HashSet::new(),
            exited: Vec::new(),
            limit: Self::MAX_FILES.min(usize::try_from(soft / 4).unwrap_or(usize::MAX)),
            over_limit: 0,
            unopened: 0,
        }
    }

    /// Files open now, once every file asked for is opened (tests).
    #[cfg(test)]
    fn open_files(&mut self) -> usize {
        self.settle();
        self.open.len()
    }

    /// A warning when the limit kept files from being held.
    pub fn limit_warning(&self) -> Option<String> {
        (self.over_limit > 0).then(|| {
            format!(
                "{} times a module file was not held open for symbolization ({} open at most, a \
                 quarter of the open-file limit): samples in binaries deleted before their \
                 interval ended may stay unnamed; raise the limit with `ulimit -n`",
                self.over_limit, self.limit
            )
        })
    }

    /// Reads what the kernel wrote (a drain).
    pub fn scan(&mut self, bytes: &[u8]) {
        self.take_opened();
        self.scan_records(bytes);
    }

    /// Takes in what the opener opened so far (never waits).
    fn take_opened(&mut self) {
        let Some(opener) = &self.opener else {
            return;
        };
        let opened: Vec<Opened> = opener.results.try_iter().collect();
        for Opened { key, held } in opened {
            self.pending.remove(&key);
            let Some(held) = held else {
                self.unopened += 1;
                continue;
            };
            // Its processes may have exited while it was being opened.
            if !held.on_startup_mount && !self.mapped_by_a_live_process(&key) {
                held.file.release();
                continue;
            }
            self.open.insert(key, held);
        }
    }

    fn mapped_by_a_live_process(&self, key: &FileKey) -> bool {
        self.mappings.iter().any(|(pid, mappings)| {
            !self.exited.contains(pid) && mappings.get(&key.0).is_some_and(|m| m.identity == key.1)
        })
    }

    /// Waits until every file asked for is opened (tests).
    #[cfg(test)]
    fn settle(&mut self) {
        while !self.pending.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(1));
            self.take_opened();
        }
    }

    /// Reads what a new file describes from /proc (and replays from the
    /// stream): it replaces what was known of those processes' mappings,
    /// so unmapped libraries do not pile up over a process's life.
    pub fn scan_described(&mut self, bytes: &[u8]) {
        let mut described = HashSet::new();
        for_each_record(bytes, |kind, flags, body| {
            if matches!(kind, record_type::MMAP | record_type::MMAP2) {
                if let Some(Record::Mmap(map)) = self.decoder.decode(kind, flags, body) {
                    described.insert(map.pid);
                }
            }
        });
        for pid in described {
            self.mappings.remove(&pid);
        }
        self.scan_records(bytes);
    }

    fn scan_records(&mut self, bytes: &[u8]) {
        for_each_record(bytes, |kind, flags, body| {
            if !matches!(
                kind,
                record_type::SAMPLE
                    | record_type::MMAP
                    | record_type::MMAP2
                    | record_type::COMM
                    | record_type::FORK
                    | record_type::EXIT
            ) {
                return;
            }
            match self.decoder.decode(kind, flags, body) {
                Some(Record::Sample(sample)) => self.sampled_process(sample.pid),
                Some(Record::Mmap(map)) => self.mapped(&map),
                Some(Record::Comm(comm)) if comm.exec => {
                    for mapping in self.mappings.entry(comm.pid).or_default().values_mut() {
                        mapping.before_exec = true;
                    }
                }
                // A forked process maps what its parent did, with no
                // records of its own.
                Some(Record::Fork(fork)) if fork.pid != fork.ppid => {
                    self.forked(fork.pid, fork.ppid)
                }
                // The process ends with its main thread.
                Some(Record::Exit(exit)) if exit.pid == exit.tid => self.process_exited(exit.pid),
                _ => {}
            }
        });
    }

    fn mapped(&mut self, map: &Mmap) {
        if map.pid == u32::MAX || !map.is_code() || !map.filename.starts_with('/') {
            return;
        }
        let path = crate::symbolize::strip_deleted(&map.filename).to_string();
        let mapping = Mapping {
            start: map.start,
            end: map.start.saturating_add(map.len),
            identity: Identity::of(map),
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

    /// The child inherits its parent's mappings. FORK is written to the
    /// parent's CPU's ring and the child's own records (its exec, the new
    /// binary's MMAP2, its samples) to the CPU it runs on, whose ring may
    /// be drained first: what the child already has is newer and stays,
    /// and what it inherits is then from before its exec, if it exec'd.
    fn forked(&mut self, child: u32, parent: u32) {
        let Some(inherited) = self.mappings.get(&parent).cloned() else {
            return;
        };
        let own = self.mappings.entry(child).or_default();
        let seen_first = !own.is_empty();
        for (path, mapping) in inherited {
            own.entry(path).or_insert(Mapping {
                before_exec: mapping.before_exec || seen_first,
                ..mapping
            });
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
            .filter(|(path, m)| {
                !self
                    .open
                    .contains_key(&((*path).clone(), m.identity.clone()))
            })
            .map(|(path, m)| (path.clone(), m.clone()))
            .collect();
        for (path, mapping) in wanted {
            self.hold(pid, &path, &mapping);
        }
    }

    /// Lets go at once of the process's files on mounts that may be
    /// unmounted now that it is gone, also where a finished interval still
    /// has them to come (see module docs).
    fn process_exited(&mut self, pid: u32) {
        self.exited.push(pid);
        for (path, mapping) in self.mappings.get(&pid).into_iter().flatten() {
            let key = (path.clone(), mapping.identity.clone());
            if let Some(held) = self.open.get(&key).filter(|h| !h.on_startup_mount) {
                held.file.release();
                self.open.remove(&key);
            }
        }
    }

    /// Asks for the mapped file unless it is open or asked for already.
    fn hold(&mut self, pid: u32, path: &str, mapping: &Mapping) {
        let key = (path.to_string(), mapping.identity.clone());
        if self.open.contains_key(&key) || self.pending.contains(&key) {
            return;
        }
        let Some(opener) = &self.opener else {
            return;
        };
        if self.open.len() + self.pending.len() >= self.limit {
            self.over_limit += 1;
            return;
        }
        let request = OpenRequest {
            key: key.clone(),
            pid,
            mapping: mapping.clone(),
        };
        match opener.requests.try_send(request) {
            Ok(()) => {
                self.pending.insert(key);
            }
            // A hung open, or far more new files than it can open.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.over_limit += 1,
        }
    }

    /// The interval ends: the files of the processes it sampled, for its
    /// finisher. Then forgets what ended: exited processes, mappings
    /// replaced by an exec, processes gone from /proc, and files of
    /// processes that did not run in this interval.
    pub fn take_interval(&mut self) -> HeldFiles {
        self.take_opened();
        let mut held = HeldFiles::default();
        for pid in &self.sampled {
            for (path, mapping) in self.mappings.get(pid).into_iter().flatten() {
                if let Some(open) = self.open.get(&(path.clone(), mapping.identity.clone())) {
                    held.insert(*pid, path, open.file.clone());
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
                still_used.insert((path.clone(), mapping.identity.clone()));
            }
        }
        self.open.retain(|key, _| still_used.contains(key));
        held
    }
}

/// Calls `each(kind, misc, body)` for every whole record in `bytes`.
fn for_each_record(mut bytes: &[u8], mut each: impl FnMut(u32, u16, &[u8])) {
    while bytes.len() >= 8 {
        let kind = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let flags = u16::from_ne_bytes([bytes[4], bytes[5]]);
        let size = usize::from(u16::from_ne_bytes([bytes[6], bytes[7]]));
        if size < 8 || size > bytes.len() {
            return;
        }
        each(kind, flags, &bytes[8..size]);
        bytes = &bytes[size..];
    }
}

/// This process's mounts (`/proc/self/mountinfo`): id -> device, root and
/// mount point.
fn mounts() -> HashMap<u64, String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?.parse().ok()?;
            let _parent = fields.next()?;
            let rest: Vec<&str> = fields.take(3).collect();
            Some((id, rest.join(" ")))
        })
        .collect()
}

/// Whether `file` is on a mount that existed at the start.
fn is_startup_mount(startup_mounts: &HashMap<u64, String>, file: &File) -> bool {
    let Some(id) = mount_id_of(file) else {
        return false;
    };
    // Only a known id needs today's mountinfo: it may have been reused.
    let Some(at_start) = startup_mounts.get(&id) else {
        return false;
    };
    mounts().get(&id) == Some(at_start)
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
    // The mapping itself: right even for a deleted file (root only;
    // elsewhere, and for a mapping gone since, the paths).
    let map_file = format!(
        "/proc/{pid}/map_files/{:x}-{:x}",
        mapping.start, mapping.end
    );
    let in_root = format!("/proc/{pid}/root{path}");
    let found = [map_file.as_str(), in_root.as_str(), path]
        .into_iter()
        .find_map(|candidate| {
            let (file, meta) = open_regular(Path::new(candidate), Links::Follow).ok()?;
            mapping.identity.admits(&meta).then_some(file)
        });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{misc, sample, EventAttr};

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

    fn fork(pid: u32, ppid: u32) -> Vec<u8> {
        let body: Vec<u8> = [pid, ppid, pid, ppid]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .chain(0u64.to_ne_bytes())
            .collect();
        record(record_type::FORK, 0, &body)
    }

    fn comm_exec(pid: u32, name: &str) -> Vec<u8> {
        let mut body: Vec<u8> = [pid, pid].iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut name = name.as_bytes().to_vec();
        name.resize((name.len() + 8) & !7, 0);
        body.extend(name);
        record(record_type::COMM, misc::COMM_EXEC, &body)
    }

    fn entries() -> Vec<AttrEntry> {
        let attr = EventAttr {
            sample_type: sample::IP | sample::TID,
            ..EventAttr::default()
        };
        vec![AttrEntry { attr, ids: vec![] }]
    }

    fn holder() -> FileHolder {
        FileHolder::new(&entries())
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

    /// The binary is on a mount of the start (the test's own filesystem).
    #[test]
    fn an_exited_process_is_forgotten_after_its_interval() {
        let pid = std::process::id();
        let (start, end, exe) = own_code_mapping();
        let mut holder = holder();
        holder.scan(&[mmap2(pid, start, end, 0, &exe), sample(pid), exit(pid)].concat());
        holder.settle();
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
        assert!(!mounts().is_empty());
        // As if the binary's filesystem had been mounted after the start
        // (a container's root): its file must not keep it busy.
        let mut holder = FileHolder::with_startup_mounts(&entries(), HashMap::new());
        holder.scan(&[mmap2(pid, start, end, 0, &exe), sample(pid)].concat());
        assert_eq!(holder.open_files(), 1);
        let file = holder.open.values().next().unwrap().file.clone();
        // The interval that sampled it goes to be finished...
        let finishing = holder.take_interval();
        assert_eq!(finishing.len(), 1);
        assert!(!file.is_released());
        // ...and the process exits in the next one: closed for both.
        holder.scan(&[sample(pid), exit(pid)].concat());
        assert_eq!(holder.open_files(), 0);
        assert!(file.is_released());
        assert!(holder.take_interval().is_empty());
    }

    #[test]
    fn a_file_opened_after_its_process_exited_is_let_go_unless_on_a_startup_mount() {
        let pid = std::process::id();
        let (start, end, exe) = own_code_mapping();
        let mut holder = FileHolder::with_startup_mounts(&entries(), HashMap::new());
        holder.scan(&[mmap2(pid, start, end, 0, &exe), sample(pid), exit(pid)].concat());
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
        let (_, ino) = holder
            .open
            .values()
            .next()
            .unwrap()
            .file
            .identity()
            .unwrap();
        assert_eq!(ino, std::fs::metadata(exe).unwrap().ino());
    }

    #[test]
    fn a_childs_own_records_drained_before_its_fork_are_kept() {
        // The child's exec, new binary and samples were in a ring drained
        // before the one with its FORK (its parent's CPU).
        let (start, end, exe) = own_code_mapping();
        let ino = std::fs::metadata(&exe).unwrap().ino();
        let (parent, child) = (u32::MAX - 4, u32::MAX - 3);
        let mut holder = holder();
        holder.scan(
            &[
                mmap2(parent, 0x1000, 0x2000, 1, "/nonexistent/sh"),
                comm_exec(child, "work"),
                mmap2(child, start, end, ino, &exe),
                sample(child),
                fork(child, parent),
            ]
            .concat(),
        );
        holder.settle();
        let mappings = &holder.mappings[&child];
        assert!(!mappings[&exe].before_exec);
        assert!(mappings["/nonexistent/sh"].before_exec);
        // The interval gets the child's binary.
        assert_eq!(holder.take_interval().len(), 1);
    }

    #[test]
    fn a_forked_child_is_held_by_what_its_parent_mapped() {
        let (start, end, exe) = own_code_mapping();
        let ino = std::fs::metadata(&exe).unwrap().ino();
        let (parent, child) = (std::process::id(), u32::MAX - 2);
        let mut holder = holder();
        holder.scan(
            &[
                mmap2(parent, start, end, ino, &exe),
                fork(child, parent),
                sample(child),
            ]
            .concat(),
        );
        assert_eq!((holder.open_files(), holder.unopened), (1, 0));
        // The parent's samples share the same open file (same inode).
        holder.scan(&sample(parent));
        let held = holder.take_interval();
        assert_eq!((held.len(), holder.open_files()), (2, 1));
    }

    #[test]
    fn a_file_without_an_inode_is_not_shared_between_processes() {
        let (start, end, exe) = own_code_mapping();
        let (a, b) = (std::process::id(), u32::MAX - 3);
        let mut holder = holder();
        holder.scan(
            &[
                mmap2(a, start, end, 0, &exe),
                mmap2(b, start, end, 0, &exe),
                sample(a),
                sample(b),
            ]
            .concat(),
        );
        assert_eq!(holder.open_files(), 2);
    }

    #[test]
    fn a_description_from_proc_replaces_what_was_known() {
        let pid = std::process::id();
        let mut holder = holder();
        holder.scan(&mmap2(pid, 0x1000, 0x2000, 0, "/usr/lib/unloaded.so"));
        holder.scan_described(&mmap2(
            pid,
            0x3000,
            0x4000,
            0,
            "/usr/lib/current.so (deleted)",
        ));
        let paths: Vec<&String> = holder.mappings[&pid].keys().collect();
        assert_eq!(paths, ["/usr/lib/current.so"]);
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
