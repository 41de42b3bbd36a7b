//! Call trees under the rows of the `top` table, like `perf report -g`:
//! under a function, who called it (callee order) or what it called
//! (caller order), each branch with its share of the event's total.

use std::io::{self, Write};

use rustc_hash::FxHashMap;

use super::text::{self, percent, Fit};
use crate::aggregate::{FrameId, NamedProfile};

/// Which way a tree grows from its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreeOrder {
    /// Toward the callers, out to the thread's first frame (perf's default).
    #[default]
    Callee,
    /// Toward the callees, down to the leaves.
    Caller,
}

/// Options for the trees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeOptions {
    /// Direction (default callee: who calls the function).
    pub order: TreeOrder,
    /// Levels below the function; 0 (default): all.
    pub max_depth: usize,
    /// Branches below this percentage of the event's total are summed into
    /// one "more" line (default 0.5, perf's call-graph threshold).
    pub branch_limit: f64,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            order: TreeOrder::Callee,
            max_depth: 0,
            branch_limit: 0.5,
        }
    }
}

/// The deepest a tree goes: the kernel's call chains stop at 127 frames
/// by default, and a crafted file's longer chains must not exhaust the
/// stack the tree is printed with.
pub const MAX_DEPTH: usize = 1024;

struct Node {
    frame: FrameId,
    weight: u64,
    children: Vec<u32>,
}

/// One function's tree. Node 0 is the function itself.
pub struct CallTree {
    nodes: Vec<Node>,
    index: FxHashMap<(u32, FrameId), u32>,
}

impl Default for CallTree {
    fn default() -> Self {
        CallTree::new()
    }
}

impl CallTree {
    pub fn new() -> CallTree {
        CallTree {
            nodes: vec![Node {
                // The function itself: its row is printed by the table.
                frame: FrameId::MAX,
                weight: 0,
                children: Vec::new(),
            }],
            index: FxHashMap::default(),
        }
    }

    /// Adds one stack's weight along `path` (the frames after the root, in
    /// the tree's direction), at most `max_depth` of them (0: up to
    /// [`MAX_DEPTH`]).
    pub fn add(&mut self, path: impl IntoIterator<Item = FrameId>, weight: u64, max_depth: usize) {
        let limit = if max_depth == 0 {
            MAX_DEPTH
        } else {
            max_depth.min(MAX_DEPTH)
        };
        self.nodes[0].weight = self.nodes[0].weight.saturating_add(weight);
        let mut at = 0u32;
        for frame in path.into_iter().take(limit) {
            let next = match self.index.get(&(at, frame)) {
                Some(&next) => next,
                None => {
                    let next = self.nodes.len() as u32;
                    self.nodes.push(Node {
                        frame,
                        weight: 0,
                        children: Vec::new(),
                    });
                    self.nodes[at as usize].children.push(next);
                    self.index.insert((at, frame), next);
                    next
                }
            };
            let node = &mut self.nodes[next as usize];
            node.weight = node.weight.saturating_add(weight);
            at = next;
        }
    }

    /// The weight at the function (what its row counts).
    pub fn weight(&self) -> u64 {
        self.nodes[0].weight
    }

    /// Writes the branches below the function, indented by `indent`
    /// columns; shares are of `total`.
    pub fn write(
        &self,
        view: &NamedProfile,
        total: u64,
        options: &TreeOptions,
        fit: &Fit,
        indent: usize,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let margin = " ".repeat(indent);
        self.write_children(0, view, total, options, fit, &margin, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_children(
        &self,
        node: u32,
        view: &NamedProfile,
        total: u64,
        options: &TreeOptions,
        fit: &Fit,
        prefix: &str,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let mut children: Vec<&Node> = self.nodes[node as usize]
            .children
            .iter()
            .map(|&c| &self.nodes[c as usize])
            .collect();
        children.sort_by(|a, b| {
            b.weight
                .cmp(&a.weight)
                .then_with(|| view.frame(a.frame).name.cmp(&view.frame(b.frame).name))
        });
        let mut shown = children
            .iter()
            .take_while(|c| percent(c.weight, total) >= options.branch_limit)
            .count();
        // One small branch is shown rather than summed as "1 more".
        if children.len() == shown + 1 {
            shown += 1;
        }
        let hidden = &children[shown..];
        let hidden_weight: u64 = hidden.iter().map(|c| c.weight).sum();
        for (i, child) in children[..shown].iter().enumerate() {
            let last = i + 1 == shown && hidden.is_empty();
            let (branch, below) = if last {
                ("`-- ", "    ")
            } else {
                ("|-- ", "|   ")
            };
            let head = format!("{prefix}{branch}{:>6.2}%  ", percent(child.weight, total));
            let room = fit.width.map_or(usize::MAX, |w| {
                w.saturating_sub(text::columns(&head)).max(16)
            });
            let name = fit.name(&view.frame(child.frame).name, room);
            writeln!(out, "{head}{name}")?;
            let id = self.index[&(node, child.frame)];
            self.write_children(
                id,
                view,
                total,
                options,
                fit,
                &format!("{prefix}{below}"),
                out,
            )?;
        }
        if !hidden.is_empty() {
            writeln!(
                out,
                "{prefix}`-- {:>6.2}%  ({} more below --branch-limit {})",
                percent(hidden_weight, total),
                hidden.len(),
                options.branch_limit
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{CodeKind, FrameInfo};

    fn view(names: &[&str]) -> NamedProfile {
        NamedProfile {
            frames: names
                .iter()
                .map(|n| FrameInfo {
                    name: n.to_string(),
                    module: "app".into(),
                    kind: CodeKind::User,
                    inlined: false,
                    resolved: true,
                })
                .collect(),
            stacks: Vec::new(),
        }
    }

    #[test]
    fn branches_sum_to_their_parent_and_small_ones_are_summed_up() {
        // 0 = work, called by 1 = a (via 3 = main) and 2 = b (via main).
        let mut tree = CallTree::new();
        tree.add([1, 3], 60, 0);
        tree.add([2, 3], 39, 0);
        tree.add([2], 1, 0);
        tree.add([4], 1, 0);
        assert_eq!(tree.weight(), 101);
        let mut out = Vec::new();
        let options = TreeOptions {
            branch_limit: 50.0,
            ..TreeOptions::default()
        };
        tree.write(
            &view(&["work", "a", "b", "main"]),
            100,
            &options,
            &Fit::default(),
            2,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "  |--  60.00%  a\n  |   `--  60.00%  main\n  `--  41.00%  (2 more below --branch-limit 50)\n"
        );
    }

    #[test]
    fn depth_is_bounded() {
        let mut tree = CallTree::new();
        tree.add([1, 2, 3], 10, 2);
        let mut out = Vec::new();
        tree.write(
            &view(&["f", "g", "h", "i"]),
            10,
            &TreeOptions::default(),
            &Fit::default(),
            0,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "`-- 100.00%  g\n    `-- 100.00%  h\n");
        let mut deep = CallTree::new();
        deep.add(0..100_000, 1, 0);
        assert_eq!(deep.nodes.len(), MAX_DEPTH + 1, "depth is capped");
    }
}
