//! What `rprof diff` compares: each input (a recording, folded stacks, or
//! pprof) reduced to stacks of function names with their weight per time
//! bucket. The kind of input is told by its content, not its name. A new
//! input kind is one more arm in [`load_bytes`] that fills an [`Input`].

use std::path::Path;

use rustc_hash::FxHashMap;

use super::DiffError;
use crate::aggregate::{EventId, Namer, Profile, StackId};
use crate::output::folded::folded_frame_name;
use crate::output::pprof;

/// Index of a function name in a [`Functions`] table.
pub type FuncId = u32;

/// Function names shared by all inputs of one diff, so the same name is the
/// same id on both sides.
#[derive(Debug, Clone, Default)]
pub struct Functions {
    names: Vec<String>,
    index: FxHashMap<String, FuncId>,
}

impl Functions {
    pub fn intern(&mut self, name: &str) -> FuncId {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.names.len() as FuncId;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), id);
        id
    }

    pub fn name(&self, id: FuncId) -> &str {
        &self.names[id as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// How an input was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// perf.data written by rprof or Linux perf (file or pipe mode).
    Recording,
    /// `stack count` lines.
    Folded,
    /// profile.proto, gzipped or not.
    Pprof,
}

impl InputKind {
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Recording => "recording",
            InputKind::Folded => "folded",
            InputKind::Pprof => "pprof",
        }
    }
}

/// One stack of an input, root first (the process name, then callers, then
/// the leaf), with its weight overall and per time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputStack {
    pub frames: Box<[FuncId]>,
    pub weight: u64,
    /// (bucket, weight), sorted by bucket; empty for inputs without times.
    pub buckets: Vec<(u32, u64)>,
}

/// One input file, reduced.
#[derive(Debug, Clone)]
pub struct Input {
    /// As given on the command line.
    pub name: String,
    pub kind: InputKind,
    /// The event shown (recordings and pprof), e.g. `cpu-clock`.
    pub event: Option<String>,
    /// Unit of the weights: `ns`, `samples`, `events`, ...
    pub unit: String,
    pub samples: Option<u64>,
    /// First to last sample, when known.
    pub duration_ns: Option<u64>,
    /// Width of a time bucket; None when the input has no times.
    pub bucket_ns: Option<u64>,
    /// Buckets from the first sample's to the last's (0 without times).
    pub buckets: u32,
    pub stacks: Vec<InputStack>,
    /// What the reader wanted the user to know.
    pub warnings: Vec<String>,
}

impl Input {
    pub fn total_weight(&self) -> u64 {
        self.stacks
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.weight))
    }

    pub fn is_timed(&self) -> bool {
        self.bucket_ns.is_some() && self.buckets > 0
    }
}

/// Merges stacks by frames, and bucket lists by bucket.
#[derive(Debug, Default)]
pub struct StackCollector {
    index: FxHashMap<Box<[FuncId]>, usize>,
    stacks: Vec<InputStack>,
}

impl StackCollector {
    pub fn add(&mut self, frames: &[FuncId], bucket: Option<u32>, weight: u64) {
        let slot = match self.index.get(frames) {
            Some(&slot) => slot,
            None => {
                self.stacks.push(InputStack {
                    frames: frames.into(),
                    weight: 0,
                    buckets: Vec::new(),
                });
                self.index.insert(frames.into(), self.stacks.len() - 1);
                self.stacks.len() - 1
            }
        };
        let stack = &mut self.stacks[slot];
        stack.weight = stack.weight.saturating_add(weight);
        if let Some(bucket) = bucket {
            match stack.buckets.last_mut() {
                Some(last) if last.0 == bucket => last.1 = last.1.saturating_add(weight),
                _ => stack.buckets.push((bucket, weight)),
            }
        }
    }

    /// The stacks, each one's buckets sorted and merged.
    pub fn finish(self) -> Vec<InputStack> {
        let mut stacks = self.stacks;
        for stack in &mut stacks {
            stack.buckets.sort_unstable_by_key(|b| b.0);
            let mut merged: Vec<(u32, u64)> = Vec::with_capacity(stack.buckets.len());
            for &(bucket, weight) in &stack.buckets {
                match merged.last_mut() {
                    Some(last) if last.0 == bucket => last.1 = last.1.saturating_add(weight),
                    _ => merged.push((bucket, weight)),
                }
            }
            stack.buckets = merged;
        }
        stacks
    }
}

/// What an input's first bytes say it is.
pub fn detect(bytes: &[u8]) -> Option<InputKind> {
    if bytes.starts_with(b"PERFILE2") {
        return Some(InputKind::Recording);
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Some(InputKind::Pprof);
    }
    let head = &bytes[..bytes.len().min(4096)];
    // Folded stacks are text whose first line ends in a count.
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A cut in the middle of a character at the 4096th byte is fine.
        Err(err) if err.valid_up_to() > 0 && err.error_len().is_none() => {
            std::str::from_utf8(&head[..err.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return looks_like_protobuf(bytes).then_some(InputKind::Pprof),
    };
    let first = text.lines().find(|l| !l.trim().is_empty());
    match first {
        Some(line) if folded_line(line).is_some() => Some(InputKind::Folded),
        _ if looks_like_protobuf(bytes) => Some(InputKind::Pprof),
        _ => None,
    }
}

/// An uncompressed profile.proto starts with field 1 (sample_type, length
/// delimited) or another low field number of a known wire type.
fn looks_like_protobuf(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(0x0a | 0x12 | 0x1a | 0x22 | 0x2a | 0x32))
}

/// A folded line: the stack is everything before the last whitespace, the
/// count after it.
pub fn folded_line(line: &str) -> Option<(&str, u64)> {
    let line = line.trim_end();
    let (stack, count) = line.rsplit_once(|c: char| c.is_whitespace())?;
    let count = count.parse::<u64>().ok()?;
    let stack = stack.trim_end();
    (!stack.is_empty()).then_some((stack, count))
}

/// Reads folded stacks; lines that do not parse are counted in a warning.
pub fn load_folded(name: &str, text: &str, functions: &mut Functions) -> Result<Input, DiffError> {
    let mut collector = StackCollector::default();
    let mut bad = 0usize;
    let mut frames: Vec<FuncId> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((stack, count)) = folded_line(line) else {
            bad += 1;
            continue;
        };
        frames.clear();
        frames.extend(
            stack
                .split(';')
                .filter(|f| !f.is_empty())
                .map(|f| functions.intern(f)),
        );
        collector.add(&frames, None, count);
    }
    let stacks = collector.finish();
    if stacks.is_empty() {
        return Err(DiffError::Empty(name.to_string()));
    }
    let mut warnings = Vec::new();
    if bad > 0 {
        warnings.push(format!(
            "{name}: {bad} lines are not `stack count`; left out"
        ));
    }
    Ok(Input {
        name: name.to_string(),
        kind: InputKind::Folded,
        event: None,
        unit: "counts".to_string(),
        samples: None,
        duration_ns: None,
        bucket_ns: None,
        buckets: 0,
        stacks,
        warnings,
    })
}

/// One event of a recording's model, with its time buckets. Frames are
/// named as in folded output (`_[k]`, `_[i]` suffixes), and the process
/// name is the root frame, so a recording and a folded file of the same
/// program name the same functions.
pub fn from_profile(
    name: &str,
    profile: &Profile,
    event: EventId,
    functions: &mut Functions,
) -> Input {
    let mut namer = Namer::new(profile);
    let mut named: FxHashMap<(u32, StackId), Box<[FuncId]>> = FxHashMap::default();
    let mut collector = StackCollector::default();
    let mut last_bucket = None;
    for sample in profile.samples_of(event) {
        let frames = named
            .entry((sample.thread, sample.stack))
            .or_insert_with(|| {
                let comm = profile.thread(sample.thread).comm.replace(';', ":");
                let leaf_first = namer.stack(sample.stack);
                let mut frames = Vec::with_capacity(leaf_first.len() + 1);
                frames.push(functions.intern(&comm));
                for &frame in leaf_first.iter().rev() {
                    frames.push(functions.intern(&folded_frame_name(namer.frame(frame))));
                }
                frames.into()
            });
        collector.add(frames, Some(sample.bucket), sample.weight);
        last_bucket = last_bucket.max(Some(sample.bucket));
    }
    let shown = profile.event(event);
    let duration = profile.stats.duration_ns();
    Input {
        name: name.to_string(),
        kind: InputKind::Recording,
        event: Some(shown.name.clone()),
        unit: shown.unit.to_string(),
        samples: Some(shown.samples),
        duration_ns: (duration > 0).then_some(duration),
        bucket_ns: Some(profile.time.bucket_ns),
        buckets: last_bucket.map_or(0, |b| b.saturating_add(1)),
        stacks: collector.finish(),
        warnings: profile.warnings.clone(),
    }
}

/// A pprof profile (profile.proto): one sample type (`--event` names its
/// type, e.g. `cpu`, else `default_sample_type`, else the last, as `go tool
/// pprof` picks); stacks root first from `location_id` (leaf first) and each
/// location's `line[]` (innermost first; all but the last are inlined and
/// get `_[i]`, as in rprof's folded output); the `comm` label, when samples
/// have one (rprof's do), is the root frame. pprof has no sample times, so
/// the input is untimed.
pub fn from_pprof(
    name: &str,
    profile: &pprof::proto::Profile,
    event: Option<&str>,
    functions: &mut Functions,
) -> Result<Input, DiffError> {
    let string = |i: i64| -> &str {
        usize::try_from(i)
            .ok()
            .and_then(|i| profile.string_table.get(i))
            .map_or("", |s| s.as_str())
    };
    let types: Vec<(&str, &str)> = profile
        .sample_type
        .iter()
        .map(|t| (string(t.r#type), string(t.unit)))
        .collect();
    let index = match event {
        Some(wanted) => types
            .iter()
            .position(|(t, _)| *t == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = types.iter().map(|t| t.0).collect();
                DiffError::NoSampleType {
                    name: name.to_string(),
                    wanted: wanted.to_string(),
                    has: names.join(", "),
                }
            })?,
        None => {
            let default = string(profile.default_sample_type);
            types
                .iter()
                .position(|(t, _)| profile.default_sample_type != 0 && *t == default)
                .unwrap_or(types.len().saturating_sub(1))
        }
    };
    let function_names: FxHashMap<u64, &str> = profile
        .function
        .iter()
        .map(|f| (f.id, string(f.name)))
        .collect();
    // Kernel code gets `_[k]`, as in folded output.
    let kernel: Vec<u64> = profile
        .mapping
        .iter()
        .filter(|m| string(m.filename).starts_with("[kernel"))
        .map(|m| m.id)
        .collect();
    // Per location: its frames, outermost first.
    let mut locations: FxHashMap<u64, Vec<FuncId>> = FxHashMap::default();
    for location in &profile.location {
        let in_kernel = location.mapping_id != 0 && kernel.contains(&location.mapping_id);
        let mut frames = Vec::with_capacity(location.line.len().max(1));
        let last = location.line.len().saturating_sub(1);
        for (i, line) in location.line.iter().enumerate().rev() {
            let function = function_names.get(&line.function_id).copied().unwrap_or("");
            let mut frame = if function.is_empty() {
                format!("{:#x}", location.address)
            } else {
                function.replace(';', ":")
            };
            if i < last {
                frame.push_str("_[i]");
            } else if in_kernel {
                frame.push_str("_[k]");
            }
            frames.push(functions.intern(&frame));
        }
        if frames.is_empty() {
            frames.push(functions.intern(&format!("{:#x}", location.address)));
        }
        locations.insert(location.id, frames);
    }
    let unknown = functions.intern("[unknown]");
    let mut collector = StackCollector::default();
    let mut frames: Vec<FuncId> = Vec::new();
    // A `samples` type counts samples; else count the pprof samples.
    let count_index = types.iter().position(|(t, _)| *t == "samples");
    let mut samples = 0u64;
    for sample in &profile.sample {
        let weight = sample
            .value
            .get(index)
            .map_or(0, |&v| u64::try_from(v).unwrap_or(0));
        if weight == 0 {
            continue;
        }
        samples += count_index
            .and_then(|i| sample.value.get(i))
            .map_or(1, |&v| u64::try_from(v).unwrap_or(0));
        frames.clear();
        if let Some(comm) = sample.label.iter().find(|l| string(l.key) == "comm") {
            frames.push(functions.intern(&string(comm.str).replace(';', ":")));
        }
        for id in sample.location_id.iter().rev() {
            match locations.get(id) {
                Some(location) => frames.extend_from_slice(location),
                None => frames.push(unknown),
            }
        }
        collector.add(&frames, None, weight);
    }
    let (event, unit) = types.get(index).copied().unwrap_or(("", ""));
    let duration = u64::try_from(profile.duration_nanos).unwrap_or(0);
    Ok(Input {
        name: name.to_string(),
        kind: InputKind::Pprof,
        event: (!event.is_empty()).then(|| event.to_string()),
        unit: match unit {
            "" => "count".to_string(),
            "nanoseconds" => "ns".to_string(),
            unit => unit.to_string(),
        },
        samples: Some(samples),
        duration_ns: (duration > 0).then_some(duration),
        bucket_ns: None,
        buckets: 0,
        stacks: collector.finish(),
        warnings: Vec::new(),
    })
}

/// Reads a file or, for `-`, standard input, whole.
pub fn read_input(path: &Path) -> Result<Vec<u8>, DiffError> {
    let read = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    read.map_err(|source| DiffError::Open {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_told_apart_by_content() {
        assert_eq!(detect(b"PERFILE2\x10\0\0\0"), Some(InputKind::Recording));
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Some(InputKind::Pprof));
        assert_eq!(detect(b"app;main;f 12\n"), Some(InputKind::Folded));
        assert_eq!(
            detect(b"\n\napp;main;f with space 3\n"),
            Some(InputKind::Folded)
        );
        assert_eq!(
            detect(&[0x0a, 0x04, 0x08, 0x01, 0x10, 0x02]),
            Some(InputKind::Pprof)
        );
        assert_eq!(detect(b"hello world\n"), None);
        assert_eq!(detect(b""), None);
    }

    #[test]
    fn folded_lines_merge_and_bad_lines_are_counted() {
        let mut functions = Functions::default();
        let text = "app;main;f 3\napp;main;f 2\napp;main 1\nnot a count x\n";
        let input = load_folded("t", text, &mut functions).expect("folded");
        assert_eq!(input.stacks.len(), 2);
        assert_eq!(input.total_weight(), 6);
        assert_eq!(input.stacks[0].weight, 5);
        assert_eq!(functions.name(input.stacks[0].frames[2]), "f");
        assert_eq!(input.warnings.len(), 1);
        assert!(!input.is_timed());
        assert!(load_folded("e", "junk\n", &mut functions).is_err());
    }

    #[test]
    fn pprof_stacks_are_root_first_with_inline_frames_and_comm() {
        use crate::output::pprof::proto;
        let strings = [
            "",
            "samples",
            "count",
            "cpu",
            "nanoseconds",
            "main",
            "f",
            "g",
            "comm",
            "app",
        ];
        let profile = proto::Profile {
            sample_type: vec![
                proto::ValueType { r#type: 1, unit: 2 },
                proto::ValueType { r#type: 3, unit: 4 },
            ],
            function: vec![
                proto::Function {
                    id: 1,
                    name: 5,
                    ..Default::default()
                },
                proto::Function {
                    id: 2,
                    name: 6,
                    ..Default::default()
                },
                proto::Function {
                    id: 3,
                    name: 7,
                    ..Default::default()
                },
            ],
            location: vec![
                proto::Location {
                    id: 10,
                    line: vec![proto::Line {
                        function_id: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                // g inlined into f.
                proto::Location {
                    id: 11,
                    line: vec![
                        proto::Line {
                            function_id: 3,
                            ..Default::default()
                        },
                        proto::Line {
                            function_id: 2,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
            ],
            sample: vec![proto::Sample {
                location_id: vec![11, 10],
                value: vec![2, 500],
                label: vec![proto::Label {
                    key: 8,
                    str: 9,
                    ..Default::default()
                }],
            }],
            string_table: strings.iter().map(|s| s.to_string()).collect(),
            duration_nanos: 1_000_000_000,
            default_sample_type: 3,
            ..Default::default()
        };
        let mut functions = Functions::default();
        let input = from_pprof("p", &profile, None, &mut functions).expect("pprof");
        let names: Vec<&str> = input.stacks[0]
            .frames
            .iter()
            .map(|&f| functions.name(f))
            .collect();
        assert_eq!(names, ["app", "main", "f", "g_[i]"]);
        assert_eq!(input.stacks[0].weight, 500, "default sample type cpu");
        assert_eq!(input.unit, "ns");
        assert_eq!(input.samples, Some(2));
        assert!(!input.is_timed());
        let counts = from_pprof("p", &profile, Some("samples"), &mut functions).expect("samples");
        assert_eq!(counts.total_weight(), 2);
        assert!(from_pprof("p", &profile, Some("nope"), &mut functions).is_err());
    }

    #[test]
    fn collector_sorts_and_merges_buckets() {
        let mut c = StackCollector::default();
        c.add(&[1, 2], Some(5), 1);
        c.add(&[1, 2], Some(3), 1);
        c.add(&[1, 2], Some(5), 2);
        c.add(&[1], Some(0), 7);
        let stacks = c.finish();
        assert_eq!(stacks[0].buckets, vec![(3, 1), (5, 3)]);
        assert_eq!(stacks[0].weight, 4);
        assert_eq!(stacks[1].buckets, vec![(0, 7)]);
    }
}
