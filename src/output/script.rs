//! `report --format script`: one line per sample in time order, like
//! `perf script`: `comm pid/tid [cpu] secs.usecs: period event: ...`, then
//! a tracepoint's fields (`name=value`, from the format files the
//! recording keeps) or the sampled address. Unlike the other formats it
//! reads the records, not the aggregated profile.

use std::collections::HashMap;
use std::io::{self, Write};

use crate::abi::{event_type, EventAttr};
use crate::event::event_name;
use crate::event::tracepoint::TracepointFormat;
use crate::perfdata::format::{decode_trace_formats, feature};
use crate::perfdata::reader::PerfFile;
use crate::perfdata::records::Record;

/// How each attr (by index) is shown.
#[derive(Debug, Clone, Default)]
pub struct ScriptEvents {
    names: Vec<String>,
    formats: Vec<Option<TracepointFormat>>,
}

impl ScriptEvents {
    /// Names from the file's event descriptions (perf's spelling when
    /// absent); tracepoint formats by id from `trace_formats`.
    pub fn new(attrs: &[EventAttr], names: &[String], trace_formats: &[String]) -> ScriptEvents {
        let parsed: Vec<TracepointFormat> = trace_formats
            .iter()
            .filter_map(|text| TracepointFormat::parse(text))
            .collect();
        ScriptEvents {
            names: attrs
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    names
                        .get(i)
                        .filter(|n| !n.is_empty())
                        .cloned()
                        .unwrap_or_else(|| event_name(a.kind, a.config))
                })
                .collect(),
            formats: attrs
                .iter()
                .map(|a| {
                    (a.kind == event_type::TRACEPOINT)
                        .then(|| parsed.iter().find(|f| f.id == a.config).cloned())
                        .flatten()
                })
                .collect(),
        }
    }

    /// For a file: its attrs, event names and RPROF_TRACE_FORMATS section.
    pub fn of_file(file: &PerfFile) -> ScriptEvents {
        let formats = file
            .feature(feature::RPROF_TRACE_FORMATS)
            .map(decode_trace_formats)
            .unwrap_or_default();
        ScriptEvents::new(file.attrs(), &file.metadata().event_names, &formats)
    }
}

/// Writes one line per sample of `records` (in time order); returns the
/// number of samples written.
pub fn write_script<'a>(
    records: impl Iterator<Item = Record<'a>>,
    events: &ScriptEvents,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let mut comms: HashMap<u32, String> = HashMap::new();
    let mut written = 0;
    for record in records {
        match record {
            Record::Comm(c) => {
                comms.insert(c.tid, c.comm);
            }
            Record::Fork(t) => {
                if let Some(parent) = comms.get(&t.ptid).cloned() {
                    comms.entry(t.tid).or_insert(parent);
                }
            }
            Record::Sample(s) => {
                let comm = comms.get(&s.tid).map_or(":unknown", String::as_str);
                let name = events.names.get(s.attr_index).map_or("?", String::as_str);
                write!(
                    out,
                    "{comm:>16} {:>7}/{:<7} [{:03}] {:>6}.{:06}: {:>10} {name}: ",
                    s.pid,
                    s.tid,
                    s.cpu,
                    s.time / 1_000_000_000,
                    s.time % 1_000_000_000 / 1000,
                    s.period,
                )?;
                match events.formats.get(s.attr_index).and_then(Option::as_ref) {
                    Some(format) => writeln!(out, "{}", format.render(&s.raw))?,
                    None if !s.raw.is_empty() => writeln!(out, "raw {} bytes", s.raw.len())?,
                    None => writeln!(out, "{:x}", s.ip)?,
                }
                written += 1;
            }
            _ => {}
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perfdata::records::{Comm, Sample};
    use std::borrow::Cow;

    #[test]
    fn tracepoint_samples_show_their_fields_and_others_their_address() {
        let format = "name: sched_process_exec\nID: 365\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;\n";
        let attrs = [
            EventAttr {
                kind: event_type::TRACEPOINT,
                config: 365,
                ..EventAttr::default()
            },
            EventAttr {
                kind: event_type::SOFTWARE,
                config: 2,
                ..EventAttr::default()
            },
        ];
        let events = ScriptEvents::new(
            &attrs,
            &["sched:sched_process_exec".into()],
            &[format.to_string()],
        );
        let mut raw = vec![0u8; 16];
        raw[8..12].copy_from_slice(&4242i32.to_le_bytes());
        let records = vec![
            Record::Comm(Comm {
                pid: 7,
                tid: 7,
                comm: "true".into(),
                exec: true,
                sample_id: Default::default(),
            }),
            Record::Sample(Sample {
                attr_index: 0,
                pid: 7,
                tid: 7,
                cpu: 1,
                time: 12_345_678_901,
                period: 1,
                raw: Cow::Owned(raw),
                ..Sample::default()
            }),
            Record::Sample(Sample {
                attr_index: 1,
                pid: 8,
                tid: 9,
                ip: 0x401000,
                period: 3,
                ..Sample::default()
            }),
        ];
        let mut out = Vec::new();
        let n = write_script(records.into_iter(), &events, &mut out).unwrap();
        assert_eq!(n, 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0]
                .ends_with("[001]     12.345678:          1 sched:sched_process_exec: pid=4242"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].trim_start().starts_with("true       7/7"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains(":unknown") && lines[1].ends_with("page-faults: 401000"));
    }
}
