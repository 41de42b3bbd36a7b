//! Symbolization: turns (module, address) pairs into function names, source
//! lines and inline frames. In-process (object + gimli + addr2line over
//! memmap2), each unique address resolved once, modules in parallel (rayon).
//! Never spawns a process.
//!
//! Address spaces: callers pass *file-relative* addresses for ELF modules
//! (`avma - map_start + pgoff`, i.e. a file offset; the ELF code converts to
//! the SVMA through the PT_LOAD headers), raw kernel virtual addresses for the
//! kernel, and raw process addresses for JIT maps. Return addresses must
//! already be adjusted by -1 (the caller knows which frames are returns).

pub mod table;

pub use table::SymbolTable;

use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModuleKind {
    /// An ELF file (executable, shared library, vdso).
    Elf,
    /// The kernel and its modules, via kallsyms.
    Kernel,
    /// A JIT map, `/tmp/perf-PID.map`.
    Jit,
}

/// What a module is and where to find it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleRef {
    pub kind: ModuleKind,
    /// Path as the process saw it (mmap file name), `[kernel.kallsyms]`,
    /// `[vdso]`, or `/tmp/perf-PID.map`.
    pub path: String,
    pub build_id: Option<Vec<u8>>,
    /// A process that mapped it: used to read `/proc/PID/root/PATH` (binaries
    /// of containerised targets) and `[vdso]` from `/proc/PID/mem`... while it lives.
    pub pid: Option<u32>,
}

/// One frame of a symbolized address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function name; `None` when no symbol covers the address.
    pub function: Option<String>,
    pub file: Option<String>,
    /// 0 when unknown.
    pub line: u32,
    /// True for frames inlined into the next (outer) frame.
    pub inlined: bool,
}

/// Frames for one address, innermost first: inlined callees, then the real
/// (outermost) function last. Never empty in a table.
pub type Frames = Arc<[Frame]>;

/// All addresses wanted from one module.
#[derive(Debug, Clone)]
pub struct ModuleRequest {
    pub module: ModuleRef,
    pub addrs: Vec<u64>,
}

/// What the symbolizer learned about a module besides the addresses.
#[derive(Debug, Clone, Default)]
pub struct ModuleReport {
    /// Build id read from the file itself (ELF note).
    pub build_id: Option<Vec<u8>>,
    /// Why nothing could be resolved (file missing, build-id mismatch, ...).
    pub problem: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SymbolizeOptions {
    /// Resolve source lines and inline frames from DWARF (default true).
    pub dwarf: bool,
    /// Demangle Rust and C++ names (default true).
    pub demangle: bool,
    /// Extra global debug directories (default `["/usr/lib/debug"]`).
    pub debug_dirs: Vec<String>,
    /// Kallsyms text to use instead of `/proc/kallsyms` (tests).
    pub kallsyms_override: Option<String>,
}

impl Default for SymbolizeOptions {
    fn default() -> Self {
        SymbolizeOptions {
            dwarf: true,
            demangle: true,
            debug_dirs: vec!["/usr/lib/debug".to_string()],
            kallsyms_override: None,
        }
    }
}

pub struct Symbolizer {
    pub options: SymbolizeOptions,
}

impl Symbolizer {
    pub fn new(options: SymbolizeOptions) -> Symbolizer {
        Symbolizer { options }
    }

    /// Resolves every requested address, modules in parallel. Addresses that
    /// cannot be named still get an entry (a frame with `function: None`) so
    /// callers can print `[unknown]` with the module name.
    pub fn symbolize(
        &self,
        requests: Vec<ModuleRequest>,
    ) -> (SymbolTable, HashMap<ModuleRef, ModuleReport>) {
        let _ = requests;
        todo!("symbolize helper")
    }
}
