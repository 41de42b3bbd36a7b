//! JIT symbol maps, `/tmp/perf-PID.map`: `START SIZE NAME` per line (hex,
//! `0x` optional), written by JIT runtimes; a later line overrides earlier
//! ones for the addresses it covers (code was replaced).

use super::files;
use super::kernel::parse_hex;
use super::{Frame, Frames, ModuleRef, ModuleReport, Resolved, SymbolizeError};

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

/// Resolves raw process addresses in one perf map.
pub fn symbolize(module: &ModuleRef, addrs: &[u64]) -> Resolved {
    let mut report = ModuleReport::default();
    let map = match read_map(module) {
        Ok(text) => PerfMap::parse(&text),
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

/// Reads the map from the process's root (a containerised JIT writes its
/// own `/tmp`, under its namespace pid), else from the recorded path.
fn read_map(module: &ModuleRef) -> Result<String, SymbolizeError> {
    let mut candidates = files::candidate_paths(&module.path, module.pid);
    if let Some(nspid) = module.pid.and_then(namespace_pid) {
        let pid = module.pid.unwrap_or_default();
        candidates.insert(0, format!("/proc/{pid}/root/tmp/perf-{nspid}.map").into());
    }
    let path = candidates
        .iter()
        .find(|p| p.exists())
        .ok_or_else(|| SymbolizeError::NotFound(module.path.clone()))?;
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|source| SymbolizeError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// The innermost pid of `pid` (last `NSpid:` field), when it differs.
fn namespace_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
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
