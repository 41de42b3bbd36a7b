//! A symbolizer that remembers: continuous recording (`record --rotate`)
//! symbolizes one interval after another, and most addresses of an
//! interval were already seen in the previous ones. [`SymbolCache`] keeps
//! the resolved frames per (module identity, address) and hands only new
//! addresses to the [`Symbolizer`].
//!
//! Module identity: kind, path and build id, plus for ELF files the file's
//! device, inode, size and modification time (most mappings carry no build
//! id, and a redeployed binary at the same path must not get the old
//! names). The pid that mapped a module does not matter (a library is the
//! same file in every process). JIT maps are never cached: a JIT reuses
//! addresses for new code.
//!
//! Memory bound: an address (and a module) not asked for during
//! [`CacheLimits::idle_intervals`] intervals is dropped, so memory follows
//! what the last intervals ran, not everything seen since the start; and
//! when more than [`CacheLimits::max_addresses`]
//! addresses are cached the least recently used modules go until the
//! total fits again. An entry costs about 40 bytes plus its frames, which
//! are shared (`Arc`) between the addresses of one line; the default
//! 500 000 addresses stay under about 50 MiB.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

use super::{
    merge_requests, Frames, ModuleKind, ModuleRef, ModuleReport, ModuleRequest, SymbolTable,
    SymbolizeOptions, Symbolizer,
};
use crate::progress::Progress;

/// How much [`SymbolCache`] keeps.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Drop an address or module unused for this many intervals (default 10).
    pub idle_intervals: u64,
    /// Most addresses kept over all modules (default 500 000).
    pub max_addresses: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            idle_intervals: 10,
            max_addresses: 500_000,
        }
    }
}

/// What tells two modules apart across intervals (see module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ModuleKey {
    kind: ModuleKind,
    path: String,
    build_id: Option<Vec<u8>>,
    /// (dev, inode, size, mtime) of an ELF file, when it could be read.
    file: Option<(u64, u64, u64, i64)>,
}

impl ModuleKey {
    fn of(module: &ModuleRef) -> ModuleKey {
        let file = (module.kind == ModuleKind::Elf)
            .then(|| file_identity(module))
            .flatten();
        ModuleKey {
            kind: module.kind,
            path: module.path.clone(),
            build_id: module.build_id.clone(),
            file,
        }
    }
}

/// The file the recorder held for the module (what was mapped), else the
/// file as the process that mapped it sees it (its mount namespace), else
/// as rprof sees it.
fn file_identity(module: &ModuleRef) -> Option<(u64, u64, u64, i64)> {
    let held = super::held::held_file(module.pid, &module.path).and_then(|f| f.metadata().ok());
    if let Some(meta) = held {
        return Some((meta.dev(), meta.ino(), meta.size(), meta.mtime()));
    }
    let in_process = module
        .pid
        .map(|pid| format!("/proc/{pid}/root{}", module.path));
    let meta = in_process
        .and_then(|p| std::fs::metadata(p).ok())
        .or_else(|| std::fs::metadata(&module.path).ok())?;
    Some((meta.dev(), meta.ino(), meta.size(), meta.mtime()))
}

struct CachedModule {
    /// Each address's frames and the interval that last asked for it.
    frames: HashMap<u64, (Frames, u64)>,
    report: ModuleReport,
    /// The interval that last asked for this module.
    last_used: u64,
}

/// A [`Symbolizer`] with a bounded memory of what it resolved before.
pub struct SymbolCache {
    symbolizer: Symbolizer,
    limits: CacheLimits,
    modules: HashMap<ModuleKey, CachedModule>,
    /// Counts calls to [`SymbolCache::symbolize`].
    interval: u64,
    /// Addresses handed to the symbolizer so far (tests, and `-v`).
    resolved: u64,
}

impl SymbolCache {
    pub fn new(options: SymbolizeOptions, limits: CacheLimits) -> SymbolCache {
        SymbolCache {
            symbolizer: Symbolizer::new(options),
            limits,
            modules: HashMap::new(),
            interval: 0,
            resolved: 0,
        }
    }

    /// How many addresses the symbolizer had to resolve so far (the rest
    /// came from the cache).
    pub fn resolved_addresses(&self) -> u64 {
        self.resolved
    }

    /// Addresses cached now.
    pub fn cached_addresses(&self) -> usize {
        self.modules.values().map(|m| m.frames.len()).sum()
    }

    /// As [`Symbolizer::symbolize_with_progress`]: a table that answers
    /// every requested address; only addresses not cached are resolved.
    pub fn symbolize(
        &mut self,
        requests: Vec<ModuleRequest>,
        progress: &dyn Progress,
    ) -> (SymbolTable, HashMap<ModuleRef, ModuleReport>) {
        self.interval += 1;
        let now = self.interval;
        let requests: Vec<(ModuleRef, ModuleKey, Vec<u64>)> = merge_requests(requests)
            .into_iter()
            .map(|(module, addrs)| {
                let key = ModuleKey::of(&module);
                (module, key, addrs)
            })
            .collect();

        let mut missing = Vec::new();
        for (module, key, addrs) in &requests {
            let mut cached = match self.modules.get_mut(key) {
                Some(cached) if module.kind != ModuleKind::Jit => {
                    cached.last_used = now;
                    Some(&mut cached.frames)
                }
                _ => None,
            };
            let new: Vec<u64> = addrs
                .iter()
                .copied()
                .filter(|a| match cached.as_mut().and_then(|c| c.get_mut(a)) {
                    Some((_, used)) => {
                        *used = now;
                        false
                    }
                    None => true,
                })
                .collect();
            if !new.is_empty() {
                missing.push(ModuleRequest {
                    module: module.clone(),
                    addrs: new,
                });
            }
        }
        self.resolved += missing.iter().map(|r| r.addrs.len() as u64).sum::<u64>();
        let (fresh, mut fresh_reports) = if missing.is_empty() {
            (SymbolTable::new(), HashMap::new())
        } else {
            self.symbolizer.symbolize_with_progress(missing, progress)
        };

        let mut table = SymbolTable::new();
        let mut reports = HashMap::with_capacity(requests.len());
        for (module, key, addrs) in requests {
            let id = table.module_id(&module);
            let fresh_id = fresh.find_module(&module);
            let report = fresh_reports.remove(&module);
            if module.kind == ModuleKind::Jit {
                for addr in addrs {
                    if let Some(frames) = fresh_id.and_then(|f| fresh.lookup(f, addr)) {
                        table.insert_frames(id, addr, frames.clone());
                    }
                }
                reports.insert(module, report.unwrap_or_default());
                continue;
            }
            let cached = self.modules.entry(key).or_insert_with(|| CachedModule {
                frames: HashMap::new(),
                report: ModuleReport::default(),
                last_used: now,
            });
            if let Some(report) = report {
                cached.report = report;
            }
            for addr in addrs {
                let frames = match cached.frames.get(&addr) {
                    Some((frames, _)) => Some(frames.clone()),
                    None => fresh_id.and_then(|f| fresh.lookup(f, addr)).cloned(),
                };
                if let Some(frames) = frames {
                    cached.frames.insert(addr, (frames.clone(), now));
                    table.insert_frames(id, addr, frames);
                }
            }
            reports.insert(module, cached.report.clone());
        }
        self.evict();
        (table, reports)
    }

    /// Applies [`CacheLimits`]: idle addresses and modules first, then the
    /// least recently used modules while over the address budget.
    fn evict(&mut self) {
        let now = self.interval;
        let idle = self.limits.idle_intervals;
        self.modules.retain(|_, m| {
            m.frames
                .retain(|_, (_, used)| now.saturating_sub(*used) < idle);
            now.saturating_sub(m.last_used) < idle
        });
        let mut total = self.cached_addresses();
        if total <= self.limits.max_addresses {
            return;
        }
        let mut by_age: Vec<(u64, usize, ModuleKey)> = self
            .modules
            .iter()
            .map(|(k, m)| (m.last_used, m.frames.len(), k.clone()))
            .collect();
        // Oldest first; among equals the biggest, so fewer modules go.
        by_age.sort_by_key(|(used, size, _)| (*used, std::cmp::Reverse(*size)));
        for (_, size, key) in by_age {
            if total <= self.limits.max_addresses {
                break;
            }
            self.modules.remove(&key);
            total -= size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    fn marker(path: &str) -> ModuleRef {
        ModuleRef {
            kind: ModuleKind::Marker,
            path: path.into(),
            build_id: None,
            pid: None,
        }
    }

    fn request(module: &ModuleRef, addrs: &[u64]) -> ModuleRequest {
        ModuleRequest {
            module: module.clone(),
            addrs: addrs.to_vec(),
        }
    }

    fn name(table: &SymbolTable, module: &ModuleRef, addr: u64) -> Option<String> {
        let id = table.find_module(module)?;
        let frames = table.lookup(id, addr)?;
        frames[0].function.as_deref().map(str::to_string)
    }

    #[test]
    fn second_interval_resolves_only_addresses_not_seen_before() {
        let mut cache = SymbolCache::new(SymbolizeOptions::default(), CacheLimits::default());
        let m = marker("[m]");
        let (table, _) = cache.symbolize(vec![request(&m, &[1, 2, 3])], &NoProgress);
        assert_eq!(cache.resolved_addresses(), 3);
        assert_eq!(name(&table, &m, 2).as_deref(), Some("[m]"));
        // Another pid mapping the same module: still the same module.
        let other_pid = ModuleRef {
            pid: Some(42),
            ..m.clone()
        };
        let (table, _) = cache.symbolize(
            vec![request(&other_pid, &[2, 3, 4]), request(&m, &[3])],
            &NoProgress,
        );
        assert_eq!(cache.resolved_addresses(), 4, "only address 4 is new");
        for addr in [2, 3, 4] {
            assert_eq!(name(&table, &other_pid, addr).as_deref(), Some("[m]"));
        }
        assert_eq!(name(&table, &m, 3).as_deref(), Some("[m]"));
        // Each table holds only what its interval asked for.
        assert_eq!(name(&table, &other_pid, 1), None);
        let (_, _) = cache.symbolize(vec![request(&m, &[1, 2, 3, 4])], &NoProgress);
        assert_eq!(cache.resolved_addresses(), 4);
    }

    #[test]
    fn elf_file_addresses_are_cached_and_the_report_kept() {
        let exe = std::env::current_exe().unwrap();
        let module = ModuleRef {
            kind: ModuleKind::Elf,
            path: exe.to_str().unwrap().into(),
            build_id: None,
            pid: None,
        };
        let mut cache = SymbolCache::new(SymbolizeOptions::default(), CacheLimits::default());
        let (first, reports) =
            cache.symbolize(vec![request(&module, &[0x1000, 0x1010])], &NoProgress);
        let (second, again) =
            cache.symbolize(vec![request(&module, &[0x1000, 0x1010])], &NoProgress);
        assert_eq!(cache.resolved_addresses(), 2);
        assert_eq!(first.len(), second.len());
        assert_eq!(
            reports[&module].build_id, again[&module].build_id,
            "the cached report keeps the build id"
        );
    }

    #[test]
    fn jit_maps_are_always_resolved_again() {
        let mut cache = SymbolCache::new(SymbolizeOptions::default(), CacheLimits::default());
        let jit = ModuleRef {
            kind: ModuleKind::Jit,
            path: "/nonexistent/perf-1.map".into(),
            build_id: None,
            pid: Some(1),
        };
        cache.symbolize(vec![request(&jit, &[5])], &NoProgress);
        cache.symbolize(vec![request(&jit, &[5])], &NoProgress);
        assert_eq!(cache.resolved_addresses(), 2);
        assert_eq!(cache.cached_addresses(), 0);
    }

    #[test]
    fn addresses_not_asked_for_lately_are_dropped_from_a_module_in_use() {
        let limits = CacheLimits {
            idle_intervals: 2,
            max_addresses: 100,
        };
        let mut cache = SymbolCache::new(SymbolizeOptions::default(), limits);
        let m = marker("[m]");
        cache.symbolize(vec![request(&m, &[1, 2, 3])], &NoProgress);
        cache.symbolize(vec![request(&m, &[1, 4])], &NoProgress);
        assert_eq!(cache.cached_addresses(), 4);
        // 2 and 3 were last asked for two intervals ago.
        cache.symbolize(vec![request(&m, &[1])], &NoProgress);
        assert_eq!(cache.cached_addresses(), 2);
        cache.symbolize(vec![request(&m, &[1, 2])], &NoProgress);
        assert_eq!(
            cache.resolved_addresses(),
            3 + 1 + 1,
            "2 was resolved again"
        );
    }

    #[test]
    fn idle_modules_are_evicted_and_the_address_budget_holds() {
        let limits = CacheLimits {
            idle_intervals: 2,
            max_addresses: 5,
        };
        let mut cache = SymbolCache::new(SymbolizeOptions::default(), limits);
        let (a, b) = (marker("[a]"), marker("[b]"));
        cache.symbolize(vec![request(&a, &[1, 2])], &NoProgress);
        cache.symbolize(vec![request(&b, &[1])], &NoProgress);
        assert_eq!(cache.cached_addresses(), 3);
        // [a] was last used two intervals ago: gone.
        cache.symbolize(vec![request(&b, &[2])], &NoProgress);
        assert_eq!(cache.cached_addresses(), 2);
        cache.symbolize(vec![request(&a, &[1])], &NoProgress);
        assert_eq!(cache.resolved_addresses(), 2 + 1 + 1 + 1);
        // Over budget: the least recently used module ([b]) goes first.
        cache.symbolize(vec![request(&a, &[2, 3, 4, 5])], &NoProgress);
        assert_eq!(cache.cached_addresses(), 5);
        cache.symbolize(vec![request(&a, &[1, 2, 3, 4, 5])], &NoProgress);
        assert_eq!(cache.resolved_addresses(), 5 + 4);
        let limits = CacheLimits {
            idle_intervals: 10,
            max_addresses: 3,
        };
        let mut cache = SymbolCache::new(SymbolizeOptions::default(), limits);
        cache.symbolize(vec![request(&b, &[1, 2])], &NoProgress);
        cache.symbolize(vec![request(&a, &[1, 2])], &NoProgress);
        assert_eq!(cache.cached_addresses(), 2, "[b] is older: evicted");
        cache.symbolize(vec![request(&a, &[1, 2])], &NoProgress);
        assert_eq!(cache.resolved_addresses(), 4);
    }
}
