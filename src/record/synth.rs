//! Records synthesized from /proc for what already runs when recording
//! starts (COMM, FORK for threads, MMAP2 for executable mappings), the
//! kernel's own map, and (`--label-cgroup`) the cgroups that exist.
//! Encoded with the attr's `sample_type` so the `sample_id_all` trailer
//! matches the kernel's records; time 0.

use std::io::BufReader;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::perfdata::records::{CgroupRecord, Comm, CpuMode, Mmap, SampleId, TaskEvent};
use crate::perfdata::writer::encode;
use crate::procfs::{find_text_address, parse_maps_line, MapsLine};
use crate::record::target::list_threads;

/// perf's name for the kernel image map.
pub(crate) const KERNEL_MMAP_NAME: &str = "[kernel.kallsyms]_text";

fn id(pid: u32, tid: u32) -> SampleId {
    SampleId {
        pid: Some(pid),
        tid: Some(tid),
        time: Some(0),
        id: None,
        cpu: Some(0),
    }
}

/// The kernel image map: pid -1, `[kernel.kallsyms]_text` from `_text` to
/// the end of the address space, pgoff = start (perf's convention). The
/// start is 0 when kallsyms hides addresses (kptr_restrict).
pub(crate) fn kernel_mmap(sample_type: u64) -> Vec<u8> {
    let start = std::fs::File::open("/proc/kallsyms")
        .ok()
        .and_then(|f| find_text_address(BufReader::new(f)))
        .unwrap_or(0);
    kernel_mmap_at(sample_type, start)
}

pub(crate) fn kernel_mmap_at(sample_type: u64, start: u64) -> Vec<u8> {
    encode::mmap2(
        sample_type,
        &Mmap {
            cpumode: CpuMode::Kernel,
            pid: u32::MAX,
            tid: 0,
            start,
            len: u64::MAX - start,
            pgoff: start,
            filename: KERNEL_MMAP_NAME.to_string(),
            build_id: None,
            inode: None,
            prot: (libc::PROT_READ | libc::PROT_EXEC) as u32,
            flags: libc::MAP_PRIVATE as u32,
            sample_id: id(u32::MAX, 0),
        },
    )
}

/// The MMAP2 record for a mapping of `pid`: executable ones, and with
/// `data` the others too (as the kernel reports them under `mmap_data`).
pub(crate) fn mmap_record(
    sample_type: u64,
    pid: u32,
    line: &MapsLine,
    data: bool,
) -> Option<Vec<u8>> {
    if !line.exec && !data {
        return None;
    }
    let filename = if line.path.is_empty() {
        "//anon".to_string()
    } else {
        line.path.clone()
    };
    Some(encode::mmap2(
        sample_type,
        &Mmap {
            cpumode: CpuMode::User,
            pid,
            tid: pid,
            start: line.start,
            len: line.end - line.start,
            pgoff: line.pgoff,
            filename,
            build_id: None,
            inode: line.inode,
            prot: line.prot,
            flags: line.flags,
            sample_id: id(pid, pid),
        },
    ))
}

fn read_comm(pid: u32, tid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
    Some(comm.trim_end_matches('\n').to_string())
}

/// Appends COMM for every thread, FORK for the non-main threads, and MMAP2
/// for the executable mappings of process `pid` (all its mappings with
/// `data`). Returns false when the process vanished before it could be read.
pub(crate) fn synthesize_process(
    sample_type: u64,
    pid: u32,
    data: bool,
    out: &mut Vec<u8>,
) -> bool {
    let Ok(tids) = list_threads(pid) else {
        return false;
    };
    for tid in tids {
        let Some(comm) = read_comm(pid, tid) else {
            continue;
        };
        if tid != pid {
            out.extend(encode::fork(
                sample_type,
                &TaskEvent {
                    pid,
                    ppid: pid,
                    tid,
                    ptid: pid,
                    time: 0,
                    sample_id: id(pid, tid),
                },
            ));
        }
        out.extend(encode::comm(
            sample_type,
            &Comm {
                pid,
                tid,
                comm,
                exec: false,
                sample_id: id(pid, tid),
            },
        ));
    }
    // Kernel threads have empty maps; other users' processes may be unreadable.
    if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        for line in maps.lines().filter_map(parse_maps_line) {
            if let Some(record) = mmap_record(sample_type, pid, &line, data) {
                out.extend(record);
            }
        }
    }
    true
}

/// `root` and every process descended from it (a launched command's tree,
/// described again in each file of a rotating recording).
pub(crate) fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        next += 1;
    }
    tree.sort_unstable();
    tree.dedup();
    tree
}

/// The parent pid in `/proc/PID/stat` (after the parenthesised comm,
/// which may itself hold spaces and parentheses).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// Every process in /proc (system-wide mode).
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// The most cgroups described at the start: hosts have thousands; far more
/// means something walks where it should not, and the file stays bounded.
pub(crate) const MAX_CGROUPS: usize = 100_000;

/// What describing the existing cgroups came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CgroupWalk {
    pub written: usize,
    /// Stopped at the limit: cgroups left undescribed.
    pub truncated: bool,
    /// Directories that could not be read (the first error, and how many).
    pub unreadable: Option<(String, usize)>,
}

impl CgroupWalk {
    /// What the user should hear about the walk under `mountpoint`.
    pub fn warnings(&self, mountpoint: &Path) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.truncated {
            warnings.push(format!(
                "more than {MAX_CGROUPS} cgroups under {}: the others are labelled by id \
                 (`cgroup_id`), not path",
                mountpoint.display()
            ));
        }
        if let Some((first, count)) = &self.unreadable {
            warnings.push(format!(
                "{count} cgroup directories could not be read ({first}): their samples are \
                 labelled by id, not path"
            ));
        }
        warnings
    }
}

/// Appends a CGROUP record for every cgroup under `mountpoint` (the
/// directory tree of a cgroup file system), as perf does at the start: each
/// directory's id is its inode number (the kernfs node id on 64-bit), its
/// path `root` plus the path below the mount. Symbolic links and other
/// file systems mounted inside are not followed; at most `limit` records.
pub(crate) fn synthesize_cgroups(
    sample_type: u64,
    mountpoint: &Path,
    root: &str,
    limit: usize,
    out: &mut Vec<u8>,
) -> CgroupWalk {
    let mut walk = CgroupWalk::default();
    let Ok(top) = std::fs::symlink_metadata(mountpoint) else {
        walk.unreadable = Some((format!("cannot read {}", mountpoint.display()), 1));
        return walk;
    };
    let root = root.trim_end_matches('/');
    // (directory, its cgroup path, its inode); depth first.
    let mut pending: Vec<(PathBuf, String, u64)> =
        vec![(mountpoint.to_path_buf(), String::new(), top.ino())];
    while let Some((dir, relative, ino)) = pending.pop() {
        if walk.written == limit {
            walk.truncated = true;
            break;
        }
        let path = match format!("{root}{relative}") {
            empty if empty.is_empty() => "/".to_string(),
            path => path,
        };
        out.extend(encode::cgroup(
            sample_type,
            &CgroupRecord {
                id: ino,
                path,
                sample_id: id(0, 0),
            },
        ));
        walk.written += 1;
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Removed since its parent was listed: nothing to describe.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                let first = format!("{}: {e}", dir.display());
                let (_, count) = walk.unreadable.get_or_insert((first, 0));
                *count += 1;
                continue;
            }
        };
        for entry in entries.flatten() {
            // DirEntry metadata does not follow symbolic links.
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if !meta.is_dir() || meta.dev() != top.dev() {
                continue;
            }
            // Memory too stays bounded, however wide a directory is.
            if walk.written + pending.len() >= limit {
                walk.truncated = true;
                break;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            pending.push((entry.path(), format!("{relative}/{name}"), meta.ino()));
        }
    }
    walk
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::record_type;

    /// (id, path) of CGROUP records encoded without a trailer.
    fn cgroup_records(mut bytes: &[u8]) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        while bytes.len() >= 8 {
            let kind = u32::from_ne_bytes(bytes[..4].try_into().unwrap());
            let size = u16::from_ne_bytes(bytes[6..8].try_into().unwrap()) as usize;
            assert_eq!(kind, record_type::CGROUP);
            assert_eq!(size % 8, 0);
            let id = u64::from_ne_bytes(bytes[8..16].try_into().unwrap());
            let path = crate::abi::cursor::c_string(&bytes[16..size]);
            out.push((id, path));
            bytes = &bytes[size..];
        }
        out.sort();
        out
    }

    fn ino(path: &Path) -> u64 {
        std::fs::symlink_metadata(path).unwrap().ino()
    }

    #[test]
    fn cgroup_tree_is_described_by_inode_and_path_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path();
        std::fs::create_dir_all(top.join("system.slice/nginx.service")).unwrap();
        std::fs::create_dir_all(top.join("user.slice")).unwrap();
        std::fs::write(top.join("cgroup.procs"), "1\n").unwrap();
        // A link back up must not be walked (it would loop).
        std::os::unix::fs::symlink(top, top.join("user.slice/loop")).unwrap();
        let mut out = Vec::new();
        let walk = synthesize_cgroups(0, top, "/", 100, &mut out);
        assert_eq!(
            walk,
            CgroupWalk {
                written: 4,
                ..CgroupWalk::default()
            }
        );
        let mut expected = vec![
            (ino(top), "/".to_string()),
            (ino(&top.join("system.slice")), "/system.slice".into()),
            (
                ino(&top.join("system.slice/nginx.service")),
                "/system.slice/nginx.service".into(),
            ),
            (ino(&top.join("user.slice")), "/user.slice".into()),
        ];
        expected.sort();
        assert_eq!(cgroup_records(&out), expected);

        // A container's mount of a subtree: paths from the hierarchy root.
        let mut out = Vec::new();
        synthesize_cgroups(0, &top.join("system.slice"), "/kube/pod", 100, &mut out);
        let paths: Vec<String> = cgroup_records(&out).into_iter().map(|r| r.1).collect();
        assert_eq!(paths, ["/kube/pod", "/kube/pod/nginx.service"]);
    }

    #[test]
    fn cgroup_walk_stops_at_its_limit_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            std::fs::create_dir(dir.path().join(format!("c{i}"))).unwrap();
        }
        let mut out = Vec::new();
        let walk = synthesize_cgroups(0, dir.path(), "/", 4, &mut out);
        assert_eq!((walk.written, walk.truncated), (4, true));
        assert_eq!(cgroup_records(&out).len(), 4);
        let warnings = walk.warnings(dir.path());
        assert!(warnings[0].starts_with("more than"), "{warnings:?}");

        let missing = dir.path().join("gone");
        let walk = synthesize_cgroups(0, &missing, "/", 4, &mut Vec::new());
        assert_eq!(walk.written, 0);
        assert!(walk.warnings(&missing)[0].contains("could not be read"));
    }

    #[test]
    fn process_tree_holds_the_root_and_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("run sleep");
        let me = std::process::id();
        let tree = process_tree(me);
        let _ = child.kill();
        let _ = child.wait();
        assert!(tree.contains(&me) && tree.contains(&child.id()), "{tree:?}");
        assert_eq!(parent_of(child.id()), None, "reaped: gone from /proc");
    }
}
