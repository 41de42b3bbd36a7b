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

pub mod cache;
mod debuginfo;
mod demangle;
mod elf;
mod files;
pub mod held;
mod jit;
mod kernel;
mod prune;
pub mod table;
pub mod unwind_info;

pub use cache::{CacheLimits, SymbolCache};
pub use demangle::demangle;
pub use files::{open_regular, strip_deleted, Links};
pub use jit::PerfMap;
pub use kernel::Kallsyms;
pub use table::{DecodeError, SymbolTable};

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

// Modules are what the process model finds mapped; symbolization takes
// them as they are.
pub use crate::process::{ModuleKind, ModuleRef};
use crate::progress::{NoProgress, Progress};

/// One frame of a symbolized address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function name; `None` when no symbol covers the address.
    /// Shared: many frames name the same function and file.
    pub function: Option<Arc<str>>,
    pub file: Option<Arc<str>>,
    /// 0 when unknown.
    pub line: u32,
    /// True for frames inlined into the next (outer) frame.
    pub inlined: bool,
}

impl Frame {
    /// The single frame of an address named by a symbol table alone
    /// (kallsyms, JIT maps): no source line, nothing inlined.
    pub fn function_only(name: String) -> Frames {
        Frames::from([Frame {
            function: Some(name.into()),
            file: None,
            line: 0,
            inlined: false,
        }])
    }
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
    /// Global debug directories (default `/usr/lib/debug`, then perf's
    /// build-id cache `~/.debug`, where `perf archive` files unpack).
    pub debug_dirs: Vec<String>,
    /// Kallsyms text to use instead of `/proc/kallsyms` (tests).
    pub kallsyms_override: Option<String>,
}

impl Default for SymbolizeOptions {
    fn default() -> Self {
        SymbolizeOptions {
            dwarf: true,
            demangle: true,
            debug_dirs: std::iter::once("/usr/lib/debug".to_string())
                .chain(
                    std::env::var("HOME")
                        .ok()
                        .map(|home| format!("{home}/.debug")),
                )
                .collect(),
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
        self.symbolize_with_progress(requests, &NoProgress)
    }

    /// [`Symbolizer::symbolize`], counting modules done on `progress`.
    pub fn symbolize_with_progress(
        &self,
        requests: Vec<ModuleRequest>,
        progress: &dyn Progress,
    ) -> (SymbolTable, HashMap<ModuleRef, ModuleReport>) {
        let requests = merge_requests(requests);
        progress.begin("symbolizing modules", requests.len() as u64);
        // Parsed at most once, and only if a kernel module asks.
        let kallsyms = OnceLock::new();
        let results: Vec<(ModuleRef, Vec<u64>, Resolved)> = requests
            .into_par_iter()
            .map(|(module, addrs)| {
                let resolved = self.symbolize_guarded(&module, &addrs, &kallsyms);
                progress.advance(1);
                (module, addrs, resolved)
            })
            .collect();
        progress.end();

        let mut table = SymbolTable::new();
        let unknown: Frames = unknown_frames().into();
        let mut reports = HashMap::with_capacity(results.len());
        for (module, addrs, resolved) in results {
            let id = table.module_id(&module);
            let mut frames = resolved.frames.into_iter();
            for addr in addrs {
                let found = frames.next().filter(|f| !f.is_empty());
                table.insert_frames(id, addr, found.unwrap_or_else(|| unknown.clone()));
            }
            reports.insert(module, resolved.report);
        }
        (table, reports)
    }

    /// A bug in a file parser must cost one module's names, not the report.
    fn symbolize_guarded(
        &self,
        module: &ModuleRef,
        addrs: &[u64],
        kallsyms: &OnceLock<Result<Kallsyms, String>>,
    ) -> Resolved {
        let run = || self.symbolize_module(module, addrs, kallsyms);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|_| Resolved {
            frames: Vec::new(),
            report: ModuleReport {
                build_id: None,
                problem: Some(format!(
                    "internal error while reading {} (a parser panicked; please report)",
                    module.path
                )),
            },
        })
    }

    fn symbolize_module(
        &self,
        module: &ModuleRef,
        addrs: &[u64],
        kallsyms: &OnceLock<Result<Kallsyms, String>>,
    ) -> Resolved {
        match module.kind {
            ModuleKind::Elf => elf::symbolize(module, addrs, &self.options),
            ModuleKind::Kernel => {
                let kallsyms = kallsyms.get_or_init(|| {
                    Kallsyms::load_for(addrs, &self.options).map_err(|e| e.to_string())
                });
                kernel::symbolize(module, addrs, &self.options, kallsyms)
            }
            ModuleKind::Jit => jit::symbolize(module, addrs),
            ModuleKind::Marker => marker(module, addrs),
        }
    }
}

/// One request per module, addresses sorted (locality in the lookup
/// structures) and unique (each resolved once).
fn merge_requests(requests: Vec<ModuleRequest>) -> Vec<(ModuleRef, Vec<u64>)> {
    let mut merged: HashMap<ModuleRef, Vec<u64>> = HashMap::with_capacity(requests.len());
    for request in requests {
        merged
            .entry(request.module)
            .or_default()
            .extend(request.addrs);
    }
    let mut merged: Vec<(ModuleRef, Vec<u64>)> = merged
        .into_iter()
        .map(|(module, mut addrs)| {
            addrs.sort_unstable();
            addrs.dedup();
            (module, addrs)
        })
        .collect();
    // Biggest first, so one large module does not start last.
    merged.sort_by_key(|(_, addrs)| std::cmp::Reverse(addrs.len()));
    merged
}

fn unknown_frames() -> Vec<Frame> {
    vec![Frame {
        function: None,
        file: None,
        line: 0,
        inlined: false,
    }]
}

/// One module's answer: `frames` is empty (nothing resolved) or holds one
/// entry per requested address, in order; an empty entry means unknown.
/// Equal neighbours may share one `Frames`.
struct Resolved {
    frames: Vec<Frames>,
    report: ModuleReport,
}

/// A marker module names every address after itself (`[truncated]`).
fn marker(module: &ModuleRef, addrs: &[u64]) -> Resolved {
    let named = Frame::function_only(module.path.clone());
    Resolved {
        frames: addrs.iter().map(|_| Arc::clone(&named)).collect(),
        report: ModuleReport::default(),
    }
}

/// Why a module (or all of its addresses) could not be resolved; becomes
/// [`ModuleReport::problem`].
#[derive(Debug, thiserror::Error)]
pub enum SymbolizeError {
    #[error("file not found: {0}")]
    NotFound(String),
    #[error("file was deleted and is gone: {0}")]
    Deleted(String),
    #[error("no file behind mapping {0}")]
    NoFile(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing {path}: {detail}")]
    Untrusted { path: String, detail: String },
    #[error("malformed ELF {path}: {source}")]
    Malformed {
        path: String,
        #[source]
        source: object::Error,
    },
    #[error("not an ELF file: {0}")]
    NotElf(String),
    #[error("build id mismatch: recorded {recorded}, on disk {on_disk}")]
    BuildIdMismatch { recorded: String, on_disk: String },
    #[error("no symbols")]
    NoSymbols,
    #[error("kallsyms: {0}")]
    Kallsyms(String),
}
