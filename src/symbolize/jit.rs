//! JIT symbol maps, `/tmp/perf-PID.map`: `START SIZE NAME` per line (hex,
//! `0x` optional), written by JIT runtimes; a later line overrides earlier
//! ones for the addresses it covers (code was replaced).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::files::{self, Links};
use super::kernel::parse_hex;
use super::{Frame, Frames, ModuleRef, ModuleReport, Resolved, SymbolizeError};
use crate::procfs;

#[derive(Debug, Clone, PartialEq, Eq)]
struct JitSymbol {
    start: u64,
    end: u64,
    /// Line number: a later line wins.
    seq: usize,
    name: String,
}

/// A parsed perf map, sorted by start address.
#[derive(Debug, Default)]
pub struct PerfMap {
    symbols: Vec<JitSymbol>,
    /// `max_end[i]`: the furthest end among `symbols[..=i]`, to stop the
    /// backwards scan for covering entries early.
    max_end: Vec<u64>,
}

impl PerfMap {
    pub fn parse(text: &str) -> PerfMap {
        let mut symbols: Vec<JitSymbol> = text
            .lines()
            .enumerate()
            .filter_map(|(seq, line)| parse_line(seq, line))
            .collect();
        symbols.sort_by_key(|s| (s.start, s.seq));
        let max_end = symbols
            .iter()
            .scan(0u64, |max, s| {
                *max = (*max).max(s.end);
                Some(*max)
            })
            .collect();
        PerfMap { symbols, max_end }
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The latest entry covering `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&str> {
        let after = self.symbols.partition_point(|s| s.start <= addr);
        (0..after)
            .rev()
            .take_while(|&i| self.max_end[i] > addr)
            .map(|i| &self.symbols[i])
            .filter(|s| addr < s.end)
            .max_by_key(|s| s.seq)
            .map(|s| s.name.as_str())
    }
}

fn parse_line(seq: usize, line: &str) -> Option<JitSymbol> {
    let (start, rest) = line.trim_start().split_once(' ')?;
    let (size, name) = rest.trim_start().split_once(' ')?;
    let start = parse_hex(start.as_bytes())?;
    let size = parse_hex(size.as_bytes())?;
    let name = name.trim();
    if size == 0 || name.is_empty() {
        return None;
    }
    Some(JitSymbol {
        start,
        end: start.saturating_add(size),
        seq,
        name: name.to_string(),
    })
}

/// The most of a JIT map that is read. Real maps hold a line per compiled
/// method, tens of MiB for a long-running JVM; a map past this is cut at a
/// line end, with a warning.
const MAX_MAP_BYTES: usize = 256 << 20;

/// Resolves raw process addresses in one perf map.
pub fn symbolize(module: &ModuleRef, addrs: &[u64]) -> Resolved {
    let mut report = ModuleReport::default();
    let map = match read_map(module) {
        Ok(map) => {
            if map.cut {
                report.problem = Some(format!(
                    "the JIT map is larger than {} MiB; only its start was read, so code \
                     compiled later may be unnamed or misnamed",
                    MAX_MAP_BYTES >> 20
                ));
            }
            PerfMap::parse(&map.text)
        }
        Err(error) => {
            // Most processes have no JIT: addresses outside every mapping
            // are then simply unknown, which is no problem worth a warning.
            if !matches!(error, SymbolizeError::NotFound(_)) {
                report.problem = Some(error.to_string());
            }
            return Resolved {
                frames: Vec::new(),
                report,
            };
        }
    };
    if map.is_empty() {
        report.problem = Some(SymbolizeError::NoSymbols.to_string());
    }
    let frames = addrs
        .iter()
        .map(|&addr| {
            map.lookup(addr)
                .map(|name| Frame::function_only(name.to_string()))
                .unwrap_or_else(|| Frames::from([]))
        })
        .collect();
    Resolved { frames, report }
}

/// A JIT map's text, and whether it was cut at [`MAX_MAP_BYTES`].
struct MapText {
    text: String,
    cut: bool,
}

/// Reads the map from the process's root (a containerised JIT writes its
/// own `/tmp`, under its namespace pid), else from the recorded path.
fn read_map(module: &ModuleRef) -> Result<MapText, SymbolizeError> {
    let mut candidates = files::candidate_paths(&module.path, module.pid);
    if let Some(nspid) = module.pid.and_then(namespace_pid) {
        let pid = module.pid.unwrap_or_default();
        candidates.insert(0, format!("/proc/{pid}/root/tmp/perf-{nspid}.map").into());
    }
    // Anything at the path counts, a dangling symbolic link too: it is refused.
    let path = candidates
        .iter()
        .find(|p| p.symlink_metadata().is_ok())
        .ok_or_else(|| SymbolizeError::NotFound(module.path.clone()))?;
    read_trusted_map(path, module.pid, MAX_MAP_BYTES)
}

/// Reads at most `max_bytes` of the map at `path`, if it can be trusted.
///
/// `/tmp` is writable by everyone, so anyone could plant
/// `/tmp/perf-PID.map` for someone else's process: the map must be a
/// regular file (no symbolic link, no FIFO or device), owned by root, by
/// the user running rprof (perf's rule), or by the user the profiled
/// process `pid` runs as, read from `/proc/PID/status` while it lives. A
/// recording does not hold the process's user, so once it has exited only
/// the first two remain (and if its pid was reused meanwhile, the new
/// process's user is the one trusted).
fn read_trusted_map(
    path: &Path,
    pid: Option<u32>,
    max_bytes: usize,
) -> Result<MapText, SymbolizeError> {
    let io_error = |source| SymbolizeError::Io {
        path: path.display().to_string(),
        source,
    };
    let (file, meta) = files::open_regular(path, Links::Refuse).map_err(io_error)?;
    let me = nix::unistd::geteuid().as_raw();
    let process_uids = pid.and_then(process_uids).unwrap_or_default();
    if !trusted_owner(meta.uid(), me, &process_uids) {
        let process = match process_uids.as_slice() {
            [] => String::new(),
            uids => format!(", nor the profiled process (uid {})", join(uids)),
        };
        return Err(SymbolizeError::Untrusted {
            path: path.display().to_string(),
            detail: format!(
                "it is owned by uid {}, which is neither root, nor you (uid {me}){process}, so \
                 another user may have planted it; if you trust it, chown it to one of them",
                meta.uid()
            ),
        });
    }
    let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX);
    let expected = usize::try_from(meta.len().min(limit)).unwrap_or(max_bytes);
    let mut bytes = Vec::with_capacity(expected.saturating_add(1));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    let cut = bytes.len() > max_bytes;
    if cut {
        // Up to the last whole line within the bound.
        let end = bytes[..max_bytes]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        bytes.truncate(end);
    }
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok(MapText { text, cut })
}

/// Whether a JIT map owned by `owner` may be trusted; see [`read_trusted_map`].
fn trusted_owner(owner: u32, me: u32, process_uids: &[u32]) -> bool {
    owner == 0 || owner == me || process_uids.contains(&owner)
}

fn join(uids: &[u32]) -> String {
    let uids: Vec<String> = uids.iter().map(u32::to_string).collect();
    uids.join(", ")
}

fn proc_status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The distinct uids `pid` runs as (real, effective, saved, filesystem):
/// it can act as any of them, so a file owned by one may be its own.
fn process_uids(pid: u32) -> Option<Vec<u32>> {
    let mut uids = procfs::parse_status_ids(&proc_status(pid)?, "Uid:")?;
    uids.sort_unstable();
    uids.dedup();
    Some(uids)
}

/// The innermost pid of `pid` (last `NSpid:` field), when it differs.
fn namespace_pid(pid: u32) -> Option<u32> {
    let status = proc_status(pid)?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    let nspid: u32 = line.split_ascii_whitespace().last()?.parse().ok()?;
    (nspid != pid).then_some(nspid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_looks_up() {
        let map = PerfMap::parse(
            "1000 100 js:foo\n\
             0x2000 0x10 LazyCompile: bar baz.js:10\n\
             bad line\n\
             3000 0 empty\n",
        );
        assert_eq!(map.len(), 2);
        assert_eq!(map.lookup(0x1000), Some("js:foo"));
        assert_eq!(map.lookup(0x10ff), Some("js:foo"));
        assert_eq!(map.lookup(0x1100), None);
        assert_eq!(map.lookup(0x2008), Some("LazyCompile: bar baz.js:10"));
        assert_eq!(map.lookup(0x3000), None);
        assert_eq!(map.lookup(0x0), None);
    }

    /// `/tmp/perf-PID.map` for this process's pid, removed when dropped.
    struct OwnTmpMap(std::path::PathBuf);

    impl OwnTmpMap {
        fn new() -> OwnTmpMap {
            let path = format!("/tmp/perf-{}.map", std::process::id());
            let _ = std::fs::remove_file(&path);
            OwnTmpMap(path.into())
        }
    }

    impl Drop for OwnTmpMap {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn own_jit_module() -> ModuleRef {
        ModuleRef {
            kind: super::super::ModuleKind::Jit,
            path: format!("/tmp/perf-{}.map", std::process::id()),
            build_id: None,
            pid: Some(std::process::id()),
        }
    }

    #[test]
    fn a_tmp_map_that_is_a_symlink_to_dev_zero_is_refused() {
        let map = OwnTmpMap::new();
        std::os::unix::fs::symlink("/dev/zero", &map.0).unwrap();
        let resolved = symbolize(&own_jit_module(), &[0x1000]);
        assert!(resolved.frames.is_empty());
        let problem = resolved.report.problem.expect("a problem");
        assert!(problem.contains("symbolic link"), "{problem}");
    }

    #[test]
    fn a_tmp_map_owned_by_us_is_read() {
        let map = OwnTmpMap::new();
        std::fs::write(&map.0, "1000 100 jitted\n").unwrap();
        let resolved = symbolize(&own_jit_module(), &[0x1010]);
        assert_eq!(resolved.report.problem, None);
        assert_eq!(
            resolved.frames[0][0].function.as_deref(),
            Some("jitted"),
            "{:?}",
            resolved.frames
        );
    }

    #[test]
    fn a_fifo_map_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("perf-1.map");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let error = read_trusted_map(&fifo, None, MAX_MAP_BYTES).err().unwrap();
        assert!(error.to_string().contains("a FIFO"), "{error}");
    }

    #[test]
    fn trusted_owners_are_root_you_and_the_profiled_process() {
        assert!(trusted_owner(0, 1000, &[]));
        assert!(trusted_owner(1000, 1000, &[]));
        assert!(trusted_owner(1001, 0, &[1001, 1002]));
        assert!(!trusted_owner(1001, 1000, &[]));
        assert!(!trusted_owner(65534, 0, &[1000]));
    }

    #[test]
    fn a_map_owned_by_another_user_is_refused_unless_the_process_runs_as_them() {
        if !crate::sys::is_root() {
            eprintln!("skipped: needs root to give a file to another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perf-1.map");
        std::fs::write(&path, "1000 100 planted\n").unwrap();
        let nobody = nix::unistd::Uid::from_raw(65534);
        nix::unistd::chown(&path, Some(nobody), None).unwrap();

        // Profiling ourselves (root): nobody's map is not ours.
        let error = read_trusted_map(&path, Some(std::process::id()), MAX_MAP_BYTES)
            .err()
            .expect("nobody's map was trusted");
        let message = error.to_string();
        assert!(
            message.contains("owned by uid 65534") && message.contains("chown"),
            "{message}"
        );
        // The same map for a process that runs as nobody is its own.
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .uid(65534)
            .spawn()
            .unwrap();
        let read = read_trusted_map(&path, Some(child.id()), MAX_MAP_BYTES);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(read.unwrap().text, "1000 100 planted\n");
    }

    #[test]
    fn a_map_past_the_bound_is_cut_at_a_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perf-1.map");
        let text: String = (0..100)
            .map(|i| format!("{:x} 10 method_{i}\n", 0x1000 + i * 0x10))
            .collect();
        std::fs::write(&path, &text).unwrap();
        let map = read_trusted_map(&path, None, 1000).unwrap();
        assert!(map.cut);
        assert!(map.text.len() <= 1000 && map.text.ends_with('\n'));
        assert!(text.starts_with(&map.text));
        let parsed = PerfMap::parse(&map.text);
        assert_eq!(parsed.lookup(0x1000), Some("method_0"));
        assert_eq!(parsed.lookup(0x1000 + 99 * 0x10), None);
        let whole = read_trusted_map(&path, None, text.len()).unwrap();
        assert!(!whole.cut);
        assert_eq!(whole.text, text);
    }

    #[test]
    fn later_entries_override() {
        let map = PerfMap::parse(
            "1000 1000 big_old\n\
             1400 100 small_new\n\
             1000 1000 replaced\n\
             1800 10 newest\n",
        );
        assert_eq!(map.lookup(0x1450), Some("replaced"));
        assert_eq!(map.lookup(0x1805), Some("newest"));
        assert_eq!(map.lookup(0x1900), Some("replaced"));
        assert_eq!(map.lookup(0x2000), None);
    }
}
