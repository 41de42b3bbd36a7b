//! Records synthesized from /proc for what already runs when recording
//! starts (COMM, FORK for threads, MMAP2 for executable mappings), and the
//! kernel's own map. Encoded with the attr's `sample_type` so the
//! `sample_id_all` trailer matches the kernel's records; time 0.

use std::io::BufReader;

use crate::perfdata::records::{Comm, CpuMode, Mmap, SampleId, TaskEvent};
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

#[cfg(test)]
mod tests {
    use super::*;

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
