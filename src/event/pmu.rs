//! Dynamic PMUs from sysfs: `/sys/bus/event_source/devices/PMU/type`, the
//! `format/` files that place each term's bits in config/config1/config2,
//! and the named events in `events/` (`event=0x3c,umask=0x00`).
//! The root is a parameter, so the encoding is tested on a fake tree.

use std::path::{Path, PathBuf};

use super::EventError;

/// sysfs files rprof reads are one line; a larger one is not a PMU file.
const MAX_SYSFS_FILE: u64 = 4096;

/// How deep named events may refer to other named events.
const MAX_ALIAS_DEPTH: usize = 4;

/// Reads a small sysfs text file, refusing anything over [`MAX_SYSFS_FILE`].
pub(crate) fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(MAX_SYSFS_FILE + 1)
        .read_to_string(&mut text)
        .ok()?;
    (text.len() as u64 <= MAX_SYSFS_FILE).then(|| text.trim().to_string())
}

/// Which config word a format term's bits go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigWord {
    Config,
    Config1,
    Config2,
}

/// A format file's content: `config:0-7,32-35` (bit ranges, low bits of
/// the value first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermFormat {
    pub word: ConfigWord,
    /// Inclusive (low, high) bit ranges.
    pub ranges: Vec<(u32, u32)>,
}

impl TermFormat {
    pub fn parse(text: &str) -> Option<TermFormat> {
        let (word, bits) = text.trim().split_once(':')?;
        let word = match word {
            "config" => ConfigWord::Config,
            "config1" => ConfigWord::Config1,
            "config2" => ConfigWord::Config2,
            _ => return None,
        };
        let mut ranges = Vec::new();
        for part in bits.split(',') {
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (lo.trim().parse().ok()?, hi.trim().parse().ok()?),
                None => {
                    let bit = part.trim().parse().ok()?;
                    (bit, bit)
                }
            };
            if lo > hi || hi > 63 {
                return None;
            }
            ranges.push((lo, hi));
        }
        Some(TermFormat { word, ranges })
    }

    /// Bits the format has room for.
    pub fn width(&self) -> u32 {
        self.ranges.iter().map(|(lo, hi)| hi - lo + 1).sum()
    }

    /// Scatters `value` over the ranges, low bits first; None when it does
    /// not fit (as perf refuses such values).
    pub fn place(&self, value: u64) -> Option<u64> {
        if self.width() < 64 && value >> self.width() != 0 {
            return None;
        }
        let mut out = 0u64;
        let mut shift = 0u32;
        for &(lo, hi) in &self.ranges {
            let width = hi - lo + 1;
            let mask = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            out |= ((value.checked_shr(shift).unwrap_or(0)) & mask) << lo;
            shift += width;
        }
        Some(out)
    }
}

/// One PMU under the sysfs root.
#[derive(Debug, Clone)]
pub struct Pmu {
    pub name: String,
    pub kind: u32,
    dir: PathBuf,
}

/// A named event file's content, with its scale and unit when given.
#[derive(Debug, Clone, PartialEq)]
pub struct PmuEventAlias {
    pub terms: String,
    pub unit: Option<String>,
    pub scale: Option<String>,
}

/// The encoded configuration of a PMU event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PmuConfig {
    pub config: u64,
    pub config1: u64,
    pub config2: u64,
}

impl Pmu {
    /// The PMU `name` under `root`, or None when it has no readable type.
    pub fn open(root: &Path, name: &str) -> Option<Pmu> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return None;
        }
        let dir = root.join(name);
        let kind = read_small(&dir.join("type"))?.parse().ok()?;
        Some(Pmu {
            name: name.to_string(),
            kind,
            dir,
        })
    }

    /// Every PMU under `root`, by name.
    pub fn all(root: &Path) -> Vec<Pmu> {
        let mut pmus: Vec<Pmu> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| Pmu::open(root, entry.file_name().to_str()?))
            .collect();
        pmus.sort_by(|a, b| a.name.cmp(&b.name));
        pmus
    }

    fn format(&self, term: &str) -> Option<TermFormat> {
        if term.contains('/') || term.starts_with('.') {
            return None;
        }
        TermFormat::parse(&read_small(&self.dir.join("format").join(term))?)
    }

    /// The named event `name` of this PMU (`events/NAME`).
    pub fn alias(&self, name: &str) -> Option<PmuEventAlias> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return None;
        }
        let events = self.dir.join("events");
        let terms = read_small(&events.join(name))?;
        Some(PmuEventAlias {
            terms,
            unit: read_small(&events.join(format!("{name}.unit"))),
            scale: read_small(&events.join(format!("{name}.scale"))),
        })
    }

    /// Names of this PMU's events (not the .unit/.scale companions).
    pub fn event_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("events"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.contains('.'))
            .collect();
        names.sort();
        names
    }

    /// Encodes `terms` (`event=0x3c,umask=1,edge`, or a named event's
    /// name) through the format files.
    pub fn encode(&self, terms: &str) -> Result<PmuConfig, EventError> {
        self.encode_nested(terms, 0)
    }

    /// [`Pmu::encode`], `depth` named events deep (a loop of names in a
    /// broken tree stops at [`MAX_ALIAS_DEPTH`]).
    fn encode_nested(&self, terms: &str, depth: usize) -> Result<PmuConfig, EventError> {
        let mut out = PmuConfig::default();
        for term in terms.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (key, value) = match term.split_once('=') {
                Some((key, value)) => (key.trim(), Some(value.trim())),
                None => (term, None),
            };
            // A named event inside the slashes: its own terms, encoded here.
            if value.is_none() {
                if let Some(alias) = self.alias(key) {
                    if depth >= MAX_ALIAS_DEPTH {
                        return Err(self.bad_term(term, "names refer to each other in a loop"));
                    }
                    let inner = self.encode_nested(&alias.terms, depth + 1)?;
                    out.config |= inner.config;
                    out.config1 |= inner.config1;
                    out.config2 |= inner.config2;
                    continue;
                }
            }
            let value = match value {
                Some(text) => parse_number(text)
                    .ok_or_else(|| self.bad_term(term, "the value is not a number"))?,
                // A bare flag term (`edge`) means 1, as in perf.
                None => 1,
            };
            let (word, bits) = match key {
                "config" => (ConfigWord::Config, value),
                "config1" => (ConfigWord::Config1, value),
                "config2" => (ConfigWord::Config2, value),
                _ => {
                    let format = self.format(key).ok_or_else(|| EventError::UnknownPmuTerm {
                        pmu: self.name.clone(),
                        term: key.to_string(),
                        known: self.format_names().join(", "),
                    })?;
                    let bits = format.place(value).ok_or_else(|| {
                        self.bad_term(term, &format!("needs at most {} bits", format.width()))
                    })?;
                    (format.word, bits)
                }
            };
            match word {
                ConfigWord::Config => out.config |= bits,
                ConfigWord::Config1 => out.config1 |= bits,
                ConfigWord::Config2 => out.config2 |= bits,
            }
        }
        Ok(out)
    }

    fn format_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("format"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    fn bad_term(&self, term: &str, why: &str) -> EventError {
        EventError::BadPmuTerm {
            pmu: self.name.clone(),
            term: term.to_string(),
            why: why.to_string(),
        }
    }
}

/// `0x3c`, `60` or `0`.
pub fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake sysfs event_source tree: an Intel-like `cpu` PMU (type 4) and
    /// an uncore one with a split range and config1 terms.
    pub(crate) fn fake_sysfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let put = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("{text}\n")).unwrap();
        };
        put("cpu/type", "4");
        put("cpu/format/event", "config:0-7");
        put("cpu/format/umask", "config:8-15");
        put("cpu/format/edge", "config:18");
        put("cpu/format/inv", "config:23");
        put("cpu/format/cmask", "config:24-31");
        put("cpu/format/ldlat", "config1:0-15");
        put("cpu/format/frontend", "config2:0-23");
        put("cpu/events/cpu-cycles", "event=0x3c");
        put("cpu/events/mem-loads", "event=0xcd,umask=0x1,ldlat=3");
        put("cpu/events/topdown-retiring", "event=0x00,umask=0x80");
        put("cpu/events/topdown-retiring.scale", "5");
        put("cpu/events/topdown-retiring.unit", "slots");
        put("uncore_imc/type", "17");
        put("uncore_imc/format/event", "config:0-7,32-35");
        put("uncore_imc/format/umask", "config:8-15");
        put("uncore_imc/events/cas_count_read", "event=0x104,umask=0x3");
        put("uncore_imc/events/cas_count_read.unit", "MiB");
        put("uncore_imc/events/cas_count_read.scale", "6.103515625e-5");
        put("broken/type", "not-a-number");
        dir
    }

    #[test]
    fn format_files_parse_single_bits_ranges_and_split_ranges() {
        assert_eq!(
            TermFormat::parse("config:0-7").unwrap().ranges,
            vec![(0, 7)]
        );
        let split = TermFormat::parse("config:0-7,32-35\n").unwrap();
        assert_eq!(split.ranges, vec![(0, 7), (32, 35)]);
        assert_eq!(split.width(), 12);
        assert_eq!(
            TermFormat::parse("config1:0-15").unwrap().word,
            ConfigWord::Config1
        );
        assert_eq!(TermFormat::parse("config2:5").unwrap().ranges, vec![(5, 5)]);
        assert_eq!(TermFormat::parse("config:0-63").unwrap().width(), 64);
        for bad in [
            "config:7-0",
            "config:0-64",
            "config3:0",
            "event",
            "config:x",
        ] {
            assert!(TermFormat::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn values_scatter_over_split_ranges_and_must_fit() {
        let split = TermFormat::parse("config:0-7,32-35").unwrap();
        assert_eq!(split.place(0x104), Some(0x1_0000_0004));
        assert_eq!(split.place(0xfff), Some(0xf_0000_00ff));
        assert_eq!(split.place(0x1000), None);
        let full = TermFormat::parse("config:0-63").unwrap();
        assert_eq!(full.place(u64::MAX), Some(u64::MAX));
    }

    #[test]
    fn pmu_terms_encode_through_the_fake_tree() {
        let root = fake_sysfs();
        let cpu = Pmu::open(root.path(), "cpu").unwrap();
        assert_eq!(cpu.kind, 4);
        assert_eq!(
            cpu.encode("event=0x3c,umask=0x00").unwrap(),
            PmuConfig {
                config: 0x3c,
                ..PmuConfig::default()
            }
        );
        assert_eq!(
            cpu.encode("event=0xc0,umask=1,edge,cmask=2,inv")
                .unwrap()
                .config,
            0xc0 | (1 << 8) | (1 << 18) | (1 << 23) | (2 << 24)
        );
        let mem = cpu.encode("mem-loads").unwrap();
        assert_eq!((mem.config, mem.config1), (0x1cd, 3));
        assert_eq!(cpu.encode("frontend=0x11").unwrap().config2, 0x11);
        assert_eq!(
            cpu.encode("config=0x1234,config1=5,config2=6").unwrap(),
            PmuConfig {
                config: 0x1234,
                config1: 5,
                config2: 6
            }
        );
        let imc = Pmu::open(root.path(), "uncore_imc").unwrap();
        assert_eq!(imc.encode("cas_count_read").unwrap().config, 0x1_0000_0304);
        let alias = imc.alias("cas_count_read").unwrap();
        assert_eq!(alias.unit.as_deref(), Some("MiB"));
        assert_eq!(alias.scale.as_deref(), Some("6.103515625e-5"));
        assert_eq!(
            cpu.event_names(),
            vec!["cpu-cycles", "mem-loads", "topdown-retiring"]
        );
    }

    #[test]
    fn bad_terms_say_what_the_pmu_takes() {
        let root = fake_sysfs();
        let cpu = Pmu::open(root.path(), "cpu").unwrap();
        let err = cpu.encode("evnt=1").unwrap_err().to_string();
        assert!(err.contains("evnt") && err.contains("umask"), "{err}");
        let err = cpu.encode("event=0x1ff").unwrap_err().to_string();
        assert!(err.contains("8 bits"), "{err}");
        let err = cpu.encode("event=zz").unwrap_err().to_string();
        assert!(err.contains("not a number"), "{err}");
        assert!(Pmu::open(root.path(), "broken").is_none());
        assert!(Pmu::open(root.path(), "../cpu").is_none());
        assert!(cpu.alias("../type").is_none());
        let names: Vec<String> = Pmu::all(root.path()).into_iter().map(|p| p.name).collect();
        assert_eq!(names, vec!["cpu", "uncore_imc"]);
    }
}
