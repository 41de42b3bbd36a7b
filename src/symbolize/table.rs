//! The symbol table: what a recording embeds (RPROF_SYMBOLS) and what the
//! report looks names up in.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Frame, Frames, ModuleKind, ModuleRef};

const MAGIC: &[u8; 4] = b"RPSY";
const VERSION: u32 = 1;

// Frame flag bits.
const HAS_FUNCTION: u8 = 1;
const HAS_FILE: u8 = 2;
const INLINED: u8 = 4;

#[derive(Debug, Clone, Default)]
pub struct SymbolTable {
    modules: Vec<ModuleRef>,
    module_index: HashMap<ModuleRef, u32>,
    /// A B-tree, not a hash map: a recording's table has hundreds of
    /// thousands of entries, looked up once each, and a B-tree holds them
    /// in about half the memory.
    entries: BTreeMap<(u32, u64), Frames>,
}

#[derive(Debug, thiserror::Error)]
#[error("symbol table: {0}")]
pub struct DecodeError(pub String);

impl SymbolTable {
    pub fn new() -> SymbolTable {
        SymbolTable::default()
    }

    /// Interns a module, returning its index.
    pub fn module_id(&mut self, module: &ModuleRef) -> u32 {
        if let Some(&id) = self.module_index.get(module) {
            return id;
        }
        let id = self.modules.len() as u32;
        self.modules.push(module.clone());
        self.module_index.insert(module.clone(), id);
        id
    }

    pub fn find_module(&self, module: &ModuleRef) -> Option<u32> {
        self.module_index.get(module).copied()
    }

    /// The table's entry for a module seen in a recording: same kind and
    /// path, preferring the same build id; the pid that mapped it does not
    /// matter (a library is the same file in every process).
    pub fn find_recorded(&self, module: &ModuleRef) -> Option<u32> {
        let mut by_path = None;
        for (index, candidate) in self.modules.iter().enumerate() {
            if candidate.kind != module.kind || candidate.path != module.path {
                continue;
            }
            if candidate.build_id == module.build_id {
                return Some(index as u32);
            }
            by_path.get_or_insert(index as u32);
        }
        by_path
    }

    pub fn modules(&self) -> &[ModuleRef] {
        &self.modules
    }

    pub fn insert(&mut self, module: u32, addr: u64, frames: Vec<Frame>) {
        self.entries.insert((module, addr), frames.into());
    }

    /// Like [`SymbolTable::insert`], sharing frames already built (many
    /// addresses on one line have the same frames).
    pub fn insert_frames(&mut self, module: u32, addr: u64, frames: Frames) {
        self.entries.insert((module, addr), frames);
    }

    pub fn lookup(&self, module: u32, addr: u64) -> Option<&Frames> {
        self.entries.get(&(module, addr))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds everything from `other` (entries of `other` win on conflict).
    pub fn merge(&mut self, other: SymbolTable) {
        let ids: Vec<u32> = other.modules.iter().map(|m| self.module_id(m)).collect();
        for ((module, addr), frames) in other.entries {
            self.entries.insert((ids[module as usize], addr), frames);
        }
    }

    /// Compact binary encoding for the RPROF_SYMBOLS feature section
    /// (versioned, strings interned once).
    ///
    /// Layout (integers are LEB128 unless noted):
    /// `"RPSY" version:u32le`, strings `count (len bytes)*`, modules
    /// `count (kind:u8 path build_id_len+1 bytes pid+1)*` (0 = none),
    /// entries `count (module addr_delta nframes frame*)*` sorted by
    /// (module, addr) with the address delta-coded within a module, and
    /// frames `flags:u8 [function] [file] line`.
    pub fn encode(&self) -> Vec<u8> {
        let mut strings = Interner::default();
        let mut body = Vec::new();

        put_varint(&mut body, self.modules.len() as u64);
        for module in &self.modules {
            body.push(kind_code(module.kind));
            put_varint(&mut body, strings.id(&module.path));
            match &module.build_id {
                Some(id) => {
                    put_varint(&mut body, id.len() as u64 + 1);
                    body.extend_from_slice(id);
                }
                None => put_varint(&mut body, 0),
            }
            put_varint(&mut body, module.pid.map_or(0, |pid| u64::from(pid) + 1));
        }

        let mut keys: Vec<&(u32, u64)> = self.entries.keys().collect();
        keys.sort_unstable();
        put_varint(&mut body, keys.len() as u64);
        let mut previous: Option<(u32, u64)> = None;
        for &(module, addr) in keys {
            let base = previous.filter(|p| p.0 == module).map_or(0, |p| p.1);
            put_varint(&mut body, u64::from(module));
            put_varint(&mut body, addr - base);
            let frames = &self.entries[&(module, addr)];
            put_varint(&mut body, frames.len() as u64);
            for frame in frames.iter() {
                put_frame(&mut body, frame, &mut strings);
            }
            previous = Some((module, addr));
        }

        let mut out = Vec::with_capacity(body.len() + strings.bytes + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        put_varint(&mut out, strings.list.len() as u64);
        for string in &strings.list {
            put_varint(&mut out, string.len() as u64);
            out.extend_from_slice(string.as_bytes());
        }
        out.extend_from_slice(&body);
        out
    }

    /// Decodes [`SymbolTable::encode`]'s output; bounds-checked, never panics.
    ///
    /// Memory stays proportional to the input: every count is checked
    /// against what the bytes left can hold before anything is allocated for
    /// it, entries with the same encoded frames share them, and the strings
    /// copied into frames are charged against a budget proportional to the
    /// input (see `decoded_bytes_budget`).
    pub fn decode(bytes: &[u8]) -> Result<SymbolTable, DecodeError> {
        let mut input = Input { bytes, pos: 0 };
        if input.take(4)? != MAGIC {
            return Err(DecodeError("bad magic (not an RPSY table)".to_string()));
        }
        let version = u32::from_le_bytes(input.array()?);
        if version != VERSION {
            return Err(DecodeError(format!(
                "unsupported version {version} (this build reads {VERSION})"
            )));
        }

        let count = input.count("strings", MIN_STRING_BYTES)?;
        let mut strings = Vec::with_capacity(count);
        for _ in 0..count {
            let len = input.count("string bytes", 1)?;
            let text = std::str::from_utf8(input.take(len)?)
                .map_err(|_| DecodeError("string is not UTF-8".to_string()))?;
            strings.push(text);
        }
        let string = |index: u64| -> Result<(usize, &str), DecodeError> {
            usize::try_from(index)
                .ok()
                .and_then(|i| Some((i, strings.get(i).copied()?)))
                .ok_or_else(|| DecodeError(format!("string index {index} out of range")))
        };
        // Each string becomes one shared copy, made when a frame first names it.
        let mut shared_strings: Vec<Option<Arc<str>>> = vec![None; strings.len()];

        let mut table = SymbolTable::new();
        let count = input.count("modules", MIN_MODULE_BYTES)?;
        let mut module_ids = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = kind_from_code(input.u8()?)?;
            let path = string(input.varint()?)?.1.to_string();
            let build_id = match input.count("build id bytes", 1)? {
                0 => None,
                len => Some(input.take(len - 1)?.to_vec()),
            };
            let pid = match input.varint()? {
                0 => None,
                pid => Some(
                    u32::try_from(pid - 1).map_err(|_| DecodeError(format!("bad pid {pid}")))?,
                ),
            };
            let module = ModuleRef {
                kind,
                path,
                build_id,
                pid,
            };
            module_ids.push(table.module_id(&module));
        }

        let count = input.count("entries", MIN_ENTRY_BYTES)?;
        let mut budget = decoded_bytes_budget(bytes.len());
        // Neighbouring addresses on one line have the same frames (entries
        // are sorted by address): they share one copy.
        let mut previous_frames: Option<(&[u8], Frames)> = None;
        let mut previous: Option<(u64, u64)> = None;
        for _ in 0..count {
            let module = input.varint()?;
            let base = previous.filter(|p| p.0 == module).map_or(0, |p| p.1);
            let addr = base
                .checked_add(input.varint()?)
                .ok_or_else(|| DecodeError("address overflows".to_string()))?;
            let id = usize::try_from(module)
                .ok()
                .and_then(|m| module_ids.get(m).copied())
                .ok_or_else(|| DecodeError(format!("module index {module} out of range")))?;
            // Read once to find where the frames end; decoded only if new.
            let start = input.pos;
            let nframes = input.count("frames", MIN_FRAME_BYTES)?;
            if nframes == 0 {
                return Err(DecodeError(format!("entry {addr:#x} has no frames")));
            }
            for _ in 0..nframes {
                read_frame(&mut input, &string)?;
            }
            let encoded = &bytes[start..input.pos];
            let frames = match &previous_frames {
                Some((same, frames)) if *same == encoded => frames.clone(),
                _ => {
                    let mut again = Input { bytes, pos: start };
                    again.varint()?;
                    budget.charge(nframes.saturating_mul(std::mem::size_of::<Frame>()))?;
                    let mut frames = Vec::with_capacity(nframes);
                    for _ in 0..nframes {
                        let frame = read_frame(&mut again, &string)?;
                        frames.push(frame.to_frame(&mut shared_strings, &mut budget)?);
                    }
                    let frames = Frames::from(frames);
                    previous_frames = Some((encoded, frames.clone()));
                    frames
                }
            };
            table.insert_frames(id, addr, frames);
            previous = Some((module, addr));
        }
        if input.pos != bytes.len() {
            return Err(DecodeError(format!(
                "{} trailing bytes",
                bytes.len() - input.pos
            )));
        }
        Ok(table)
    }
}

/// The fewest encoded bytes each element takes, so that a count can be
/// checked against the bytes left before anything is allocated for it.
const MIN_STRING_BYTES: usize = 1; // its length
const MIN_MODULE_BYTES: usize = 4; // kind, path, build id length, pid
const MIN_FRAME_BYTES: usize = 2; // flags, line
const MIN_ENTRY_BYTES: usize = 3 + MIN_FRAME_BYTES; // module, address, frame count, a frame

/// How many bytes a table of `encoded_len` bytes may decode to. Strings are
/// stored once but copied into every frame that names them, so a crafted
/// table naming one long string from many frames would need gigabytes from
/// kilobytes. Real tables decode to 4 to 7 times their size (rprof's own
/// Rust names and paths); C++ templates run to a few hundred bytes a name.
/// 256 times plus 16 MiB leaves room for them all.
fn decoded_bytes_budget(encoded_len: usize) -> Budget {
    Budget {
        limit: encoded_len.saturating_mul(256).saturating_add(16 << 20),
        used: 0,
    }
}

/// Bytes of frames and their strings decoded so far, against a limit.
struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    fn charge(&mut self, bytes: usize) -> Result<(), DecodeError> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(DecodeError(format!(
                "its frames would take more than {} bytes in memory, far more than a real \
                 table of this size: the section is corrupt or crafted",
                self.limit
            )));
        }
        Ok(())
    }
}

/// A string of the table: its index and text.
type TableString<'a> = (usize, &'a str);

/// One encoded frame, its strings still borrowed from the table.
struct RawFrame<'a> {
    function: Option<TableString<'a>>,
    file: Option<TableString<'a>>,
    line: u32,
    inlined: bool,
}

impl RawFrame<'_> {
    /// The frame, its strings shared through `shared` (by string index);
    /// each string's first copy is charged to `budget`.
    fn to_frame(
        &self,
        shared: &mut [Option<Arc<str>>],
        budget: &mut Budget,
    ) -> Result<Frame, DecodeError> {
        let mut share = |string: Option<TableString<'_>>| -> Result<_, DecodeError> {
            let Some((index, text)) = string else {
                return Ok(None);
            };
            let slot = &mut shared[index];
            if slot.is_none() {
                budget.charge(text.len())?;
            }
            Ok(Some(Arc::clone(
                slot.get_or_insert_with(|| Arc::from(text)),
            )))
        };
        Ok(Frame {
            function: share(self.function)?,
            file: share(self.file)?,
            line: self.line,
            inlined: self.inlined,
        })
    }
}

/// `flags:u8 [function] [file] line`.
fn read_frame<'a>(
    input: &mut Input<'_>,
    string: &impl Fn(u64) -> Result<TableString<'a>, DecodeError>,
) -> Result<RawFrame<'a>, DecodeError> {
    let flags = input.u8()?;
    if flags & !(HAS_FUNCTION | HAS_FILE | INLINED) != 0 {
        return Err(DecodeError(format!("bad frame flags {flags:#x}")));
    }
    let mut optional = |bit: u8| -> Result<Option<TableString<'a>>, DecodeError> {
        if flags & bit == 0 {
            return Ok(None);
        }
        string(input.varint()?).map(Some)
    };
    let function = optional(HAS_FUNCTION)?;
    let file = optional(HAS_FILE)?;
    let line = u32::try_from(input.varint()?)
        .map_err(|_| DecodeError("line number out of range".to_string()))?;
    Ok(RawFrame {
        function,
        file,
        line,
        inlined: flags & INLINED != 0,
    })
}

/// Strings numbered in order of first use.
#[derive(Default)]
struct Interner<'a> {
    ids: HashMap<&'a str, u64>,
    list: Vec<&'a str>,
    bytes: usize,
}

impl<'a> Interner<'a> {
    fn id(&mut self, text: &'a str) -> u64 {
        *self.ids.entry(text).or_insert_with(|| {
            self.list.push(text);
            self.bytes += text.len() + 2;
            self.list.len() as u64 - 1
        })
    }
}

fn put_frame<'a>(out: &mut Vec<u8>, frame: &'a Frame, strings: &mut Interner<'a>) {
    let flag = |set: bool, bit: u8| if set { bit } else { 0 };
    let flags = flag(frame.function.is_some(), HAS_FUNCTION)
        | flag(frame.file.is_some(), HAS_FILE)
        | flag(frame.inlined, INLINED);
    out.push(flags);
    for text in [&frame.function, &frame.file].into_iter().flatten() {
        put_varint(out, strings.id(text));
    }
    put_varint(out, u64::from(frame.line));
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn kind_code(kind: ModuleKind) -> u8 {
    match kind {
        ModuleKind::Elf => 0,
        ModuleKind::Kernel => 1,
        ModuleKind::Jit => 2,
        ModuleKind::Marker => 3,
    }
}

fn kind_from_code(code: u8) -> Result<ModuleKind, DecodeError> {
    match code {
        0 => Ok(ModuleKind::Elf),
        1 => Ok(ModuleKind::Kernel),
        2 => Ok(ModuleKind::Jit),
        3 => Ok(ModuleKind::Marker),
        _ => Err(DecodeError(format!("unknown module kind {code}"))),
    }
}

/// A bounds-checked cursor over the encoded bytes.
struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| DecodeError(format!("truncated at byte {}", self.pos)))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError(format!(
            "varint overflows at byte {}",
            self.pos
        )))
    }

    /// A count of elements that take at least `min_size` encoded bytes
    /// each (1 for a length in bytes): it can never exceed what the bytes
    /// left can hold, which also bounds every allocation sized from it.
    fn count(&mut self, what: &str, min_size: usize) -> Result<usize, DecodeError> {
        let value = self.varint()?;
        let left = self.bytes.len() - self.pos;
        usize::try_from(value)
            .ok()
            .filter(|&n| n <= left / min_size.max(1))
            .ok_or_else(|| {
                DecodeError(format!(
                    "{value} {what} claimed at byte {}, more than the {left} bytes left can hold",
                    self.pos
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frame(function: Option<&str>, file: Option<&str>, line: u32, inlined: bool) -> Frame {
        Frame {
            function: function.map(Arc::from),
            file: file.map(Arc::from),
            line,
            inlined,
        }
    }

    fn sample() -> SymbolTable {
        let mut table = SymbolTable::new();
        let app = table.module_id(&ModuleRef {
            kind: ModuleKind::Elf,
            path: "/usr/bin/app".to_string(),
            build_id: Some(vec![0xde, 0xad, 0xbe, 0xef]),
            pid: Some(1234),
        });
        let kernel = table.module_id(&ModuleRef {
            kind: ModuleKind::Kernel,
            path: "[kernel.kallsyms]".to_string(),
            build_id: None,
            pid: None,
        });
        let jit = table.module_id(&ModuleRef {
            kind: ModuleKind::Jit,
            path: "/tmp/perf-1.map".to_string(),
            build_id: Some(Vec::new()),
            pid: Some(0),
        });
        table.insert(
            app,
            0x1234,
            vec![
                frame(Some("inner"), Some("/src/a.c"), 10, true),
                frame(Some("outer"), Some("/src/a.c"), 20, false),
            ],
        );
        table.insert(app, 0x1000, vec![frame(Some("outer"), None, 0, false)]);
        table.insert(app, u64::MAX, vec![frame(None, None, 0, false)]);
        table.insert(
            kernel,
            0xffff_ffff_8100_0000,
            vec![frame(Some("do_syscall_64"), None, 0, false)],
        );
        table.insert(jit, 0, vec![frame(Some("js:héllo"), None, u32::MAX, false)]);
        table
    }

    fn assert_same(a: &SymbolTable, b: &SymbolTable) {
        assert_eq!(a.modules(), b.modules());
        assert_eq!(a.len(), b.len());
        for (key, frames) in &a.entries {
            assert_eq!(b.lookup(key.0, key.1), Some(frames), "entry {key:?}");
        }
    }

    #[test]
    fn round_trip() {
        let table = sample();
        let bytes = table.encode();
        assert!(bytes.starts_with(MAGIC));
        let decoded = SymbolTable::decode(&bytes).expect("decode");
        assert_same(&table, &decoded);
        // Deterministic: the same table encodes to the same bytes.
        assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn empty_round_trip() {
        let bytes = SymbolTable::new().encode();
        assert!(SymbolTable::decode(&bytes).expect("decode").is_empty());
    }

    #[test]
    fn strings_are_interned_once() {
        let bytes = sample().encode();
        let count = bytes
            .windows(b"/src/a.c".len())
            .filter(|w| w == b"/src/a.c")
            .count();
        assert_eq!(count, 1);
    }

    #[test]
    fn truncation_is_an_error() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(SymbolTable::decode(&bytes[..len]).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn bad_header_rejected() {
        let mut bytes = sample().encode();
        bytes[4] = 9;
        let error = SymbolTable::decode(&bytes).unwrap_err();
        assert!(error.to_string().contains("version 9"), "{error}");
        assert!(SymbolTable::decode(b"XXXX\x01\0\0\0").is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let bytes = sample().encode();
        // Flip every byte to several values, then random junk after a valid header.
        for i in 0..bytes.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut corrupt = bytes.clone();
                corrupt[i] = value;
                let _ = SymbolTable::decode(&corrupt);
            }
        }
        let mut state = 0x1234_5678_u64;
        for _ in 0..2000 {
            let mut junk = b"RPSY\x01\0\0\0".to_vec();
            for _ in 0..(state % 64) {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                junk.push((state >> 56) as u8);
            }
            let _ = SymbolTable::decode(&junk);
        }
    }

    /// `RPSY`, the version, then what `body` writes.
    fn crafted(body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        body(&mut out);
        out
    }

    /// One string `x`, one ELF module without build id or pid.
    fn one_string_one_module(out: &mut Vec<u8>) {
        for value in [1, 1, b'x' as u64, 1, 0, 0, 0, 0] {
            put_varint(out, value);
        }
    }

    #[test]
    fn counts_beyond_what_the_bytes_left_can_hold_are_refused() {
        // Each count claims exactly as many elements as there are bytes
        // left, which the old check let through; each element takes at
        // least 4 (module), 5 (entry) or 2 (frame) bytes. Before, a 64 MiB
        // section asked for 3.76 GB of frames this way.
        const LEFT: u64 = 1000;
        let pad = |out: &mut Vec<u8>| out.resize(out.len() + LEFT as usize, 0);
        let cases: [(&str, Vec<u8>); 4] = [
            (
                "modules claimed",
                crafted(|out| {
                    put_varint(out, 0);
                    put_varint(out, LEFT);
                    pad(out);
                }),
            ),
            (
                "entries claimed",
                crafted(|out| {
                    put_varint(out, 0);
                    put_varint(out, 0);
                    put_varint(out, LEFT);
                    pad(out);
                }),
            ),
            (
                "frames claimed",
                crafted(|out| {
                    one_string_one_module(out);
                    for value in [1, 0, 0, LEFT] {
                        put_varint(out, value);
                    }
                    pad(out);
                }),
            ),
            (
                "build id bytes claimed",
                crafted(|out| {
                    for value in [1, 1, b'x' as u64, 1, 0, 0, LEFT + 2] {
                        put_varint(out, value);
                    }
                    pad(out);
                }),
            ),
        ];
        for (expected, bytes) in cases {
            let error = SymbolTable::decode(&bytes).unwrap_err().to_string();
            assert!(
                error.contains(expected) && error.contains("bytes left can hold"),
                "{expected}: {error}"
            );
        }
    }

    #[test]
    fn a_long_string_named_by_many_frames_is_decoded_once_not_per_frame() {
        // 16 KiB of name, 12 000 entries naming it on distinct lines: ~100 KB
        // that decoded to 196 MB when each frame held its own copy.
        let name = "n".repeat(16 << 10);
        let entries = 12_000u64;
        let bytes = crafted(|out| {
            put_varint(out, 1);
            put_varint(out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            for value in [1, 0, 0, 0, 0] {
                put_varint(out, value);
            }
            put_varint(out, entries);
            for line in 0..entries {
                // module 0, next address, one frame: function 0 at `line`.
                for value in [0, 1, 1, u64::from(HAS_FUNCTION), 0, line] {
                    put_varint(out, value);
                }
            }
        });
        let limit = decoded_bytes_budget(bytes.len()).limit;
        assert!(entries as usize * name.len() > 2 * limit);
        let table = SymbolTable::decode(&bytes).unwrap();
        assert_eq!(table.len(), entries as usize);
        let first = table.lookup(0, 1).unwrap()[0].function.clone().unwrap();
        let last = table.lookup(0, entries).unwrap()[0]
            .function
            .clone()
            .unwrap();
        assert!(
            Arc::ptr_eq(&first, &last),
            "one copy of the name for all frames"
        );
    }

    #[test]
    fn a_string_budget_still_refuses_what_no_real_table_needs() {
        // Many distinct long strings, each named once: each is one copy, and
        // their total against the input is what the budget bounds.
        let mut budget = decoded_bytes_budget(1000);
        assert!(budget.charge(1000 * 256).is_ok());
        let error = budget.charge(17 << 20).unwrap_err().to_string();
        assert!(error.contains("crafted"), "{error}");
    }

    #[test]
    fn entries_with_the_same_frames_share_them() {
        let mut table = SymbolTable::new();
        let app = table.module_id(&ModuleRef {
            kind: ModuleKind::Elf,
            path: "/usr/bin/app".to_string(),
            build_id: None,
            pid: None,
        });
        let line = vec![frame(Some("f"), Some("/src/f.c"), 7, false)];
        table.insert(app, 0x10, line.clone());
        table.insert(app, 0x14, line);
        table.insert(
            app,
            0x18,
            vec![frame(Some("f"), Some("/src/f.c"), 8, false)],
        );
        let decoded = SymbolTable::decode(&table.encode()).unwrap();
        assert_same(&table, &decoded);
        let at = |addr| decoded.lookup(app, addr).unwrap();
        assert!(Arc::ptr_eq(at(0x10), at(0x14)));
        assert!(!Arc::ptr_eq(at(0x10), at(0x18)));
    }

    #[test]
    fn varint_edges() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut input = Input {
                bytes: &out,
                pos: 0,
            };
            assert_eq!(input.varint().expect("varint"), value);
        }
        let overlong = [0xff; 11];
        assert!(Input {
            bytes: &overlong,
            pos: 0
        }
        .varint()
        .is_err());
    }
}
