//! A bounded, deterministic mutation test of the readers of untrusted
//! input: the perf.data reader (plain, `-z` and pipe-mode files) and the
//! embedded symbol table. Each input runs under `catch_unwind`, with a cap
//! on the memory it may allocate (enforced by the counting allocator below)
//! and a hang detector. `fuzz/` has the coverage-guided version of this.
//!
//! The allocator is a pass-through to the system allocator except on a
//! thread inside [`guarded`]: there it counts, and refuses any request that
//! would take that thread past [`ALLOC_CAP`], printing which input asked
//! first. The refusal aborts the test binary (`handle_alloc_error`): loud,
//! and it never really allocates gigabytes. zstd's own buffers come from C
//! `malloc` and are not counted (its window is bounded by `WindowLogMax`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use rprof::abi::record_type;
use rprof::aggregate::{self, ProfileOptions};
use rprof::perfdata::format::feature;
use rprof::perfdata::writer::AttrEntry;
use rprof::perfdata::{FeatureData, PerfDataWriter, PerfFile, Record};
use rprof::symbolize::{Frame, ModuleKind, ModuleRef, SymbolTable};

use crate::util::temp_dir;

/// The most one input may have allocated at once, and the largest request.
const ALLOC_CAP: usize = 256 << 20;
/// An input still running after this long is taken for a hang. Generous:
/// this detects loops that never end, it does not measure speed (debug
/// builds on a loaded machine are slow).
const HANG_AFTER: Duration = Duration::from_secs(20);
/// Mutated inputs per base input (each gets one to three mutations).
const MUTATIONS: u64 = 300;

struct CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// This thread's accounting while it runs a guarded input.
struct Guard {
    active: Cell<bool>,
    /// Bytes allocated minus bytes freed since the guard started (memory
    /// allocated before and freed inside makes it go below zero).
    live: Cell<isize>,
    peak: Cell<isize>,
    largest: Cell<usize>,
    /// Which input runs, for the message when a request is refused.
    input: Cell<&'static str>,
    mutation: Cell<u64>,
}

thread_local! {
    static GUARD: Guard = const {
        Guard {
            active: Cell::new(false),
            live: Cell::new(0),
            peak: Cell::new(0),
            largest: Cell::new(0),
            input: Cell::new(""),
            mutation: Cell::new(0),
        }
    };
}

impl Guard {
    /// Counts a request of `size` bytes (replacing `freed`); false to refuse it.
    fn admit(&self, size: usize, freed: usize) -> bool {
        let live = self.live.get() + size as isize - freed as isize;
        if size > ALLOC_CAP || live > ALLOC_CAP as isize {
            // Off first: the message must not come back here.
            self.active.set(false);
            let _ = writeln!(
                std::io::stderr(),
                "mutation test: input {} mutation {} asked for {size} bytes with {} live; \
                 refusing it (cap {ALLOC_CAP}): an infallible allocation aborts the test binary here",
                self.input.get(),
                self.mutation.get(),
                self.live.get(),
            );
            return false;
        }
        self.live.set(live);
        self.peak.set(self.peak.get().max(live));
        self.largest.set(self.largest.get().max(size));
        true
    }

    fn release(&self, size: usize) {
        self.live.set(self.live.get() - size as isize);
    }
}

/// Runs `f` with this thread's guard, if one is active.
fn with_active_guard<T>(f: impl FnOnce(&Guard) -> T) -> Option<T> {
    GUARD
        .try_with(|guard| guard.active.get().then(|| f(guard)))
        .ok()
        .flatten()
}

// SAFETY: every call is passed to `System` with the same arguments; the
// bookkeeping touches only thread-local cells, and a refused request
// returns null, which callers of `GlobalAlloc` must handle.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if with_active_guard(|g| g.admit(layout.size(), 0)) == Some(false) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if with_active_guard(|g| g.admit(layout.size(), 0)) == Some(false) {
            return std::ptr::null_mut();
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        with_active_guard(|g| g.release(layout.size()));
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if with_active_guard(|g| g.admit(new_size, layout.size())) == Some(false) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `System` with `layout`; the caller
        // guarantees `new_size` is valid for it.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What one guarded input used.
#[derive(Debug)]
struct Usage {
    peak: usize,
    largest: usize,
    elapsed: Duration,
}

/// Runs `f` guarded, labelled `input`/`mutation`; panics name the input.
fn guarded<T>(input: &'static str, mutation: u64, f: impl FnOnce() -> T) -> (T, Usage) {
    GUARD.with(|g| {
        g.live.set(0);
        g.peak.set(0);
        g.largest.set(0);
        g.input.set(input);
        g.mutation.set(mutation);
        g.active.set(true);
    });
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(f));
    let elapsed = start.elapsed();
    let usage = GUARD.with(|g| {
        g.active.set(false);
        Usage {
            peak: g.peak.get().max(0) as usize,
            largest: g.largest.get(),
            elapsed,
        }
    });
    match result {
        Ok(value) => (value, usage),
        Err(_) => panic!("input {input} mutation {mutation} panicked (message above)"),
    }
}

/// Does what a report does with a file, short of reading binaries: streams
/// its records in time order into a profile, decodes the embedded symbol
/// table, names the locations and draws every event's named view. Returns
/// the warnings.
fn read_perf_file(bytes: Vec<u8>) -> Vec<String> {
    let Ok(file) = PerfFile::from_bytes(bytes) else {
        return Vec::new();
    };
    let mut profile = aggregate::profile_file(&file, &ProfileOptions::default());
    std::hint::black_box(file.metadata());
    if let Some(Ok(table)) = file
        .feature(feature::RPROF_SYMBOLS)
        .map(SymbolTable::decode)
    {
        profile.name_locations(&table);
    }
    for event in 0..profile.events.len() as u32 {
        std::hint::black_box(profile.named(event));
    }
    profile.warnings
}

/// All records in time order, owned, and the warnings.
fn ordered(file: &PerfFile) -> (Vec<Record<'static>>, Vec<String>) {
    let mut records = file.ordered();
    let all = records.by_ref().map(Record::into_owned).collect();
    (all, records.warnings())
}

fn decode_table(bytes: Vec<u8>) {
    if let Ok(table) = SymbolTable::decode(&bytes) {
        std::hint::black_box(table.encode());
    }
}

/// splitmix64: deterministic, so a failure names a mutation that reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

/// Values that break sizes and counts.
const EXTREMES: [u64; 10] = [
    0,
    1,
    7,
    8,
    0x7f,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    u64::MAX,
    1 << 40,
];

/// One to three mutations: bit flips, bytes set to edge values, integer
/// fields at record-aligned offsets set to extremes (or to record types that
/// take special paths), truncation, duplicated or removed chunks.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..1 + rng.below(3) {
        if bytes.is_empty() {
            return;
        }
        let at = rng.below(bytes.len());
        match rng.below(7) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.pick(&[0x00, 0xff, 0x7f, 0x80]),
            2 | 3 => {
                // A header field (type, misc, size) or a body word.
                let field = (at & !7) + rng.pick(&[0, 4, 6, 8, 16]);
                let kinds = [
                    record_type::COMPRESSED,
                    record_type::COMPRESSED2,
                    record_type::HEADER_ATTR,
                    record_type::HEADER_FEATURE,
                    record_type::AUXTRACE,
                    record_type::HEADER_TRACING_DATA,
                ];
                let value = match rng.below(3) {
                    0 => u64::from(rng.pick(&kinds)),
                    _ => rng.pick(&EXTREMES),
                };
                let width = rng.pick(&[2, 4, 8]);
                if let Some(slot) = bytes.get_mut(field..field + width) {
                    slot.copy_from_slice(&value.to_ne_bytes()[..width]);
                }
            }
            4 => bytes.truncate(at),
            5 => {
                let len = rng.below(4096).min(bytes.len() - at);
                let chunk = bytes[at..at + len].to_vec();
                let to = rng.below(bytes.len());
                bytes.splice(to..to, chunk);
            }
            _ => {
                let len = rng.below(256).min(bytes.len() - at);
                bytes.drain(at..at + len);
            }
        }
    }
}

fn seeds(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut seeds: Vec<(&'static str, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // Leaked once per seed: the allocator's label must be 'static.
            let name: &'static str = Box::leak(name.into_boxed_str());
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

fn u64_at(bytes: &[u8], at: usize) -> usize {
    u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap()) as usize
}

/// A perf record of `kind` holding `body`.
fn record(kind: u32, body: &[u8]) -> Vec<u8> {
    let size = u16::try_from(8 + body.len()).expect("record fits u16");
    let mut out = kind.to_ne_bytes().to_vec();
    out.extend(0u16.to_ne_bytes());
    out.extend(size.to_ne_bytes());
    out.extend(body);
    out
}

/// rprof's seed recording, rewritten by the test in the other two layouts
/// rprof reads: its records zstd-compressed (`-z`), and pipe mode.
fn derived_layouts(plain: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let file = PerfFile::from_bytes(plain.to_vec()).unwrap();
    let data_at = u64_at(plain, 40);
    let data = &plain[data_at..data_at + u64_at(plain, 48)];
    let symbols = file.feature(feature::RPROF_SYMBOLS).map(<[u8]>::to_vec);

    // -z: one zstd stream spread over COMPRESSED records, as perf writes it.
    let stream = zstd::stream::encode_all(data, 3).unwrap();
    let compressed: Vec<u8> = stream
        .chunks(60_000)
        .flat_map(|piece| record(record_type::COMPRESSED, piece))
        .collect();
    let dir = temp_dir("mutations");
    let path = dir.join("z.data");
    let attrs: Vec<AttrEntry> = file
        .attrs()
        .iter()
        .map(|&attr| AttrEntry { attr, ids: vec![] })
        .collect();
    let mut writer = PerfDataWriter::create(&path, &attrs).unwrap();
    writer.write_raw(&compressed).unwrap();
    let features = FeatureData {
        rprof_symbols: symbols.clone(),
        ..FeatureData::default()
    };
    writer.finish(&features).unwrap();
    let z = std::fs::read(&path).unwrap();

    // Pipe mode: attrs and features as records, inline with the data.
    let mut pipe = b"PERFILE2".to_vec();
    pipe.extend(16u64.to_ne_bytes());
    for attr in file.attrs() {
        pipe.extend(record(record_type::HEADER_ATTR, &attr.to_bytes()));
    }
    if let Some(symbols) = &symbols {
        let mut body = u64::from(feature::RPROF_SYMBOLS).to_ne_bytes().to_vec();
        body.extend(symbols);
        pipe.extend(record(record_type::HEADER_FEATURE, &body));
    }
    pipe.extend(data);

    // Both read back as the plain file does (less pipe mode's HEADER_*).
    let (plain_records, _) = ordered(&file);
    for (name, bytes) in [("derived -z", &z), ("derived pipe", &pipe)] {
        let derived = PerfFile::from_bytes(bytes.clone()).unwrap();
        let (mut records, warnings) = ordered(&derived);
        records
            .retain(|r| !matches!(r, Record::Other { kind } if *kind >= record_type::HEADER_ATTR));
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
        assert_eq!(records, plain_records, "{name}");
        assert_eq!(
            derived.feature(feature::RPROF_SYMBOLS).map(<[u8]>::to_vec),
            symbols,
            "{name}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    vec![("rprof.data as -z", z), ("rprof.data as pipe", pipe)]
}

/// A symbol table of many entries, shared frames, inline chains, long names.
fn generated_table() -> Vec<u8> {
    let mut table = SymbolTable::new();
    let modules: Vec<u32> = (0..4)
        .map(|i| {
            table.module_id(&ModuleRef {
                kind: [ModuleKind::Elf, ModuleKind::Kernel, ModuleKind::Jit][i % 3],
                path: format!("/usr/lib/lib{i}.so"),
                build_id: (i % 2 == 0).then(|| vec![i as u8; 20]),
                pid: (i % 2 == 1).then_some(i as u32 * 100),
            })
        })
        .collect();
    for i in 0..300u32 {
        let depth = 1 + i as usize % 4;
        let frames: Vec<Frame> = (0..depth)
            .map(|d| Frame {
                function: Some(format!("ns::function_{}<{}>", i / 3, "T".repeat(d * 20)).into()),
                file: (i % 5 != 0).then(|| format!("/src/file{}.cc", i % 7).into()),
                line: i / 2 + d as u32,
                inlined: d + 1 < depth,
            })
            .collect();
        table.insert(
            modules[i as usize % 4],
            0x1000 + u64::from(i) * 0x10,
            frames,
        );
    }
    table.encode()
}

fn assert_bounded(usage: &Usage, input: &str, mutation: u64) {
    assert!(
        usage.elapsed < HANG_AFTER,
        "input {input} mutation {mutation} ran {:?}: a hang?",
        usage.elapsed
    );
    // The allocator refuses (and aborts) past the cap; this is the record.
    assert!(
        usage.peak <= ALLOC_CAP && usage.largest <= ALLOC_CAP,
        "input {input} mutation {mutation}: {usage:?}"
    );
}

#[test]
fn mutated_recordings_and_symbol_tables_never_panic_hang_or_overallocate() {
    let mut perf_inputs = seeds("perfdata");
    let rprof_seed = perf_inputs
        .iter()
        .find(|(name, _)| *name == "rprof.data")
        .map(|(_, bytes)| bytes.clone())
        .expect("the rprof.data seed");
    perf_inputs.extend(derived_layouts(&rprof_seed));
    let mut table_inputs = seeds("symbol_table");
    table_inputs.push(("generated table", generated_table()));

    let mut worst: Option<(Usage, &str)> = None;
    for (index, (name, seed)) in perf_inputs.iter().enumerate() {
        // The untouched seed first: it must read cleanly (the DWARF seed's
        // binary lived on the machine that recorded it, and the report says
        // it cannot unwind with it here: no problem with the file).
        let (warnings, usage) = guarded(name, 0, || read_perf_file(seed.clone()));
        let problems: Vec<&String> = warnings
            .iter()
            .filter(|w| !w.starts_with("no unwind tables for"))
            .collect();
        assert!(problems.is_empty(), "{name}: {problems:?}");
        assert_bounded(&usage, name, 0);
        let mut rng = Rng(0x5eed_0000 + index as u64);
        for mutation in 1..=MUTATIONS {
            let mut bytes = seed.clone();
            mutate(&mut bytes, &mut rng);
            let (_, usage) = guarded(name, mutation, || read_perf_file(bytes));
            assert_bounded(&usage, name, mutation);
            if worst.as_ref().map_or(true, |(w, _)| usage.peak > w.peak) {
                worst = Some((usage, name));
            }
        }
    }
    for (index, (name, seed)) in table_inputs.iter().enumerate() {
        let ((), usage) = guarded(name, 0, || {
            SymbolTable::decode(seed).expect("the seed table decodes");
        });
        assert_bounded(&usage, name, 0);
        let mut rng = Rng(0x7ab1_e000 + index as u64);
        for mutation in 1..=MUTATIONS * 4 {
            let mut bytes = seed.clone();
            mutate(&mut bytes, &mut rng);
            let ((), usage) = guarded(name, mutation, || decode_table(bytes));
            assert_bounded(&usage, name, mutation);
        }
    }
    if let Some((usage, name)) = worst {
        eprintln!("mutation test: most memory held by one input: {name}, {usage:?}");
    }
}

#[test]
fn the_allocation_guard_counts_and_refuses_past_the_cap() {
    // The guard itself: what it counts is what the inputs allocate.
    let (_, usage) = guarded("guard self-test", 0, || {
        let block = vec![0u8; 10 << 20];
        std::hint::black_box(&block);
    });
    assert!(
        usage.largest >= 10 << 20 && usage.peak >= 10 << 20,
        "{usage:?}"
    );
    let (refused, _) = guarded("guard self-test", 1, || {
        let mut huge: Vec<u8> = Vec::new();
        huge.try_reserve_exact(ALLOC_CAP + 1).is_err()
    });
    assert!(refused, "a request past the cap was granted");
}

/// A COMPRESSED record of `payload` inside a minimal plain file (the
/// derived layouts' writer path), with its first attr taken from the seed.
fn file_with_records(records: &[u8]) -> Vec<u8> {
    let seed = seeds("perfdata")
        .into_iter()
        .find(|(name, _)| *name == "rprof.data")
        .expect("the rprof.data seed")
        .1;
    let attr = PerfFile::from_bytes(seed).unwrap().attrs()[0];
    let dir = temp_dir("mutations-bomb");
    let path = dir.join("bomb.data");
    let mut writer = PerfDataWriter::create(&path, &[AttrEntry { attr, ids: vec![] }]).unwrap();
    writer.write_raw(records).unwrap();
    writer.finish(&FeatureData::default()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    bytes
}

#[test]
fn decompression_bomb_from_the_report_stays_within_the_allocation_cap() {
    // As reported: a COMPRESSED record of a few KB inflating to 64 MiB of
    // 8-byte records took 12.5 s and 2.56 GB. Now it is refused unread.
    let rounds = record(record_type::FINISHED_ROUND, &[]).repeat(8 << 20);
    let payload = zstd::stream::encode_all(&rounds[..], 1).unwrap();
    assert!(payload.len() < 8 << 10, "bomb of {} bytes", payload.len());
    let bytes = file_with_records(&record(record_type::COMPRESSED, &payload));
    let (warnings, usage) = guarded("64 MiB bomb", 0, || read_perf_file(bytes));
    assert!(
        warnings.iter().any(|w| w.contains("decompression bomb")),
        "{warnings:?}"
    );
    // At most the ratio bound's worth is decoded, never the 64 MiB.
    assert!(usage.peak < 64 << 20, "{usage:?}");
}

#[test]
fn crafted_symbol_table_counts_ask_for_no_large_allocation() {
    // As reported: a 64 MiB section whose frame count equals its size asked
    // for 3.76 GB (`with_capacity`). Strings "x", one module, one entry.
    let mut section = b"RPSY\x01\0\0\0".to_vec();
    section.extend([1, 1, b'x', 1, 0, 0, 0, 0, 1, 0, 0]);
    let left = (64u64 << 20) - 4;
    let mut count = left;
    while count >= 0x80 {
        section.push(count as u8 | 0x80);
        count >>= 7;
    }
    section.push(count as u8);
    section.resize(section.len() + left as usize, 0);
    let (result, usage) = guarded("64 MiB table", 0, || {
        SymbolTable::decode(&section).map(|table| table.len())
    });
    let error = result.expect_err("the crafted table decoded").to_string();
    assert!(error.contains("frames claimed"), "{error}");
    assert!(usage.largest < 1 << 20, "{usage:?}");
}
