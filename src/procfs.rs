//! Parsers for the /proc files rprof reads (text in, values out): maps
//! lines, status fields, the start of kallsyms, CPU lists. Shared by the
//! recorder and the symbolizer; the callers read the files.

use std::io::BufRead;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsLine {
    pub start: u64,
    pub end: u64,
    /// `PROT_*` bits from the `rwx` columns.
    pub prot: u32,
    /// `MAP_PRIVATE` or `MAP_SHARED` from the `p`/`s` column.
    pub flags: u32,
    pub exec: bool,
    pub pgoff: u64,
    /// File path, `[vdso]`-style name, or empty for anonymous memory.
    pub path: String,
    /// The file's device and inode; None for anonymous memory.
    pub inode: Option<crate::perfdata::records::FileInode>,
}

/// Parses `start-end perms offset dev inode   path`; the path may contain spaces.
pub fn parse_maps_line(line: &str) -> Option<MapsLine> {
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start();
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let (f, r) = trimmed.split_at(end);
        rest = r;
        (!f.is_empty()).then_some(f)
    };
    let range = field()?;
    let perms = field()?.as_bytes();
    let pgoff = field()?;
    let dev = field()?;
    let inode = field()?;
    let path = rest.trim().to_string();
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    if perms.len() < 4 || end < start {
        return None;
    }
    let mut prot = 0;
    if perms[0] == b'r' {
        prot |= libc::PROT_READ as u32;
    }
    if perms[1] == b'w' {
        prot |= libc::PROT_WRITE as u32;
    }
    if perms[2] == b'x' {
        prot |= libc::PROT_EXEC as u32;
    }
    let flags = if perms[3] == b's' {
        libc::MAP_SHARED as u32
    } else {
        libc::MAP_PRIVATE as u32
    };
    Some(MapsLine {
        start,
        end,
        prot,
        flags,
        exec: perms[2] == b'x',
        pgoff: u64::from_str_radix(pgoff, 16).ok()?,
        path,
        inode: parse_inode(dev, inode),
    })
}

/// `major:minor` (hex) and the inode (decimal); None for inode 0.
fn parse_inode(dev: &str, inode: &str) -> Option<crate::perfdata::records::FileInode> {
    let (major, minor) = dev.split_once(':')?;
    let ino = inode.parse().ok().filter(|&ino| ino != 0)?;
    Some(crate::perfdata::records::FileInode {
        major: u32::from_str_radix(major, 16).ok()?,
        minor: u32::from_str_radix(minor, 16).ok()?,
        ino,
    })
}

/// A numeric field of `/proc/PID/status` (`Tgid:`, `PPid:`).
pub fn parse_status_field(status: &str, key: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// All numbers of a `/proc/PID/status` field (`Uid:` has the real,
/// effective, saved and filesystem uid); `None` if absent or malformed.
pub fn parse_status_ids(status: &str, key: &str) -> Option<Vec<u32>> {
    let values = status.lines().find_map(|line| line.strip_prefix(key))?;
    values
        .split_ascii_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<Vec<u32>>>()
        .filter(|ids| !ids.is_empty())
}

/// The address of `_text` in kallsyms text, reading only up to that line.
pub fn find_text_address(reader: impl BufRead) -> Option<u64> {
    for line in reader.lines().take(100_000) {
        let line = line.ok()?;
        let mut parts = line.split_whitespace();
        let (Some(addr), Some(_kind), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if name == "_text" {
            return u64::from_str_radix(addr, 16).ok();
        }
    }
    None
}

/// Upper bound on CPU numbers (the kernel's largest NR_CPUS).
const MAX_CPUS: u32 = 8192;

/// Parses a kernel CPU list such as `0-3,8,10-11` (whitespace tolerated).
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let bad = || format!("bad CPU list element {part:?}");
        match part.split_once('-') {
            Some((lo, hi)) => {
                let lo: u32 = lo.trim().parse().map_err(|_| bad())?;
                let hi: u32 = hi.trim().parse().map_err(|_| bad())?;
                // The kernel's CPU numbers stay below NR_CPUS (at most 8192).
                if hi < lo || hi >= MAX_CPUS {
                    return Err(bad());
                }
                cpus.extend(lo..=hi);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// A cgroup file system mount (from `/proc/self/mountinfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted: `/sys/fs/cgroup`.
    pub mountpoint: std::path::PathBuf,
    /// The hierarchy path mounted there (`/` unless a container mounts a
    /// subtree): the kernel's cgroup paths start from the hierarchy's root.
    pub root: String,
}

/// The mount of the hierarchy whose ids PERF_SAMPLE_CGROUP reports: the
/// perf_event controller's, a cgroup v1 mount with `perf_event` among its
/// options when there is one, else cgroup v2 (where the controller always
/// is). perf looks for the same (`cgroupfs_find_mountpoint`).
pub fn perf_event_cgroup_mount(mountinfo: &str) -> Option<CgroupMount> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        // `id parent dev root mountpoint options [optional...] - fstype source superoptions`
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let after: Vec<&str> = after.split(' ').collect();
        let (Some(root), Some(mountpoint), Some(&fstype)) =
            (fields.get(3), fields.get(4), after.first())
        else {
            continue;
        };
        let mount = CgroupMount {
            mountpoint: unescape_mount_field(mountpoint).into(),
            root: unescape_mount_field(root),
        };
        match fstype {
            "cgroup" => {
                let options = after.get(2).copied().unwrap_or_default();
                if options.split(',').any(|o| o == "perf_event") {
                    return Some(mount);
                }
            }
            "cgroup2" if v2.is_none() => v2 = Some(mount),
            _ => {}
        }
    }
    v2
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` (octal).
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_list_ranges_and_singles() {
        assert_eq!(parse_cpu_list("0-1,4\n").unwrap(), vec![0, 1, 4]);
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("2-3, 0-1").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn cpu_list_rejects_garbage() {
        assert!(parse_cpu_list("a-b").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("1,x").is_err());
    }

    #[test]
    fn maps_line_with_file() {
        let l = parse_maps_line(
            "55d0c7a02000-55d0c7a07000 r-xp 00002000 fd:01 1234                       /usr/bin/cat",
        )
        .unwrap();
        assert_eq!(l.start, 0x55d0c7a02000);
        assert_eq!(l.end, 0x55d0c7a07000);
        assert_eq!(l.pgoff, 0x2000);
        assert!(l.exec);
        assert_eq!(l.prot, (libc::PROT_READ | libc::PROT_EXEC) as u32);
        assert_eq!(l.flags, libc::MAP_PRIVATE as u32);
        assert_eq!(l.path, "/usr/bin/cat");
        let inode = l.inode.unwrap();
        assert_eq!((inode.major, inode.minor, inode.ino), (0xfd, 1, 1234));
    }

    #[test]
    fn maps_line_with_spaces_deleted_and_anonymous() {
        let l = parse_maps_line("7f00-8f00 rwxs 00000000 00:05 77  /tmp/my dir/lib x.so (deleted)")
            .unwrap();
        assert_eq!(l.path, "/tmp/my dir/lib x.so (deleted)");
        assert_eq!(l.flags, libc::MAP_SHARED as u32);
        assert_ne!(l.prot & libc::PROT_WRITE as u32, 0);
        let anon = parse_maps_line("7ffd1000-7ffd3000 r-xp 00000000 00:00 0").unwrap();
        assert_eq!(anon.path, "");
        assert_eq!(anon.inode, None);
        let vdso = parse_maps_line(
            "7ffd5000-7ffd7000 r-xp 00000000 00:00 0                          [vdso]",
        )
        .unwrap();
        assert_eq!(vdso.path, "[vdso]");
        let data = parse_maps_line("7ffd5000-7ffd7000 rw-p 00000000 00:00 0  [stack]").unwrap();
        assert!(!data.exec);
    }

    #[test]
    fn maps_line_garbage_is_rejected() {
        assert_eq!(parse_maps_line(""), None);
        assert_eq!(parse_maps_line("zz-10 r-xp 0 0 0"), None);
        assert_eq!(parse_maps_line("10-20 r-xp"), None);
        assert_eq!(parse_maps_line("20-10 r-xp 0 00:00 0"), None);
    }

    #[test]
    fn own_maps_parse_and_include_an_executable_mapping() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let lines: Vec<MapsLine> = maps.lines().filter_map(parse_maps_line).collect();
        assert_eq!(lines.len(), maps.lines().count());
        assert!(lines.iter().any(|l| l.exec && !l.path.is_empty()));
    }

    #[test]
    fn status_fields_parse() {
        let status =
            "Name:\tcat\nUmask:\t0022\nState:\tR\nTgid:\t4242\nNgid:\t0\nPid:\t4243\nPPid:\t1\n";
        assert_eq!(parse_status_field(status, "Tgid:"), Some(4242));
        assert_eq!(parse_status_field(status, "PPid:"), Some(1));
        assert_eq!(parse_status_field(status, "Nope:"), None);
    }

    #[test]
    fn status_id_lists_parse() {
        let status = "Name:\tjava\nUid:\t1000\t1000\t1000\t1001\nGid:\t5\t5\t5\t5\n";
        assert_eq!(
            parse_status_ids(status, "Uid:"),
            Some(vec![1000, 1000, 1000, 1001])
        );
        assert_eq!(parse_status_ids(status, "Groups:"), None);
        assert_eq!(parse_status_ids("Uid:\t1\tx\n", "Uid:"), None);
        assert_eq!(parse_status_ids("Uid:\n", "Uid:"), None);
    }

    #[test]
    fn text_address_is_found_in_kallsyms_text() {
        let text = "0000000000000000 A fixed_percpu_data\nffffffff81000000 T _stext\nffffffff81000000 T _text\nffffffff81000010 T other\n";
        assert_eq!(find_text_address(text.as_bytes()), Some(0xffffffff81000000));
        assert_eq!(
            find_text_address("ffffffff81000000 T other\n".as_bytes()),
            None
        );
        assert_eq!(find_text_address("garbage\n\n".as_bytes()), None);
    }

    #[test]
    fn cgroup_mount_prefers_a_v1_perf_event_hierarchy_then_v2() {
        let hybrid = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let v2 = perf_event_cgroup_mount(hybrid).unwrap();
        assert_eq!(
            v2.mountpoint,
            std::path::Path::new("/sys/fs/cgroup/unified")
        );
        assert_eq!(v2.root, "/");
        let with_v1 = format!(
            "{hybrid}50 31 0:40 /kube/pod\\0401 /sys/fs/cgroup/perf\\040event rw - cgroup cgroup rw,perf_event\n"
        );
        let v1 = perf_event_cgroup_mount(&with_v1).unwrap();
        assert_eq!(
            v1.mountpoint,
            std::path::Path::new("/sys/fs/cgroup/perf event")
        );
        assert_eq!(v1.root, "/kube/pod 1");
        assert_eq!(
            perf_event_cgroup_mount("1 0 0:1 / / rw - ext4 /dev/sda rw\n"),
            None
        );
    }
}
