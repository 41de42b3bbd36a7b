//! Symbolizer tests on binaries compiled from `tests/fixtures/symbolize/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};
use rprof::symbolize::{
    Frame, ModuleKind, ModuleRef, ModuleReport, ModuleRequest, SymbolTable, SymbolizeOptions,
    Symbolizer,
};
use tempfile::TempDir;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/symbolize")
        .join(name)
}

/// Runs a build tool, failing the test with its output.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Compiles `source` into `dir/out` with `flags`.
fn compile(dir: &TempDir, compiler: &str, source: &str, out: &str, flags: &[&str]) -> PathBuf {
    let out = dir.path().join(out);
    let source = fixture(source);
    let mut args = flags.to_vec();
    args.extend([source.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    run(compiler, &args);
    out
}

/// `(file offset, size)` of a symbol: its SVMA mapped back through the
/// PT_LOAD that contains it, as a profiler sees it in a mapping.
pub(crate) fn file_offset(binary: &Path, symbol: &str) -> (u64, u64) {
    let data = std::fs::read(binary).unwrap();
    let obj = object::File::parse(&*data).unwrap();
    let sym = obj
        .symbols()
        .chain(obj.dynamic_symbols())
        .find(|s| s.name() == Ok(symbol))
        .unwrap_or_else(|| panic!("no symbol {symbol} in {}", binary.display()));
    (svma_to_offset(&obj, sym.address()), sym.size())
}

fn svma_to_offset(obj: &object::File<'_>, svma: u64) -> u64 {
    obj.segments()
        .find(|s| s.address() <= svma && svma < s.address() + s.file_range().1)
        .map(|s| svma - s.address() + s.file_range().0)
        .expect("address in a PT_LOAD")
}

fn elf(path: &Path) -> ModuleRef {
    ModuleRef {
        kind: ModuleKind::Elf,
        path: path.to_str().unwrap().to_string(),
        build_id: None,
        pid: None,
    }
}

fn symbolize_with(
    options: SymbolizeOptions,
    requests: Vec<ModuleRequest>,
) -> (SymbolTable, HashMap<ModuleRef, ModuleReport>) {
    Symbolizer::new(options).symbolize(requests)
}

fn frames_of(module: &ModuleRef, addrs: &[u64]) -> (Vec<Vec<Frame>>, ModuleReport) {
    frames_with(SymbolizeOptions::default(), module, addrs)
}

fn frames_with(
    options: SymbolizeOptions,
    module: &ModuleRef,
    addrs: &[u64],
) -> (Vec<Vec<Frame>>, ModuleReport) {
    let request = ModuleRequest {
        module: module.clone(),
        addrs: addrs.to_vec(),
    };
    let (table, mut reports) = symbolize_with(options, vec![request]);
    let id = table.find_module(module).expect("module in table");
    let frames = addrs
        .iter()
        .map(|&a| {
            table
                .lookup(id, a)
                .expect("every address has an entry")
                .to_vec()
        })
        .collect();
    (frames, reports.remove(module).expect("module report"))
}

fn outer_name(frames: &[Frame]) -> Option<&str> {
    frames.last().and_then(|f| f.function.as_deref())
}

/// 1-based line of the first source line containing `marker`.
fn line_of(source: &str, marker: &str) -> u32 {
    let text = std::fs::read_to_string(fixture(source)).unwrap();
    let index = text.lines().position(|l| l.contains(marker)).unwrap();
    index as u32 + 1
}

const OPT_DEBUG: &[&str] = &["-O2", "-g", "-fno-omit-frame-pointer"];

/// Every instruction of `outer` names `outer`; the ones from the inlined
/// loop give `[mix (inlined, inline.c:MIX lines), outer (call line)]`.
fn assert_inline_frames(module: &ModuleRef, binary_with_symbols: &Path) {
    let (start, size) = file_offset(binary_with_symbols, "outer");
    assert!(size > 0);
    let addrs: Vec<u64> = (start..start + size).collect();
    let (frames, report) = frames_of(module, &addrs);
    assert_eq!(report.problem, None);
    assert!(report.build_id.is_some());

    let mix_lines = line_of("inline.c", "MIX_BEGIN")..=line_of("inline.c", "MIX_END");
    let call_line = line_of("inline.c", "CALL_MIX");
    let mut inlined_seen = 0;
    for stack in &frames {
        assert_eq!(outer_name(stack), Some("outer"), "{stack:?}");
        let outer = stack.last().unwrap();
        assert!(!outer.inlined);
        if let [inner, _outer] = stack.as_slice() {
            assert_eq!(inner.function.as_deref(), Some("mix"));
            assert!(inner.inlined);
            assert!(inner.file.as_deref().unwrap().ends_with("inline.c"));
            assert!(mix_lines.contains(&inner.line), "{inner:?}");
            assert_eq!(outer.line, call_line);
            assert!(outer.file.as_deref().unwrap().ends_with("inline.c"));
            inlined_seen += 1;
        }
    }
    assert!(
        inlined_seen > 0,
        "no address inside the inlined mix(): {frames:?}"
    );
}

#[test]
fn inline_frames_innermost_first() {
    let dir = TempDir::new().unwrap();
    let binary = compile(&dir, "cc", "inline.c", "inline", OPT_DEBUG);
    assert_inline_frames(&elf(&binary), &binary);
}

#[test]
fn compressed_debug_sections() {
    let dir = TempDir::new().unwrap();
    let binary = compile(&dir, "cc", "inline.c", "inline", OPT_DEBUG);
    let compressed = dir.path().join("inline.z");
    run(
        "objcopy",
        &[
            "--compress-debug-sections=zlib",
            binary.to_str().unwrap(),
            compressed.to_str().unwrap(),
        ],
    );
    assert_inline_frames(&elf(&compressed), &binary);
}

#[test]
fn symbols_only_without_dwarf() {
    let dir = TempDir::new().unwrap();
    let binary = compile(&dir, "cc", "inline.c", "inline", OPT_DEBUG);
    let (start, size) = file_offset(&binary, "outer");
    let options = SymbolizeOptions {
        dwarf: false,
        ..SymbolizeOptions::default()
    };
    let (frames, _) = frames_with(options, &elf(&binary), &[start, start + size - 1]);
    for stack in frames {
        assert_eq!(stack.len(), 1);
        assert_eq!(stack[0].function.as_deref(), Some("outer"));
        assert_eq!(stack[0].file, None);
    }
}

#[test]
fn debuglink_with_build_id() {
    debuglink_case(&[]);
}

#[test]
fn debuglink_checked_by_crc() {
    // No build id: the debuglink CRC is the only check.
    debuglink_case(&["-Wl,--build-id=none"]);
}

fn debuglink_case(extra: &[&str]) {
    let dir = TempDir::new().unwrap();
    let flags: Vec<&str> = OPT_DEBUG.iter().chain(extra).copied().collect();
    let full = compile(&dir, "cc", "inline.c", "inline.full", &flags);
    let debug = dir.path().join("inline.debug");
    let stripped = dir.path().join("inline");
    let (full_s, debug_s, stripped_s) = (
        full.to_str().unwrap(),
        debug.to_str().unwrap(),
        stripped.to_str().unwrap(),
    );
    run("objcopy", &["--only-keep-debug", full_s, debug_s]);
    run("objcopy", &["--strip-all", full_s, stripped_s]);
    // --add-gnu-debuglink records the CRC of the file and its base name.
    let linked = dir.path().join("inline.linked");
    let linked_s = linked.to_str().unwrap();
    run(
        "objcopy",
        &[
            &format!("--add-gnu-debuglink={debug_s}"),
            stripped_s,
            linked_s,
        ],
    );
    std::fs::rename(&linked, &stripped).unwrap();
    let module = elf(&stripped);
    let (start, size) = file_offset(&full, "outer");
    // Without DWARF too: the stripped file has no symbol for `outer`.
    let options = SymbolizeOptions {
        dwarf: false,
        debug_dirs: Vec::new(),
        ..SymbolizeOptions::default()
    };
    let (frames, _) = frames_with(options, &module, &[start]);
    assert_eq!(outer_name(&frames[0]), Some("outer"));
    if extra.is_empty() {
        assert_inline_frames(&module, &full);
    } else {
        let (frames, report) = frames_of(&module, &(start..start + size).collect::<Vec<_>>());
        assert_eq!(report.build_id, None);
        assert!(
            frames.iter().any(|f| f.len() == 2),
            "no inline frames via debuglink"
        );
    }

    // A debug file that does not match (CRC / build id) is not used.
    let other = compile(
        &dir,
        "cc",
        "inline.c",
        "other.full",
        &[&flags[..], &["-DOTHER=1", "-O1"]].concat(),
    );
    run(
        "objcopy",
        &["--only-keep-debug", other.to_str().unwrap(), debug_s],
    );
    let (frames, _) = frames_of(&module, &[start]);
    assert_eq!(frames[0].len(), 1);
    assert_eq!(
        outer_name(&frames[0]),
        None,
        "a mismatched debug file was used"
    );
}

#[test]
fn dynsym_only_shared_library_and_plt() {
    let dir = TempDir::new().unwrap();
    let full = compile(
        &dir,
        "cc",
        "lib.c",
        "libfix.full.so",
        &["-O2", "-g", "-shared", "-fPIC"],
    );
    let lib = dir.path().join("libfix.so");
    run(
        "objcopy",
        &["--strip-all", full.to_str().unwrap(), lib.to_str().unwrap()],
    );
    let module = elf(&lib);

    let (exported, size) = file_offset(&lib, "fixture_exported");
    let (second, _) = file_offset(&lib, "fixture_second");
    let (frames, report) = frames_of(&module, &[exported, exported + size - 1, second]);
    assert_eq!(report.problem, None);
    assert_eq!(outer_name(&frames[0]), Some("fixture_exported"));
    assert_eq!(outer_name(&frames[1]), Some("fixture_exported"));
    assert_eq!(outer_name(&frames[2]), Some("fixture_second"));

    // Every PLT byte is a named stub or `[plt]`, never another function.
    let data = std::fs::read(&lib).unwrap();
    let obj = object::File::parse(&*data).unwrap();
    let mut plt_addrs = Vec::new();
    for name in [".plt", ".plt.sec"] {
        if let Some(section) = obj.section_by_name(name) {
            let start = svma_to_offset(&obj, section.address());
            plt_addrs.extend(start..start + section.size());
        }
    }
    assert!(!plt_addrs.is_empty(), "fixture library has no PLT");
    let (frames, _) = frames_of(&module, &plt_addrs);
    let names: Vec<&str> = frames.iter().filter_map(|f| outer_name(f)).collect();
    assert_eq!(names.len(), plt_addrs.len());
    assert!(
        names.iter().all(|n| *n == "[plt]" || n.ends_with("@plt")),
        "{names:?}"
    );
    assert!(names.contains(&"puts@plt"), "{names:?}");
}

#[test]
fn cpp_names_demangled() {
    let dir = TempDir::new().unwrap();
    let binary = compile(&dir, "g++", "widget.cc", "widget", &["-O2", "-g"]);
    let (start, _) = file_offset(&binary, "_ZN2ns6Widget4spinEi");
    for dwarf in [true, false] {
        let options = SymbolizeOptions {
            dwarf,
            ..SymbolizeOptions::default()
        };
        let (frames, _) = frames_with(options, &elf(&binary), &[start]);
        assert_eq!(
            outer_name(&frames[0]),
            Some("ns::Widget::spin(int)"),
            "dwarf {dwarf}"
        );
    }
    let raw = SymbolizeOptions {
        demangle: false,
        dwarf: false,
        ..SymbolizeOptions::default()
    };
    let (frames, _) = frames_with(raw, &elf(&binary), &[start]);
    assert_eq!(outer_name(&frames[0]), Some("_ZN2ns6Widget4spinEi"));
}

#[test]
fn build_id_mismatch_gives_no_names() {
    let dir = TempDir::new().unwrap();
    let binary = compile(&dir, "cc", "inline.c", "inline", OPT_DEBUG);
    let (start, _) = file_offset(&binary, "outer");
    let module = ModuleRef {
        build_id: Some(vec![0xaa; 20]),
        ..elf(&binary)
    };
    let (frames, report) = frames_of(&module, &[start]);
    let problem = report.problem.expect("a problem");
    assert!(
        problem.starts_with("build id mismatch: recorded aaaa"),
        "{problem}"
    );
    assert!(report.build_id.is_some());
    assert_eq!(frames[0].len(), 1);
    assert_eq!(frames[0][0].function, None);

    // The right build id, zero-padded as perf.data stores it, matches.
    let mut padded = report.build_id.unwrap();
    padded.resize(20, 0);
    let module = ModuleRef {
        build_id: Some(padded),
        ..elf(&binary)
    };
    let (frames, report) = frames_of(&module, &[start]);
    assert_eq!(report.problem, None);
    assert_eq!(outer_name(&frames[0]), Some("outer"));
}

#[test]
fn rebuilt_binary_resolved_from_build_id_debug_dir() {
    // The debug file alone must give the right file offsets for the
    // usual linker layouts.
    for layout in [&[][..], &["-no-pie"], &["-Wl,-z,noseparate-code"]] {
        rebuilt_case(layout);
    }
}

fn rebuilt_case(layout: &[&str]) {
    let dir = TempDir::new().unwrap();
    let flags: Vec<&str> = OPT_DEBUG.iter().chain(layout).copied().collect();
    let binary = compile(&dir, "cc", "inline.c", "inline", &flags);
    let (outer, size) = file_offset(&binary, "outer");
    let (main, _) = file_offset(&binary, "main");
    let data = std::fs::read(&binary).unwrap();
    let build_id = object::File::parse(&*data)
        .unwrap()
        .build_id()
        .unwrap()
        .unwrap()
        .to_vec();
    // Keep the recorded build's debug file under DEBUG/.build-id/, then
    // replace the binary with a different build.
    let debug_dir = dir.path().join("debug");
    let hex: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
    let id_dir = debug_dir.join(".build-id").join(&hex[..2]);
    std::fs::create_dir_all(&id_dir).unwrap();
    let debug_file = id_dir.join(format!("{}.debug", &hex[2..]));
    run(
        "objcopy",
        &[
            "--only-keep-debug",
            binary.to_str().unwrap(),
            debug_file.to_str().unwrap(),
        ],
    );
    compile(&dir, "cc", "inline.c", "inline", &["-O0", "-g"]);

    let module = ModuleRef {
        build_id: Some(build_id),
        ..elf(&binary)
    };
    let options = SymbolizeOptions {
        debug_dirs: vec![debug_dir.to_str().unwrap().to_string()],
        ..SymbolizeOptions::default()
    };
    let mut addrs: Vec<u64> = (outer..outer + size).collect();
    addrs.push(main);
    let check = |what: &str| {
        let (frames, report) = frames_with(options.clone(), &module, &addrs);
        assert_eq!(report.problem, None, "{what} {layout:?}");
        let (main_frames, outer_frames) = frames.split_last().unwrap();
        assert_eq!(outer_name(main_frames), Some("main"), "{what} {layout:?}");
        for stack in outer_frames {
            assert_eq!(outer_name(stack), Some("outer"), "{what} {layout:?}");
        }
        assert!(
            outer_frames.iter().any(|f| f.len() == 2),
            "{what} {layout:?}"
        );
    };
    check("rebuilt");
    std::fs::remove_file(&binary).unwrap();
    check("deleted");
}

#[test]
fn container_root_path() {
    let dir = TempDir::new().unwrap();
    let binary = compile(&dir, "cc", "inline.c", "inline", OPT_DEBUG);
    let (start, _) = file_offset(&binary, "outer");
    // Our own root is `/`, so /proc/PID/root/PATH is the same file.
    let module = ModuleRef {
        pid: Some(std::process::id()),
        ..elf(&binary)
    };
    let (frames, _) = frames_of(&module, &[start]);
    assert_eq!(outer_name(&frames[0]), Some("outer"));
}

#[test]
fn broken_files_are_problems_not_panics() {
    let dir = TempDir::new().unwrap();
    let binary = compile(&dir, "cc", "inline.c", "inline", OPT_DEBUG);
    let data = std::fs::read(&binary).unwrap();
    let mut requests = Vec::new();
    let mut cut = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        requests.push(ModuleRequest {
            module: elf(&path),
            addrs: vec![0, 0x1000, u64::MAX],
        });
    };
    cut("empty", b"");
    cut("garbage", b"definitely not an ELF file at all");
    cut("header_only", &data[..64]);
    cut("truncated", &data[..data.len() / 3]);
    let mut flipped = data.clone();
    for i in (0..flipped.len()).step_by(97) {
        flipped[i] ^= 0x5a;
    }
    cut("flipped", &flipped);
    requests.push(ModuleRequest {
        module: elf(&dir.path().join("missing")),
        addrs: vec![1],
    });
    requests.push(ModuleRequest {
        module: ModuleRef {
            path: "[heap]".to_string(),
            ..elf(Path::new("/"))
        },
        addrs: vec![1],
    });
    let (table, reports) = symbolize_with(SymbolizeOptions::default(), requests.clone());
    for request in &requests {
        let id = table.find_module(&request.module).unwrap();
        for &addr in &request.addrs {
            assert!(table.lookup(id, addr).is_some());
        }
    }
    let problem = |name: &str| {
        reports[&elf(&dir.path().join(name))]
            .problem
            .clone()
            .unwrap_or_default()
    };
    assert!(
        problem("empty").contains("malformed ELF"),
        "{}",
        problem("empty")
    );
    assert!(problem("garbage").contains("malformed ELF"));
    assert!(problem("missing").starts_with("file not found"));
}

#[test]
fn randomly_corrupted_binaries_never_panic() {
    let dir = TempDir::new().unwrap();
    let binary = compile(&dir, "cc", "inline.c", "inline", OPT_DEBUG);
    let (start, size) = file_offset(&binary, "outer");
    let data = std::fs::read(&binary).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut requests = Vec::new();
    for case in 0..64 {
        let mut corrupt = data.clone();
        for _ in 0..(1 + next() % 16) {
            let at = (next() % corrupt.len() as u64) as usize;
            corrupt[at] = next() as u8;
        }
        let path = dir.path().join(format!("corrupt{case}"));
        std::fs::write(&path, &corrupt).unwrap();
        requests.push(ModuleRequest {
            module: elf(&path),
            addrs: (start..start + size).collect(),
        });
    }
    let (table, reports) = symbolize_with(SymbolizeOptions::default(), requests);
    assert_eq!(reports.len(), 64);
    assert_eq!(table.len(), 64 * size as usize);
}

#[test]
fn kallsyms_override() {
    let kallsyms = "\
ffffffff81000000 T _stext
ffffffff81001000 T do_syscall_64
ffffffff81001200 d some_data
ffffffff81002000 t schedule
ffffffffc0001000 t nf_hook_slow\t[nf_conntrack]
";
    let module = ModuleRef {
        kind: ModuleKind::Kernel,
        path: "[kernel.kallsyms]".to_string(),
        build_id: Some(vec![1, 2, 3]),
        pid: None,
    };
    let options = SymbolizeOptions {
        kallsyms_override: Some(kallsyms.to_string()),
        ..SymbolizeOptions::default()
    };
    let addrs = [
        0xffffffff81001010,
        0xffffffff81002fff,
        0xffffffffc0001004,
        0x1000,
    ];
    let (frames, report) = frames_with(options, &module, &addrs);
    assert_eq!(report.problem, None);
    let names: Vec<Option<&str>> = frames.iter().map(|f| outer_name(f)).collect();
    assert_eq!(
        names,
        [
            Some("do_syscall_64"),
            Some("schedule"),
            Some("nf_hook_slow [nf_conntrack]"),
            None
        ]
    );
    assert!(frames.iter().flatten().all(|f| f.file.is_none()));
}

#[test]
fn jit_perf_map() {
    let dir = TempDir::new().unwrap();
    let map = dir.path().join("perf-4242.map");
    std::fs::write(&map, "7f0000001000 40 jitted_a\n0x7f0000002000 0x20 Interpreted: b (x.js:3)\n7f0000001000 40 jitted_a_v2\n").unwrap();
    let module = ModuleRef {
        kind: ModuleKind::Jit,
        path: map.to_str().unwrap().to_string(),
        build_id: None,
        pid: None,
    };
    let (frames, report) = frames_of(&module, &[0x7f0000001010, 0x7f0000002010, 0x7f0000003000]);
    assert_eq!(report.problem, None);
    let names: Vec<Option<&str>> = frames.iter().map(|f| outer_name(f)).collect();
    assert_eq!(
        names,
        [Some("jitted_a_v2"), Some("Interpreted: b (x.js:3)"), None]
    );
}

#[test]
fn many_modules_in_parallel() {
    let dir = TempDir::new().unwrap();
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for i in 0..6 {
        let binary = compile(&dir, "cc", "inline.c", &format!("inline{i}"), OPT_DEBUG);
        let (start, size) = file_offset(&binary, "outer");
        let (main, _) = file_offset(&binary, "main");
        // Duplicates and unsorted input are fine.
        let addrs = vec![start + size / 2, main, start, main];
        expected.push((elf(&binary), start, main));
        requests.push(ModuleRequest {
            module: elf(&binary),
            addrs,
        });
    }
    requests.push(ModuleRequest {
        module: ModuleRef {
            kind: ModuleKind::Kernel,
            path: "[kernel.kallsyms]".to_string(),
            build_id: None,
            pid: None,
        },
        addrs: vec![0xffffffff81000010],
    });
    let options = SymbolizeOptions {
        kallsyms_override: Some("ffffffff81000000 T start_kernel\n".to_string()),
        ..SymbolizeOptions::default()
    };
    let (table, reports) = symbolize_with(options, requests);
    assert_eq!(reports.len(), 7);
    assert_eq!(table.len(), 6 * 3 + 1);
    for (module, outer, main) in expected {
        let id = table.find_module(&module).unwrap();
        assert_eq!(outer_name(table.lookup(id, outer).unwrap()), Some("outer"));
        assert_eq!(outer_name(table.lookup(id, main).unwrap()), Some("main"));
    }
    let kernel = table
        .find_recorded(&ModuleRef {
            kind: ModuleKind::Kernel,
            path: "[kernel.kallsyms]".into(),
            build_id: None,
            pid: None,
        })
        .unwrap();
    assert_eq!(
        outer_name(table.lookup(kernel, 0xffffffff81000010).unwrap()),
        Some("start_kernel")
    );

    // What a recording embeds decodes to the same names.
    let decoded = SymbolTable::decode(&table.encode()).unwrap();
    assert_eq!(decoded.len(), table.len());
    assert_eq!(
        outer_name(decoded.lookup(kernel, 0xffffffff81000010).unwrap()),
        Some("start_kernel")
    );
}
