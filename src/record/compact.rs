//! DWARF-mode recordings made small: once the data is written, every
//! sample's copied user registers and stack (8 KB a sample by default) are
//! unwound here, with the same unwinder `report` uses, and the file is
//! rewritten with the resulting call chains in their place.
//!
//! Unwinding right after recording, not at report time, also reads each
//! binary's unwind tables while it is still the binary that ran. What perf
//! sees in such a file is an ordinary call-chain recording (frame-pointer
//! style); see docs/file-format.md, "DWARF mode".
//!
//! The rewrite goes to a temporary file beside the output and replaces it
//! only when complete: interrupted, the output keeps the stack copies,
//! which `rprof report` and `perf report` still unwind.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::RecordError;
use crate::abi::{context, flag, sample};
use crate::perfdata::writer::{encode, AttrEntry};
use crate::perfdata::{PerfDataWriter, PerfFile, Record, Sample, UnwoundStacks};
use crate::process::ProcessModel;
use crate::progress::Progress;
use crate::symbolize::unwind_info::ElfUnwindInfo;
use crate::unwind::dwarf::Completion;
use crate::unwind::{self, RawFrame, Space, StackUnwinder};

/// The sample fields the rewrite re-encodes faithfully (see
/// [`encode::sample`]); a recording with others keeps its stack copies.
const REENCODED: u64 = sample::IDENTIFIER
    | sample::IP
    | sample::TID
    | sample::TIME
    | sample::ID
    | sample::CPU
    | sample::PERIOD
    | sample::CALLCHAIN
    | sample::REGS_USER
    | sample::STACK_USER
    | sample::CGROUP;

/// Records unwound together (on all cores) and written as one round.
const BATCH: usize = 4096;

/// Whether `entries` copy user stacks, and can be rewritten without them.
pub(crate) fn wanted(entries: &[AttrEntry]) -> bool {
    entries
        .iter()
        .any(|e| e.attr.sample_type & sample::STACK_USER != 0)
        && entries.iter().all(|e| e.attr.sample_type & !REENCODED == 0)
}

/// The attrs of the rewritten file: call chains with user frames, no
/// register or stack copies; the same ids, so every record's sample id
/// still names its event.
fn compact_attrs(entries: &[AttrEntry]) -> Vec<AttrEntry> {
    entries
        .iter()
        .map(|entry| {
            let mut attr = entry.attr;
            if attr.sample_type & sample::STACK_USER != 0 {
                attr.sample_type &= !(sample::REGS_USER | sample::STACK_USER);
                attr.sample_regs_user = 0;
                attr.sample_stack_user = 0;
                attr.flags &= !flag::EXCLUDE_CALLCHAIN_USER;
            }
            AttrEntry {
                attr,
                ids: entry.ids.clone(),
            }
        })
        .collect()
}

/// Where the rewrite is written before it replaces `output`: beside it
/// (the same file system, so the rename is atomic), hidden, per process.
pub(crate) fn temp_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rprof.data".into());
    output.with_file_name(format!(".{name}.unwinding.{}", std::process::id()))
}

/// Rewrites the DWARF recording `raw` into a new file at `temp` with the
/// user stacks unwound; returns the writer (data complete, features not
/// written yet) and what was done. On error the temporary file is removed.
pub(crate) fn rewrite(
    raw: &PerfFile,
    entries: &[AttrEntry],
    temp: &Path,
    progress: &dyn Progress,
    warnings: &mut Vec<String>,
) -> Result<(PerfDataWriter, UnwoundStacks), RecordError> {
    let mut out = PerfDataWriter::create(temp, &compact_attrs(entries))?;
    let copied = copy_unwound(raw, entries, &mut out, progress, warnings).and_then(|stats| {
        out.mark_data_complete()?;
        Ok(stats)
    });
    match copied {
        Ok(stats) => Ok((out, stats)),
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(temp);
            Err(e)
        }
    }
}

fn copy_unwound(
    raw: &PerfFile,
    entries: &[AttrEntry],
    out: &mut PerfDataWriter,
    progress: &dyn Progress,
    warnings: &mut Vec<String>,
) -> Result<UnwoundStacks, RecordError> {
    let copies_stack: Vec<bool> = raw
        .attrs()
        .iter()
        .map(|a| a.sample_type & sample::STACK_USER != 0)
        .collect();
    let compact = compact_attrs(entries);
    let sample_types: Vec<u64> = compact.iter().map(|e| e.attr.sample_type).collect();
    let mut stats = UnwoundStacks {
        stack_bytes: entries
            .iter()
            .map(|e| u64::from(e.attr.sample_stack_user))
            .max()
            .unwrap_or(0),
        ..UnwoundStacks::default()
    };
    let mut model = ProcessModel::new();
    let mut unwinder = StackUnwinder::new(Box::new(ElfUnwindInfo::default()));
    let mut frames: Vec<RawFrame> = Vec::new();
    let mut chain: Vec<u64> = Vec::new();
    let mut records = raw.ordered();
    let mut batch: Vec<(Record<'_>, &[u8])> = Vec::with_capacity(BATCH);
    progress.begin("unwinding stacks", raw.len() as u64);
    let mut reported = 0;
    loop {
        batch.clear();
        while batch.len() < BATCH {
            match records.next_with_raw() {
                Some((record, Some(bytes))) => batch.push((record, bytes)),
                // rprof writes no compressed data: not its own recording.
                Some((_, None)) => {
                    return Err(RecordError::Other(
                        "the recording holds compressed records".into(),
                    ))
                }
                None => break,
            }
        }
        if batch.is_empty() {
            break;
        }
        // The process model in time order gives each stack its mappings;
        // the stacks themselves are unwound on all cores.
        let mut jobs = Vec::with_capacity(batch.len());
        for (record, _) in &batch {
            match record {
                Record::Sample(s) if copies_stack.get(s.attr_index) == Some(&true) => {
                    jobs.push(unwinder.job(&model, s));
                }
                other => {
                    jobs.push(None);
                    if let Record::Exit(t) = other {
                        if t.pid == t.tid {
                            unwinder.forget(t.pid);
                        }
                    }
                    model.apply(other);
                }
            }
        }
        let unwound = unwind::run_all(&jobs);
        drop(jobs);
        for ((record, bytes), unwound) in batch.iter().zip(unwound) {
            let sample = match record {
                Record::Sample(s) if copies_stack.get(s.attr_index) == Some(&true) => s,
                _ => {
                    out.write_raw(bytes)?;
                    continue;
                }
            };
            let sample_type = sample_types[sample.attr_index];
            let kept = match unwound {
                Some((user, done)) => {
                    stats.unwound += 1;
                    stats.truncated += u64::from(done == Completion::Truncated);
                    unwind::with_user_frames(sample, &user, done, &mut frames);
                    unwound_chain(&sample.callchain, &frames, &mut chain);
                    encode::sample(sample_type, &without_copies(sample, &chain))
                }
                // No usable registers (a kernel thread): the chain as is.
                None => encode::sample(sample_type, &without_copies(sample, &sample.callchain)),
            };
            stats.dropped_bytes += (bytes.len() as u64).saturating_sub(kept.len() as u64);
            stats.kept_bytes += kept.len() as u64;
            out.write_raw(&kept)?;
        }
        // The output is in time order: a round per batch lets perf's
        // reader release what came before.
        out.write_raw(&encode::finished_round())?;
        let read = records.bytes_read();
        progress.advance(read.saturating_sub(reported) as u64);
        reported = read;
    }
    progress.end();
    warnings.extend(unwinder.warnings());
    Ok(stats)
}

/// `sample` without its register and stack copies, with `chain` as its
/// call chain.
fn without_copies<'a>(sample: &'a Sample<'_>, chain: &'a [u64]) -> Sample<'a> {
    Sample {
        attr_index: sample.attr_index,
        cpumode: sample.cpumode,
        ip: sample.ip,
        pid: sample.pid,
        tid: sample.tid,
        time: sample.time,
        cpu: sample.cpu,
        period: sample.period,
        callchain: Cow::Borrowed(chain),
        id: sample.id,
        user_regs: None,
        user_stack: Cow::Borrowed(&[]),
        raw: Cow::Borrowed(&sample.raw),
        cgroup: sample.cgroup,
    }
}

/// The call chain perf would have walked: the kernel's part as it was
/// (markers included), then `PERF_CONTEXT_USER` and the unwound user
/// addresses (the IP first, then return addresses), ending in
/// [`unwind::TRUNCATED_MARK`] for a walk cut short.
fn unwound_chain(kernel_chain: &[u64], frames: &[RawFrame], out: &mut Vec<u64>) {
    out.clear();
    let kernel_end = kernel_chain
        .iter()
        .position(|&a| a == context::USER)
        .unwrap_or(kernel_chain.len());
    out.extend_from_slice(&kernel_chain[..kernel_end]);
    let user = frames.iter().filter(|f| f.space != Space::Kernel);
    let mut first = true;
    for frame in user {
        out.push(match frame.space {
            Space::Truncated => unwind::TRUNCATED_MARK,
            // Readers look callers up one byte back (in the call); an
            // address that is not a return address (the code a signal
            // interrupted, the signal trampoline) is stored one byte on so
            // that lookup lands on it.
            _ if !first && !frame.is_return_address => frame.addr.wrapping_add(1),
            _ => frame.addr,
        });
        if first {
            out.insert(out.len() - 1, context::USER);
            first = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CallGraph, EventSpec, Sampling};

    fn dwarf_entry() -> AttrEntry {
        let attr = EventSpec::cpu_clock(
            Sampling::Frequency(999),
            CallGraph::Dwarf { stack_bytes: 8192 },
        )
        .to_attr();
        AttrEntry { attr, ids: vec![7] }
    }

    #[test]
    fn rewritten_attrs_drop_the_copies_and_keep_ids_and_trailer_bits() {
        let entry = dwarf_entry();
        assert!(wanted(std::slice::from_ref(&entry)));
        let compact = compact_attrs(std::slice::from_ref(&entry));
        let attr = compact[0].attr;
        assert_eq!(
            attr.sample_type & (sample::REGS_USER | sample::STACK_USER),
            0
        );
        assert_eq!((attr.sample_regs_user, attr.sample_stack_user), (0, 0));
        assert!(attr.sample_type & sample::CALLCHAIN != 0);
        assert!(!attr.has_flag(flag::EXCLUDE_CALLCHAIN_USER));
        // The sample id trailer of the other records depends on these.
        let trailer = sample::TID | sample::TIME | sample::ID | sample::CPU | sample::IDENTIFIER;
        assert_eq!(attr.sample_type & trailer, entry.attr.sample_type & trailer);
        assert!(attr.has_flag(flag::SAMPLE_ID_ALL));
        assert_eq!(compact[0].ids, vec![7]);
    }

    #[test]
    fn cgroup_ids_survive_the_rewrite() {
        let mut entry = dwarf_entry();
        entry.attr.sample_type |= sample::CGROUP;
        assert!(wanted(std::slice::from_ref(&entry)));
        let attr = compact_attrs(std::slice::from_ref(&entry))[0].attr;
        assert_ne!(attr.sample_type & sample::CGROUP, 0);
        let sample = Sample {
            cgroup: Some(4242),
            callchain: vec![0x40_1000].into(),
            ..Sample::default()
        };
        let kept = without_copies(&sample, &[0x40_1000, 0x40_2000]);
        assert_eq!(kept.cgroup, Some(4242));
        // Encoded last, where the kernel puts it after the fields kept.
        let bytes = encode::sample(attr.sample_type, &kept);
        assert_eq!(bytes[bytes.len() - 8..], 4242u64.to_ne_bytes());
    }

    #[test]
    fn frame_pointer_recordings_and_unknown_fields_are_left_alone() {
        let fp = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer).to_attr();
        assert!(!wanted(&[AttrEntry {
            attr: fp,
            ids: vec![]
        }]));
        let mut odd = dwarf_entry();
        odd.attr.sample_type |= sample::RAW;
        assert!(!wanted(&[odd]));
    }

    #[test]
    fn chain_is_kernel_part_then_user_frames_then_the_mark() {
        let kernel = [
            context::KERNEL,
            0xffff_ffff_8100_0010,
            0xffff_ffff_8100_0020,
        ];
        let user = |addr, ret| RawFrame {
            addr,
            space: Space::User,
            is_return_address: ret,
        };
        let frames = [
            RawFrame {
                addr: 0xffff_ffff_8100_0010,
                space: Space::Kernel,
                is_return_address: false,
            },
            user(0x40_1000, false),
            user(0x40_2000, true),
            // Interrupted by a signal here: not a return address.
            user(0x40_3000, false),
            RawFrame::TRUNCATED,
        ];
        let mut chain = Vec::new();
        unwound_chain(&kernel, &frames, &mut chain);
        assert_eq!(
            chain,
            [
                context::KERNEL,
                0xffff_ffff_8100_0010,
                0xffff_ffff_8100_0020,
                context::USER,
                0x40_1000,
                0x40_2000,
                0x40_3001,
                unwind::TRUNCATED_MARK
            ]
        );
        // A user-mode sample: the kernel chain is empty or only the marker.
        unwound_chain(&[context::USER], &frames[1..3], &mut chain);
        assert_eq!(chain, [context::USER, 0x40_1000, 0x40_2000]);
    }

    #[test]
    fn temp_file_is_hidden_beside_the_output() {
        let temp = temp_path(Path::new("/data/x/rprof.data"));
        assert_eq!(temp.parent(), Some(Path::new("/data/x")));
        let name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".rprof.data.unwinding."), "{name}");
    }
}
