//! Tracepoints from tracefs: `events/SUBSYS/NAME/id` gives the config of a
//! `PERF_TYPE_TRACEPOINT` event, `events/SUBSYS/NAME/format` the layout of
//! its raw sample data (kept in the recording so the report can print the
//! fields).

use std::path::{Path, PathBuf};

use super::EventError;

/// Where tracefs is mounted on current kernels, then the old debugfs place.
pub const TRACEFS_CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// A format file is a few KiB; anything far larger is not one.
const MAX_FORMAT_FILE: u64 = 64 * 1024;

/// The first candidate that holds an `events` directory.
pub fn find_tracefs(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|root| root.join("events").is_dir())
        .cloned()
}

/// A subsystem or event name as tracefs spells them: no path tricks.
fn valid_component(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !name.starts_with('.')
}

/// The tracepoint `subsys:name`'s id under the tracefs `root`.
pub fn tracepoint_id(root: Option<&Path>, subsys: &str, name: &str) -> Result<u64, EventError> {
    let root = root.ok_or(EventError::NoTracefs)?;
    let spelled = format!("{subsys}:{name}");
    if !valid_component(subsys) || !valid_component(name) {
        return Err(EventError::UnknownTracepoint {
            name: spelled,
            tracefs: root.display().to_string(),
        });
    }
    let dir = root.join("events").join(subsys).join(name);
    let text =
        super::pmu::read_small(&dir.join("id")).ok_or_else(|| EventError::UnknownTracepoint {
            name: spelled.clone(),
            tracefs: root.display().to_string(),
        })?;
    text.parse().map_err(|_| EventError::UnknownTracepoint {
        name: spelled,
        tracefs: root.display().to_string(),
    })
}

/// The `format` file of `subsys:name`, at most [`MAX_FORMAT_FILE`] bytes.
pub fn read_format(root: &Path, subsys: &str, name: &str) -> Option<String> {
    use std::io::Read;
    if !valid_component(subsys) || !valid_component(name) {
        return None;
    }
    let path = root.join("events").join(subsys).join(name).join("format");
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_FORMAT_FILE + 1)
        .read_to_string(&mut text)
        .ok()?;
    (text.len() as u64 <= MAX_FORMAT_FILE).then_some(text)
}

/// perf's `HEADER_TRACING_DATA` (trace-cmd's layout, version 0.6): what
/// Linux perf needs to open a recording with tracepoint events. Holds
/// tracefs's `header_page` and `header_event` and each recorded
/// tracepoint's format file, grouped by subsystem (`(subsys, format)`);
/// no ftrace formats, kallsyms, printk strings or saved command lines.
/// `None` when tracefs's header files cannot be read.
pub fn perf_tracing_data(root: &Path, formats: &[(String, String)]) -> Option<Vec<u8>> {
    // One large read first: tracefs regenerates these files on every
    // read, and after a short first read (std's 32-byte probe) the next
    // one returned nothing on 6.18.
    let read = |name: &str| -> Option<Vec<u8>> {
        use std::io::Read;
        let mut file = std::fs::File::open(root.join("events").join(name)).ok()?;
        let mut bytes = vec![0; MAX_FORMAT_FILE as usize + 1];
        let mut len = 0;
        while len < bytes.len() {
            match file.read(&mut bytes[len..]).ok()? {
                0 => break,
                n => len += n,
            }
        }
        bytes.truncate(len);
        (bytes.len() as u64 <= MAX_FORMAT_FILE).then_some(bytes)
    };
    let (header_page, header_event) = (read("header_page")?, read("header_event")?);
    Some(encode_tracing_data(
        &header_page,
        &header_event,
        formats,
        crate::sys::page_size() as u32,
    ))
}

/// The blob of [`perf_tracing_data`], numbers in this machine's byte order
/// (the blob says which, as the file's records are in it too).
fn encode_tracing_data(
    header_page: &[u8],
    header_event: &[u8],
    formats: &[(String, String)],
    page_size: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&[23, 8, 68]);
    out.extend_from_slice(b"tracing");
    out.extend_from_slice(b"0.6\0");
    out.push(u8::from(cfg!(target_endian = "big")));
    out.push(std::mem::size_of::<libc::c_long>() as u8);
    out.extend_from_slice(&page_size.to_ne_bytes());
    for (name, text) in [("header_page", header_page), ("header_event", header_event)] {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(&(text.len() as u64).to_ne_bytes());
        out.extend_from_slice(text);
    }
    out.extend_from_slice(&0u32.to_ne_bytes()); // ftrace formats
    let mut systems: Vec<&str> = formats.iter().map(|(system, _)| system.as_str()).collect();
    systems.sort_unstable();
    systems.dedup();
    out.extend_from_slice(&(systems.len() as u32).to_ne_bytes());
    for system in systems {
        out.extend_from_slice(system.as_bytes());
        out.push(0);
        let texts: Vec<&String> = formats
            .iter()
            .filter(|(s, _)| s == system)
            .map(|(_, text)| text)
            .collect();
        out.extend_from_slice(&(texts.len() as u32).to_ne_bytes());
        for text in texts {
            out.extend_from_slice(&(text.len() as u64).to_ne_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_ne_bytes()); // kallsyms
    out.extend_from_slice(&0u32.to_ne_bytes()); // printk formats
    out.extend_from_slice(&0u64.to_ne_bytes()); // saved command lines
    out
}

/// Every tracepoint under `root` as `subsys:name`, from the directory tree
/// (no file is opened per tracepoint).
pub fn all_tracepoints(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let subsystems = std::fs::read_dir(root.join("events")).into_iter().flatten();
    for subsys in subsystems.flatten() {
        if !subsys.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Some(subsys_name) = subsys.file_name().to_str().map(str::to_string) else {
            continue;
        };
        for event in std::fs::read_dir(subsys.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if event.file_type().is_ok_and(|t| t.is_dir()) {
                if let Some(name) = event.file_name().to_str() {
                    names.push(format!("{subsys_name}:{name}"));
                }
            }
        }
    }
    names.sort();
    names
}

/// How a field's bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// An integer of the field's size (1, 2, 4 or 8 bytes).
    Integer { signed: bool },
    /// A NUL-padded char array (`char prev_comm[16]`).
    String,
    /// `__data_loc char[]`: a u32 holding offset (low 16) and length (high 16).
    DataLocString,
    /// Anything else: shown as hex bytes.
    Bytes,
}

/// One field of a tracepoint's raw data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: usize,
    pub size: usize,
    pub kind: FieldKind,
}

/// A parsed `format` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracepointFormat {
    /// `name:` line (`sched_switch`).
    pub name: String,
    pub id: u64,
    /// The event's own fields, without the `common_*` header.
    pub fields: Vec<Field>,
}

impl TracepointFormat {
    /// Parses a tracefs format file; None when it has no name or id.
    pub fn parse(text: &str) -> Option<TracepointFormat> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("name:") {
                name = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("ID:") {
                id = rest.trim().parse().ok();
            } else if line.starts_with("field:") {
                if let Some(field) = parse_field(line) {
                    if !field.name.starts_with("common_") {
                        fields.push(field);
                    }
                }
            }
        }
        Some(TracepointFormat {
            name: name?,
            id: id?,
            fields,
        })
    }

    /// `name=value` for each field of `raw` (a sample's PERF_SAMPLE_RAW
    /// bytes), space-separated; fields outside the data are left out.
    pub fn render(&self, raw: &[u8]) -> String {
        let mut out = String::new();
        for field in &self.fields {
            let Some(value) = field_value(field, raw) else {
                continue;
            };
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&field.name);
            out.push('=');
            out.push_str(&value);
        }
        out
    }
}

/// `field:unsigned char x[16]; offset:8; size:16; signed:0;` (tab-separated)
fn parse_field(line: &str) -> Option<Field> {
    let mut decl = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = false;
    for part in line.split(';').map(str::trim) {
        if let Some(rest) = part.strip_prefix("field:") {
            decl = Some(rest.trim());
        } else if let Some(rest) = part.strip_prefix("offset:") {
            offset = rest.trim().parse().ok();
        } else if let Some(rest) = part.strip_prefix("size:") {
            size = rest.trim().parse().ok();
        } else if let Some(rest) = part.strip_prefix("signed:") {
            signed = rest.trim() == "1";
        }
    }
    let decl = decl?;
    let last = decl.split_whitespace().last()?;
    let name = last.split('[').next()?.to_string();
    let size: usize = size?;
    let kind = if decl.starts_with("__data_loc") && decl.contains("char") {
        FieldKind::DataLocString
    } else if decl.contains("char") && last.contains('[') {
        FieldKind::String
    } else if matches!(size, 1 | 2 | 4 | 8) && !last.contains('[') {
        FieldKind::Integer { signed }
    } else {
        FieldKind::Bytes
    };
    Some(Field {
        name,
        offset: offset?,
        size,
        kind,
    })
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn field_value(field: &Field, raw: &[u8]) -> Option<String> {
    let bytes = raw.get(field.offset..field.offset.checked_add(field.size)?)?;
    Some(match field.kind {
        FieldKind::Integer { signed } => {
            let mut buf = [0u8; 8];
            buf[..bytes.len()].copy_from_slice(bytes);
            let unsigned = u64::from_le_bytes(buf);
            if signed {
                let shift = 64 - 8 * bytes.len() as u32;
                (((unsigned << shift) as i64) >> shift).to_string()
            } else {
                unsigned.to_string()
            }
        }
        FieldKind::String => c_string(bytes),
        FieldKind::DataLocString => {
            let loc = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
            let (start, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
            c_string(raw.get(start..start.checked_add(len)?)?)
        }
        FieldKind::Bytes => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SCHED_PROCESS_EXEC: &str = "name: sched_process_exec
ID: 365
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;

print fmt: \"filename=%s pid=%d old_pid=%d\", __get_str(filename), REC->pid, REC->old_pid
";

    #[test]
    fn format_files_give_fields_and_raw_data_renders() {
        let format = TracepointFormat::parse(SCHED_PROCESS_EXEC).unwrap();
        assert_eq!(
            (format.name.as_str(), format.id),
            ("sched_process_exec", 365)
        );
        let names: Vec<&str> = format.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["filename", "pid", "old_pid"]);
        let mut raw = vec![0u8; 20];
        raw[8..12].copy_from_slice(&(20u32 | (9 << 16)).to_le_bytes());
        raw[12..16].copy_from_slice(&42i32.to_le_bytes());
        raw[16..20].copy_from_slice(&(-1i32).to_le_bytes());
        raw.extend_from_slice(b"/bin/true\0");
        assert_eq!(format.render(&raw), "filename=/bin/true pid=42 old_pid=-1");
        // Truncated data: fields past the end are left out, no panic.
        assert_eq!(format.render(&raw[..14]), "");
        assert_eq!(format.render(&raw[..16]), "pid=42");
    }

    #[test]
    fn char_arrays_are_strings() {
        let field =
            parse_field("field:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;").unwrap();
        assert_eq!(field.kind, FieldKind::String);
        assert_eq!(
            (field.name.as_str(), field.offset, field.size),
            ("prev_comm", 8, 16)
        );
        let field = parse_field("field:long prev_state;\toffset:32;\tsize:8;\tsigned:1;").unwrap();
        assert_eq!(field.kind, FieldKind::Integer { signed: true });
        assert!(TracepointFormat::parse("format:\n").is_none());
    }

    #[test]
    fn ids_come_from_tracefs_and_a_missing_mount_names_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("events/sched/sched_switch");
        std::fs::create_dir_all(&event).unwrap();
        std::fs::write(event.join("id"), "372\n").unwrap();
        let root = find_tracefs(&[dir.path().join("absent"), dir.path().to_path_buf()]);
        assert_eq!(root.as_deref(), Some(dir.path()));
        assert_eq!(
            tracepoint_id(root.as_deref(), "sched", "sched_switch").unwrap(),
            372
        );
        let err = tracepoint_id(root.as_deref(), "sched", "nope")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sched:nope") && err.contains("rprof list"),
            "{err}"
        );
        assert!(tracepoint_id(root.as_deref(), "..", "x").is_err());
        let err = tracepoint_id(None, "sched", "sched_switch")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mount -t tracefs nodev /sys/kernel/tracing"),
            "{err}"
        );
        assert_eq!(all_tracepoints(dir.path()), vec!["sched:sched_switch"]);
    }

    #[test]
    fn perf_tracing_data_follows_trace_cmds_layout() {
        let formats = [
            ("sched".to_string(), "name: a\nID: 1\n".to_string()),
            ("irq".to_string(), "name: b\nID: 2\n".to_string()),
            ("sched".to_string(), "name: c\nID: 3\n".to_string()),
        ];
        let blob = encode_tracing_data(b"page", b"event", &formats, 4096);
        let mut expected = vec![23, 8, 68];
        expected.extend_from_slice(b"tracing0.6\0");
        expected.push(0); // little-endian (x86-64 and aarch64 here)
        expected.push(8);
        expected.extend_from_slice(&4096u32.to_le_bytes());
        expected.extend_from_slice(b"header_page\0");
        expected.extend_from_slice(&4u64.to_le_bytes());
        expected.extend_from_slice(b"page");
        expected.extend_from_slice(b"header_event\0");
        expected.extend_from_slice(&5u64.to_le_bytes());
        expected.extend_from_slice(b"event");
        expected.extend_from_slice(&0u32.to_le_bytes());
        expected.extend_from_slice(&2u32.to_le_bytes()); // irq, sched
        expected.extend_from_slice(b"irq\0");
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.extend_from_slice(&(formats[1].1.len() as u64).to_le_bytes());
        expected.extend_from_slice(formats[1].1.as_bytes());
        expected.extend_from_slice(b"sched\0");
        expected.extend_from_slice(&2u32.to_le_bytes());
        for text in [&formats[0].1, &formats[2].1] {
            expected.extend_from_slice(&(text.len() as u64).to_le_bytes());
            expected.extend_from_slice(text.as_bytes());
        }
        expected.extend_from_slice(&[0; 16]);
        if cfg!(target_endian = "little") {
            assert_eq!(blob, expected);
        }
    }
}
