//! The kernel: text symbols from `/proc/kallsyms`, build id from
//! `/sys/kernel/notes`.

use super::{Frame, Frames, ModuleRef, ModuleReport, Resolved, SymbolizeError, SymbolizeOptions};
use crate::symbolize::debuginfo::hex;
use crate::symbolize::elf::{recorded_build_id, same_build_id};

/// How far past the highest symbol an address may still belong to it.
const LAST_SYMBOL_SPAN: u64 = 4096;

/// Kernel text symbols sorted by address: parsed from kallsyms, or the
/// per-boot cache of the core kernel's, read in place.
#[derive(Debug)]
pub struct Kallsyms {
    table: Table,
}

#[derive(Debug)]
enum Table {
    /// The kallsyms text and the symbols pointing into it.
    Parsed {
        text: Vec<u8>,
        symbols: Vec<KernelSymbol>,
    },
    /// The mapped cache file: a lookup touches a few of its pages, not
    /// its 5 MB.
    Cached(core_cache::Mapped),
}

#[derive(Debug, Clone, Copy)]
struct KernelSymbol {
    addr: u64,
    name: Span,
    /// `[module]` without brackets; empty for the core kernel.
    module: Span,
}

/// A byte range in the kallsyms text.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Kallsyms {
    /// Reads `/proc/kallsyms`, or the override text.
    pub fn load(options: &SymbolizeOptions) -> Result<Kallsyms, SymbolizeError> {
        let text = match &options.kallsyms_override {
            Some(text) => text.as_bytes().to_vec(),
            None => std::fs::read("/proc/kallsyms").map_err(|source| SymbolizeError::Io {
                path: "/proc/kallsyms".to_string(),
                source,
            })?,
        };
        Kallsyms::parse(text)
    }

    /// Symbols covering `addrs`: the per-boot core cache when it covers them
    /// all, else a full read of `/proc/kallsyms` (which refreshes the cache).
    pub fn load_for(addrs: &[u64], options: &SymbolizeOptions) -> Result<Kallsyms, SymbolizeError> {
        if options.kallsyms_override.is_none() {
            if let Some(core) = core_cache::read().filter(|core| core_cache::covers(core, addrs)) {
                return Ok(core);
            }
        }
        let full = Kallsyms::load(options)?;
        if options.kallsyms_override.is_none() {
            core_cache::write(&full);
        }
        Ok(full)
    }

    /// Parses `ADDR TYPE NAME[\t[MODULE]]` lines, keeping text symbols.
    pub fn parse(text: Vec<u8>) -> Result<Kallsyms, SymbolizeError> {
        if u32::try_from(text.len()).is_err() {
            return Err(SymbolizeError::Kallsyms("file over 4 GiB".to_string()));
        }
        // (symbol, rank): at one address prefer global, then non-weak names.
        let mut found = Vec::with_capacity(text.len() / 40);
        let mut any_text = false;
        let mut pos = 0;
        while pos < text.len() {
            let (line, next) = parse_line(&text, pos);
            if let Some((symbol, rank)) = line {
                any_text = true;
                if symbol.addr != 0 {
                    found.push((symbol, rank));
                }
            }
            pos = next;
        }
        if any_text && found.is_empty() {
            return Err(SymbolizeError::Kallsyms(
                "all addresses are 0 (kernel.kptr_restrict): run as root, or \
                 `sysctl kernel.kptr_restrict=0`"
                    .to_string(),
            ));
        }
        // The name offset breaks ties: file order, deterministic.
        found.sort_unstable_by_key(|&(symbol, rank)| (symbol.addr, rank, symbol.name.start));
        found.dedup_by_key(|(symbol, _)| symbol.addr);
        let symbols = found.into_iter().map(|(symbol, _)| symbol).collect();
        Ok(Kallsyms {
            table: Table::Parsed { text, symbols },
        })
    }

    pub fn len(&self) -> usize {
        match &self.table {
            Table::Parsed { symbols, .. } => symbols.len(),
            Table::Cached(mapped) => mapped.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn symbol(&self, index: usize) -> Option<KernelSymbol> {
        match &self.table {
            Table::Parsed { symbols, .. } => symbols.get(index).copied(),
            Table::Cached(mapped) => mapped.symbol(index),
        }
    }

    fn text(&self) -> &[u8] {
        match &self.table {
            Table::Parsed { text, .. } => text,
            Table::Cached(mapped) => mapped.text(),
        }
    }

    /// How many symbols start at or below `addr`.
    fn count_at_or_below(&self, addr: u64) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.symbol(mid) {
                Some(symbol) if symbol.addr <= addr => low = mid + 1,
                _ => high = mid,
            }
        }
        low
    }

    /// The name of the function containing `addr`, `name [module]` for
    /// module code. A symbol ends where the next one starts.
    pub fn lookup(&self, addr: u64) -> Option<String> {
        let after = self.count_at_or_below(addr);
        let symbol = self.symbol(after.checked_sub(1)?)?;
        let end = self
            .symbol(after)
            .map_or(symbol.addr.saturating_add(LAST_SYMBOL_SPAN), |next| {
                next.addr
            });
        if addr >= end {
            return None;
        }
        let name = String::from_utf8_lossy(self.span(symbol.name));
        Some(if symbol.module.start == symbol.module.end {
            name.into_owned()
        } else {
            format!(
                "{name} [{}]",
                String::from_utf8_lossy(self.span(symbol.module))
            )
        })
    }

    fn span(&self, span: Span) -> &[u8] {
        self.text()
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }
}

/// Core kernel symbols (no `[module]`) never change within a boot, while
/// generating `/proc/kallsyms` costs the kernel ~40 ms: they are cached per
/// boot so short recordings stay fast. Modules and BPF programs, which come
/// and go, always come from `/proc/kallsyms`.
mod core_cache {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
    use std::path::{Path, PathBuf};

    use super::{span, Kallsyms, KernelSymbol, Span, Table, LAST_SYMBOL_SPAN};
    use crate::symbolize::files::{open_regular, FileBytes, Links};

    const MAGIC: &[u8; 8] = b"RPKSYM01";
    const BOOT_ID_LEN: usize = 40;
    const HEADER_LEN: usize = MAGIC.len() + BOOT_ID_LEN + 8;
    const ENTRY_LEN: usize = 16;

    /// The cache file, checked to hold `count` entries and then the names;
    /// entries are decoded when looked at.
    pub struct Mapped {
        bytes: FileBytes,
        count: usize,
    }

    impl std::fmt::Debug for Mapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Mapped({} symbols)", self.count)
        }
    }

    impl Mapped {
        pub fn len(&self) -> usize {
            self.count
        }

        pub fn text(&self) -> &[u8] {
            &self.bytes[HEADER_LEN + self.count * ENTRY_LEN..]
        }

        /// Entry `index`; a name span outside the names reads as empty.
        pub fn symbol(&self, index: usize) -> Option<KernelSymbol> {
            if index >= self.count {
                return None;
            }
            let at = HEADER_LEN + index * ENTRY_LEN;
            let entry = &self.bytes[at..at + ENTRY_LEN];
            let word = |range: std::ops::Range<usize>| {
                u32::from_le_bytes(entry[range].try_into().expect("4 bytes"))
            };
            Some(KernelSymbol {
                addr: u64::from_le_bytes(entry[..8].try_into().expect("8 bytes")),
                name: Span {
                    start: word(8..12),
                    end: word(12..16),
                },
                module: Span::default(),
            })
        }
    }

    fn boot_id() -> Option<String> {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        Some(id.trim().to_string()).filter(|id| !id.is_empty() && id.len() <= BOOT_ID_LEN)
    }

    /// `$XDG_CACHE_HOME/rprof` or `~/.cache/rprof`.
    fn cache_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(base.join("rprof"))
    }

    fn cache_path(dir: &Path) -> PathBuf {
        dir.join("kallsyms-core")
    }

    /// The cached core symbols, if the cache is this boot's, ours and private.
    pub fn read() -> Option<Kallsyms> {
        read_from(&cache_dir()?)
    }

    fn read_from(dir: &Path) -> Option<Kallsyms> {
        let (file, meta) = open_regular(&cache_path(dir), Links::Refuse).ok()?;
        // Kernel addresses are secrets (KASLR): trust only our own 0600 file.
        if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
            return None;
        }
        if meta.len() < HEADER_LEN as u64 {
            return None;
        }
        let bytes = FileBytes::Mapped(crate::sys::map_read_only(&file).ok()?);
        decode(bytes, &boot_id()?)
    }

    /// Checks the header and that the entries are there; the entries are
    /// our own, written sorted, and read as they are needed.
    fn decode(bytes: FileBytes, boot_id: &str) -> Option<Kallsyms> {
        let header = bytes.get(..HEADER_LEN)?;
        if &header[..8] != MAGIC
            || header[8..8 + BOOT_ID_LEN].trim_ascii_end() != boot_id.as_bytes()
        {
            return None;
        }
        let count = usize::try_from(u64::from_le_bytes(
            header[HEADER_LEN - 8..].try_into().ok()?,
        ))
        .ok()?;
        let entries_end = HEADER_LEN.checked_add(count.checked_mul(ENTRY_LEN)?)?;
        if entries_end > bytes.len() || count == 0 {
            return None;
        }
        let mapped = Mapped { bytes, count };
        let (first, last) = (mapped.symbol(0)?, mapped.symbol(count - 1)?);
        if first.addr > last.addr {
            return None;
        }
        Some(Kallsyms {
            table: Table::Cached(mapped),
        })
    }

    /// Whether every address falls in the core kernel's text.
    pub fn covers(core: &Kallsyms, addrs: &[u64]) -> bool {
        match (
            core.symbol(0),
            core.len().checked_sub(1).and_then(|last| core.symbol(last)),
        ) {
            (Some(first), Some(last)) => {
                let end = last.addr.saturating_add(LAST_SYMBOL_SPAN);
                addrs.iter().all(|&a| a >= first.addr && a < end)
            }
            _ => false,
        }
    }

    /// Stores the core symbols of a full parse. Best effort: a read-only
    /// home only costs speed.
    pub fn write(full: &Kallsyms) {
        if let Some(dir) = cache_dir() {
            write_to(&dir, full);
        }
    }

    fn write_to(dir: &Path, full: &Kallsyms) {
        let Some(boot_id) = boot_id() else {
            return;
        };
        let path = cache_path(dir);
        let core: Vec<KernelSymbol> = (0..full.len())
            .filter_map(|index| full.symbol(index))
            .filter(|s| s.module.start == s.module.end)
            .collect();
        if core.is_empty() {
            return;
        }
        let mut names = Vec::new();
        let mut entries = Vec::with_capacity(core.len() * ENTRY_LEN);
        for symbol in &core {
            let name = full.span(symbol.name);
            let start = names.len();
            names.extend_from_slice(name);
            let Ok(end) = u32::try_from(names.len()) else {
                return;
            };
            let name_span = span(start, end as usize);
            entries.extend_from_slice(&symbol.addr.to_le_bytes());
            entries.extend_from_slice(&name_span.start.to_le_bytes());
            entries.extend_from_slice(&name_span.end.to_le_bytes());
        }
        let mut out = Vec::with_capacity(64 + entries.len() + names.len());
        out.extend_from_slice(MAGIC);
        let mut id = [b' '; BOOT_ID_LEN];
        id[..boot_id.len()].copy_from_slice(boot_id.as_bytes());
        out.extend_from_slice(&id);
        out.extend_from_slice(&(core.len() as u64).to_le_bytes());
        out.extend_from_slice(&entries);
        out.extend_from_slice(&names);
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
        // Write a private temp file, then rename over the old cache atomically.
        let tmp = dir.join(format!("kallsyms-core.{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&out));
        if written.is_err() || std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn cache_round_trips_core_symbols_only_for_the_same_boot() {
            let full = Kallsyms::parse(
                b"ffffffff81000000 T _stext\nffffffff81000100 t do_thing\nffffffffc0000000 t mod_fn\t[mod]\n".to_vec(),
            )
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            if boot_id().is_none() {
                return;
            }
            write_to(dir.path(), &full);
            let core = read_from(dir.path()).expect("cache readable");
            assert_eq!(core.lookup(0xffffffff81000104).as_deref(), Some("do_thing"));
            assert!(covers(&core, &[0xffffffff81000010]));
            assert!(
                !covers(&core, &[0xffffffffc0000004]),
                "module addresses need the full kallsyms"
            );
            let bytes = std::fs::read(cache_path(dir.path())).unwrap();
            assert!(decode(FileBytes::Owned(bytes.clone()), "another-boot").is_none());
            for cut in 0..bytes.len() {
                if let Some(cut) =
                    decode(FileBytes::Owned(bytes[..cut].to_vec()), &boot_id().unwrap())
                {
                    // Names cut off read as empty, never past the end.
                    let _ = cut.lookup(0xffffffff81000104);
                }
            }
        }
    }
}

/// Parses the line starting at `pos` in one pass (this runs 200k times):
/// the symbol if it is a text symbol, and where the next line starts.
fn parse_line(text: &[u8], mut pos: usize) -> (Option<(KernelSymbol, u8)>, usize) {
    let skip_line = |from: usize| {
        text[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| from + i + 1)
    };
    let mut addr = 0u64;
    let digits_start = pos;
    while let Some(digit) = text.get(pos).and_then(|&b| hex_digit(b)) {
        addr = addr.wrapping_shl(4) | u64::from(digit);
        pos += 1;
    }
    let digits = pos - digits_start;
    let header = text.get(pos..pos + 3);
    let kind = match header {
        Some(&[b' ', kind, b' ']) if (1..=16).contains(&digits) => kind,
        _ => return (None, skip_line(pos)),
    };
    if !matches!(kind, b't' | b'T' | b'w' | b'W') {
        return (None, skip_line(pos));
    }
    pos += 3;
    let name_start = pos;
    while pos < text.len() && text[pos] != b'\t' && text[pos] != b'\n' {
        pos += 1;
    }
    let name = span(name_start, pos);
    let mut module = Span::default();
    if text.get(pos) == Some(&b'\t') {
        let module_start = pos + 1;
        pos = skip_line(module_start);
        let field = text[module_start..pos].trim_ascii_end();
        if let Some(inner) = field.strip_prefix(b"[").and_then(|m| m.strip_suffix(b"]")) {
            module = span(module_start + 1, module_start + 1 + inner.len());
        }
    } else {
        pos += 1;
    }
    if name.start == name.end {
        return (None, pos);
    }
    let rank = u8::from(kind.is_ascii_lowercase()) * 2 + u8::from(matches!(kind, b'w' | b'W'));
    (Some((KernelSymbol { addr, name, module }, rank)), pos)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Offsets are below 4 GiB: `Kallsyms::parse` checks the length first.
fn span(start: usize, end: usize) -> Span {
    Span {
        start: start as u32,
        end: end as u32,
    }
}

pub fn parse_hex(digits: &[u8]) -> Option<u64> {
    let digits = digits
        .strip_prefix(b"0x")
        .or_else(|| digits.strip_prefix(b"0X"))
        .unwrap_or(digits);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits
        .iter()
        .try_fold(0u64, |acc, &b| Some(acc << 4 | u64::from(hex_digit(b)?)))
}

/// Resolves kernel addresses against shared, lazily loaded kallsyms.
pub fn symbolize(
    module: &ModuleRef,
    addrs: &[u64],
    options: &SymbolizeOptions,
    kallsyms: &Result<Kallsyms, String>,
) -> Resolved {
    let mut report = ModuleReport::default();
    if options.kallsyms_override.is_none() {
        report.build_id = running_kernel_build_id();
        if let (Some(recorded), Some(running)) = (recorded_build_id(module), &report.build_id) {
            if !same_build_id(recorded, running) {
                // kallsyms describes the running kernel, not the recorded one.
                let error = SymbolizeError::BuildIdMismatch {
                    recorded: hex(recorded),
                    on_disk: hex(running),
                };
                report.problem = Some(error.to_string());
                return Resolved {
                    frames: Vec::new(),
                    report,
                };
            }
        }
    }
    let kallsyms = match kallsyms {
        Ok(kallsyms) => kallsyms,
        Err(problem) => {
            report.problem = Some(problem.clone());
            return Resolved {
                frames: Vec::new(),
                report,
            };
        }
    };
    let frames = addrs
        .iter()
        .map(|&addr| {
            kallsyms
                .lookup(addr)
                .map(Frame::function_only)
                .unwrap_or_else(|| Frames::from([]))
        })
        .collect();
    Resolved { frames, report }
}

/// The GNU build id note of the running kernel.
fn running_kernel_build_id() -> Option<Vec<u8>> {
    let notes = std::fs::read("/sys/kernel/notes").ok()?;
    gnu_build_id_note(&notes)
}

/// Walks raw ELF notes (`namesz, descsz, type, name, desc`, 4-byte aligned).
fn gnu_build_id_note(mut notes: &[u8]) -> Option<Vec<u8>> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let align = |n: usize| n.checked_add(3).map(|n| n & !3);
    while notes.len() >= 12 {
        let word =
            |i: usize| u32::from_ne_bytes([notes[i], notes[i + 1], notes[i + 2], notes[i + 3]]);
        let (namesz, descsz, kind) = (word(0) as usize, word(4) as usize, word(8));
        let desc_start = 12usize.checked_add(align(namesz)?)?;
        let next = desc_start.checked_add(align(descsz)?)?;
        let name = notes.get(12..12usize.checked_add(namesz)?)?;
        let desc = notes.get(desc_start..desc_start.checked_add(descsz)?)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return Some(desc.to_vec());
        }
        notes = notes.get(next..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
ffffffff81000000 T _stext
ffffffff81000000 t startup_64
ffffffff81000100 T do_syscall_64
ffffffff81000180 D some_data
ffffffff81000200 W weak_func
ffffffff81000300 t local_func
ffffffffc0a01000 t nf_hook\t[nf_conntrack]
ffffffffc0a01040 T nf_other\t[nf_conntrack]
";

    fn parsed() -> Kallsyms {
        Kallsyms::parse(SAMPLE.as_bytes().to_vec()).expect("parse")
    }

    #[test]
    fn text_symbols_found() {
        let k = parsed();
        assert_eq!(k.lookup(0xffffffff81000000).as_deref(), Some("_stext"));
        assert_eq!(
            k.lookup(0xffffffff81000150).as_deref(),
            Some("do_syscall_64")
        );
        // Data symbols are skipped: the function extends over them.
        assert_eq!(
            k.lookup(0xffffffff81000190).as_deref(),
            Some("do_syscall_64")
        );
        assert_eq!(k.lookup(0xffffffff81000250).as_deref(), Some("weak_func"));
        assert_eq!(k.lookup(0xffffffff81000300).as_deref(), Some("local_func"));
        assert_eq!(k.lookup(0xffffffff80000000), None);
    }

    #[test]
    fn module_symbols_carry_module() {
        let k = parsed();
        assert_eq!(
            k.lookup(0xffffffffc0a01010).as_deref(),
            Some("nf_hook [nf_conntrack]")
        );
        assert_eq!(
            k.lookup(0xffffffffc0a01050).as_deref(),
            Some("nf_other [nf_conntrack]")
        );
        assert_eq!(k.lookup(0xffffffffc0a01040 + LAST_SYMBOL_SPAN), None);
    }

    #[test]
    fn kptr_restrict_reported() {
        let text = "0000000000000000 T _stext\n0000000000000000 t foo\n";
        let error = Kallsyms::parse(text.as_bytes().to_vec()).unwrap_err();
        assert!(error.to_string().contains("kptr_restrict"), "{error}");
    }

    #[test]
    fn garbage_lines_ignored() {
        let text = "zz T x\n\nffff T\nffff\tT y\n12 T ok\n";
        let k = Kallsyms::parse(text.as_bytes().to_vec()).expect("parse");
        assert_eq!(k.len(), 1);
        assert_eq!(k.lookup(0x12).as_deref(), Some("ok"));
    }

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex(b"ff"), Some(255));
        assert_eq!(parse_hex(b"0x10"), Some(16));
        assert_eq!(parse_hex(b""), None);
        assert_eq!(parse_hex(b"0x"), None);
        assert_eq!(parse_hex(b"12345678901234567"), None);
        assert_eq!(parse_hex(b"g1"), None);
    }

    #[test]
    fn build_id_note() {
        let mut notes = Vec::new();
        // A foreign note first, then the GNU build id.
        for (name, kind, desc) in [
            (&b"Xen\0"[..], 1u32, &[9u8, 9][..]),
            (b"GNU\0", 3, &[1, 2, 3, 4, 5]),
        ] {
            notes.extend((name.len() as u32).to_ne_bytes());
            notes.extend((desc.len() as u32).to_ne_bytes());
            notes.extend(kind.to_ne_bytes());
            notes.extend(name);
            notes.extend(desc);
            notes.resize(notes.len().next_multiple_of(4), 0);
        }
        assert_eq!(gnu_build_id_note(&notes), Some(vec![1, 2, 3, 4, 5]));
        assert_eq!(gnu_build_id_note(&notes[..20]), None);
    }

    #[test]
    fn real_kallsyms_parses_and_names_the_scheduler() {
        let Ok(text) = std::fs::read("/proc/kallsyms") else {
            return;
        };
        let Ok(kallsyms) = Kallsyms::parse(text) else {
            return; // kptr_restrict hides addresses from this user
        };
        assert!(
            kallsyms.len() > 1000,
            "only {} text symbols",
            kallsyms.len()
        );
        let schedule = (0..kallsyms.len())
            .filter_map(|index| kallsyms.symbol(index))
            .find(|s| kallsyms.span(s.name) == b"schedule");
        if let Some(symbol) = schedule {
            assert_eq!(
                kallsyms.lookup(symbol.addr + 1).as_deref(),
                Some("schedule")
            );
        }
    }
}
