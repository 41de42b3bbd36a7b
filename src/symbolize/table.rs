//! The symbol table: what a recording embeds (RPROF_SYMBOLS) and what the
//! report looks names up in.

use std::collections::HashMap;

use super::{Frame, Frames, ModuleRef};

#[derive(Debug, Clone, Default)]
pub struct SymbolTable {
    modules: Vec<ModuleRef>,
    module_index: HashMap<ModuleRef, u32>,
    entries: HashMap<(u32, u64), Frames>,
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

    /// Looks a module up by kind and path only, ignoring build id and pid
    /// (a report on another host sees the same paths).
    pub fn find_module_by_path(&self, kind: super::ModuleKind, path: &str) -> Option<u32> {
        self.modules
            .iter()
            .position(|m| m.kind == kind && m.path == path)
            .map(|i| i as u32)
    }

    pub fn modules(&self) -> &[ModuleRef] {
        &self.modules
    }

    pub fn insert(&mut self, module: u32, addr: u64, frames: Vec<Frame>) {
        self.entries.insert((module, addr), frames.into());
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
    pub fn encode(&self) -> Vec<u8> {
        todo!("symbolize helper")
    }

    /// Decodes [`SymbolTable::encode`]'s output; bounds-checked, never panics.
    pub fn decode(bytes: &[u8]) -> Result<SymbolTable, DecodeError> {
        let _ = bytes;
        todo!("symbolize helper")
    }
}
