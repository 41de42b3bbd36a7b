//! Folded stacks: `comm;caller;...;leaf WEIGHT`, one line per unique stack,
//! sorted, as FlameGraph, inferno, speedscope and Pyroscope read them.
//! Suffixes follow inferno-collapse-perf: `_[k]` kernel, `_[j]` JIT, `_[i]` inlined.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::Output;
use crate::aggregate::{CodeKind, EventId, FrameInfo, NamedProfile, Profile};

/// Folded output of one event; each line's count is the summed weight of
/// its samples, in the event's unit.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    /// The event to show (default: the first).
    pub event: EventId,
}

/// The frame as it appears in a folded line. `;` separates frames and the
/// last space separates the count, so `;` becomes `:` and spaces are kept
/// (FlameGraph treats everything before the last space as the stack).
pub fn folded_frame_name(frame: &FrameInfo) -> String {
    let mut name = frame.name.replace(';', ":");
    if frame.inlined {
        name.push_str("_[i]");
    } else if frame.resolved {
        match frame.kind {
            CodeKind::Kernel => name.push_str("_[k]"),
            CodeKind::Jit => name.push_str("_[j]"),
            CodeKind::User => {}
        }
    } else if frame.kind == CodeKind::Kernel {
        name.push_str("_[k]");
    }
    name
}

impl Folded {
    /// The folded lines (stack, count), merged and sorted by stack.
    pub fn lines(&self, profile: &NamedProfile) -> BTreeMap<String, u64> {
        let names: Vec<String> = profile.frames.iter().map(folded_frame_name).collect();
        let mut lines: BTreeMap<String, u64> = BTreeMap::new();
        for stack in &profile.stacks {
            let mut line = stack.comm.replace(';', ":");
            for &frame in stack.frames.iter().rev() {
                line.push(';');
                line.push_str(&names[frame as usize]);
            }
            let count = stack.weight;
            let total = lines.entry(line).or_insert(0);
            *total = total.saturating_add(count);
        }
        lines
    }
}

impl Output for Folded {
    fn write(&self, profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
        for (stack, count) in self.lines(&profile.named(self.event)) {
            writeln!(out, "{stack} {count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::NamedStack;

    fn frame(name: &str, kind: CodeKind, inlined: bool) -> FrameInfo {
        FrameInfo {
            name: name.into(),
            module: "m".into(),
            kind,
            inlined,
            resolved: true,
        }
    }

    #[test]
    fn lines_are_caller_first_with_suffixes_and_merged() {
        let profile = NamedProfile {
            frames: vec![
                frame("leaf;x", CodeKind::User, true),
                frame("main", CodeKind::User, false),
                frame("do_syscall_64", CodeKind::Kernel, false),
                frame("jitted", CodeKind::Jit, false),
            ],
            stacks: vec![
                NamedStack {
                    comm: "app".into(),
                    pid: 1,
                    frames: vec![0, 1].into(),
                    weight: 10,
                    samples: 1,
                },
                NamedStack {
                    comm: "app".into(),
                    pid: 2,
                    frames: vec![0, 1].into(),
                    weight: 5,
                    samples: 1,
                },
                NamedStack {
                    comm: "app".into(),
                    pid: 1,
                    frames: vec![2, 3, 1].into(),
                    weight: 7,
                    samples: 1,
                },
            ],
        };
        let text: String = Folded::default()
            .lines(&profile)
            .into_iter()
            .map(|(stack, count)| format!("{stack} {count}\n"))
            .collect();
        assert_eq!(
            text,
            "app;main;jitted_[j];do_syscall_64_[k] 7\napp;main;leaf:x_[i] 15\n"
        );
    }
}
