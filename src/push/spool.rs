//! The on-disk spool: one file per interval profile, oldest first, capped
//! in bytes. Files appear atomically (temp file, then rename) with mode
//! 0600; nothing here follows a symlink, so a hostile link in the spool
//! directory cannot redirect a write or a read.
//!
//! ```text
//! <dir>/.lock                  flock: one pusher per spool
//! <dir>/00000000000000000042.prof   "rprof-spool 1 FROM_NS UNTIL_NS RATE_HZ\n" + pprof.gz
//! <dir>/.tmp-00000000000000000043   being written
//! ```

use std::collections::VecDeque;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use super::{IntervalProfile, PushError};

const MAGIC: &str = "rprof-spool 1";
const SUFFIX: &str = ".prof";
const TEMP_PREFIX: &str = ".tmp-";

/// One spooled profile, by its sequence number (its order of arrival).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    seq: u64,
    bytes: u64,
}

/// What [`Spool::add`] dropped to make room.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub profiles: u64,
    pub bytes: u64,
}

/// The spool directory and an index of its files.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    entries: VecDeque<Entry>,
    bytes: u64,
    next_seq: u64,
    _lock: Flock<File>,
}

fn spool_err(dir: &Path, what: &str, source: io::Error) -> PushError {
    PushError::Spool {
        dir: dir.to_path_buf(),
        what: what.to_string(),
        source,
    }
}

impl Spool {
    /// Opens (creating it 0700 if needed) the spool at `dir` and indexes the
    /// profiles an earlier run left there.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, PushError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| spool_err(dir, "cannot create the spool directory", e))?;
        let meta = fs::symlink_metadata(dir)
            .map_err(|e| spool_err(dir, "cannot stat the spool directory", e))?;
        if !meta.is_dir() {
            return Err(PushError::SpoolUnsafe {
                dir: dir.to_path_buf(),
                why: "it is not a directory (a symlink?)".into(),
            });
        }
        if meta.uid() != nix::unistd::geteuid().as_raw() {
            return Err(PushError::SpoolUnsafe {
                dir: dir.to_path_buf(),
                why: format!("it belongs to uid {}, not to this user", meta.uid()),
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(PushError::SpoolUnsafe {
                dir: dir.to_path_buf(),
                why: format!(
                    "others may write to it (mode {:o}): chmod 700 it",
                    meta.mode() & 0o777
                ),
            });
        }
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(".lock"))
            .map_err(|e| spool_err(dir, "cannot open the lock file", e))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|_| {
            PushError::SpoolBusy {
                dir: dir.to_path_buf(),
            }
        })?;
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            entries: VecDeque::new(),
            bytes: 0,
            next_seq: 0,
            _lock: lock,
        };
        spool.index()?;
        Ok(spool)
    }

    /// Reads the directory: spooled profiles in order; leftover temp files
    /// (a crash mid-write) are removed; anything else, symlinks included,
    /// is left alone.
    fn index(&mut self) -> Result<(), PushError> {
        let read = fs::read_dir(&self.dir).map_err(|e| spool_err(&self.dir, "cannot list", e))?;
        let mut entries = Vec::new();
        for item in read {
            let item = item.map_err(|e| spool_err(&self.dir, "cannot list", e))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            // DirEntry::metadata does not follow symlinks.
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            if name.starts_with(TEMP_PREFIX) {
                let _ = fs::remove_file(item.path());
            } else if let Some(seq) = parse_name(name) {
                entries.push(Entry {
                    seq,
                    bytes: meta.len(),
                });
            }
        }
        entries.sort_by_key(|e| e.seq);
        self.next_seq = entries.last().map_or(0, |e| e.seq + 1);
        self.bytes = entries.iter().map(|e| e.bytes).sum();
        self.entries = entries.into();
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The oldest profile's sequence number.
    pub fn oldest(&self) -> Option<u64> {
        self.entries.front().map(|e| e.seq)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}{SUFFIX}"))
    }

    /// Spools `profile`, first dropping the oldest profiles (except
    /// `keep`, the one being sent) while it would not fit under the cap.
    /// A profile larger than the whole cap is not spooled:
    /// [`PushError::TooLarge`].
    pub fn add(
        &mut self,
        profile: &IntervalProfile,
        keep: Option<u64>,
    ) -> Result<Dropped, PushError> {
        let header = header(profile);
        let size = (header.len() + profile.pprof_gz.len()) as u64;
        if size > self.max_bytes {
            return Err(PushError::TooLarge {
                bytes: size,
                max: self.max_bytes,
            });
        }
        let mut dropped = Dropped::default();
        while self.bytes + size > self.max_bytes {
            let Some(victim) = self.entries.iter().find(|e| Some(e.seq) != keep).copied() else {
                break;
            };
            self.remove(victim.seq);
            dropped.profiles += 1;
            dropped.bytes += victim.bytes;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let temp = self.dir.join(format!("{TEMP_PREFIX}{seq:020}"));
        let written = write_new(&temp, header.as_bytes(), &profile.pprof_gz)
            .and_then(|()| fs::rename(&temp, self.path(seq)));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(spool_err(&self.dir, "cannot write a profile", e));
        }
        self.entries.push_back(Entry { seq, bytes: size });
        self.bytes += size;
        Ok(dropped)
    }

    /// Reads a spooled profile back.
    #[cfg(test)]
    pub fn read(&self, seq: u64) -> Result<IntervalProfile, PushError> {
        read_file(&self.path(seq))
    }

    /// Where profile `seq` is, for [`read_file`] without holding the spool.
    pub fn file_of(&self, seq: u64) -> PathBuf {
        self.path(seq)
    }

    /// Forgets and deletes a profile (sent, rejected, dropped or corrupt).
    pub fn remove(&mut self, seq: u64) {
        if let Some(at) = self.entries.iter().position(|e| e.seq == seq) {
            let entry = self.entries.remove(at).expect("position is in range");
            self.bytes -= entry.bytes;
        }
        // Already gone is fine: the goal is that it is gone.
        let _ = fs::remove_file(self.path(seq));
    }
}

/// Reads a spooled profile file, not following a symlink.
pub(crate) fn read_file(path: &Path) -> Result<IntervalProfile, PushError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| spool_err(dir, "cannot open a spooled profile", e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| spool_err(dir, "cannot read a spooled profile", e))?;
    parse(&bytes).ok_or_else(|| PushError::Corrupt {
        path: path.to_path_buf(),
    })
}

/// Writes a new file 0600, failing on anything already there (a symlink
/// included: O_EXCL never follows one), and syncs it so the rename that
/// publishes it never publishes a torn file.
fn write_new(path: &Path, header: &[u8], body: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(header)?;
    file.write_all(body)?;
    file.sync_data()
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn unix_nanos(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

fn header(profile: &IntervalProfile) -> String {
    format!(
        "{MAGIC} {} {} {}\n",
        unix_nanos(profile.from),
        unix_nanos(profile.until),
        profile.sample_rate_hz
    )
}

fn parse(bytes: &[u8]) -> Option<IntervalProfile> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut fields = line.strip_prefix(MAGIC)?.split_whitespace();
    let mut time = || -> Option<SystemTime> {
        let nanos: u64 = fields.next()?.parse().ok()?;
        Some(UNIX_EPOCH + Duration::from_nanos(nanos))
    };
    let (from, until) = (time()?, time()?);
    let sample_rate_hz = fields.next()?.parse().ok()?;
    Some(IntervalProfile {
        pprof_gz: bytes[end + 1..].to_vec(),
        from,
        until,
        sample_rate_hz,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn profile(n: u8, len: usize) -> IntervalProfile {
        let from = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + u64::from(n) * 10);
        IntervalProfile {
            pprof_gz: vec![n; len],
            from,
            until: from + Duration::from_secs(10),
            sample_rate_hz: 99,
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != ".lock")
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_profile_round_trips_through_a_0600_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let original = profile(7, 100);
        spool.add(&original, None).unwrap();
        let seq = spool.oldest().unwrap();
        let back = spool.read(seq).unwrap();
        assert_eq!(back.pprof_gz, original.pprof_gz);
        assert_eq!(
            (back.from, back.until, back.sample_rate_hz),
            (original.from, original.until, 99)
        );
        let names = files(dir.path());
        assert_eq!(names, ["00000000000000000000.prof"]);
        let mode = fs::metadata(dir.path().join(&names[0]))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            spool.bytes(),
            fs::metadata(dir.path().join(&names[0])).unwrap().len()
        );
    }

    #[test]
    fn a_new_spool_directory_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("a/b");
        Spool::open(&spool_dir, 1).unwrap();
        let mode = fs::metadata(&spool_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn the_oldest_profiles_are_dropped_and_counted_when_over_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let one = (header(&profile(0, 1000)).len() + 1000) as u64;
        let mut spool = Spool::open(dir.path(), one * 3).unwrap();
        for n in 0..3 {
            assert_eq!(
                spool.add(&profile(n, 1000), None).unwrap(),
                Dropped::default()
            );
        }
        let dropped = spool.add(&profile(3, 1000), None).unwrap();
        assert_eq!(
            dropped,
            Dropped {
                profiles: 1,
                bytes: one
            }
        );
        assert_eq!(spool.len(), 3);
        assert_eq!(spool.read(spool.oldest().unwrap()).unwrap().pprof_gz[0], 1);
        // The one being sent is kept; the next oldest goes.
        let dropped = spool.add(&profile(4, 1000), Some(1)).unwrap();
        assert_eq!(dropped.profiles, 1);
        let left: Vec<u8> = [1, 3, 4]
            .iter()
            .map(|&s| spool.read(s).unwrap().pprof_gz[0])
            .collect();
        assert_eq!(left, [1, 3, 4]);
        assert!(matches!(
            spool.add(&profile(5, 10_000), None),
            Err(PushError::TooLarge { .. })
        ));
        assert_eq!(files(dir.path()).len(), 3);
    }

    #[test]
    fn a_reopened_spool_has_the_profiles_in_order_and_continues_numbering() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
            for n in 0..3 {
                spool.add(&profile(n, 10), None).unwrap();
            }
            spool.remove(0);
        }
        // A crash mid-write leaves a temp file: it is cleaned up.
        fs::write(dir.path().join(".tmp-00000000000000000009"), b"torn").unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.len(), 2);
        let firsts: Vec<u8> = [1, 2]
            .iter()
            .map(|&s| spool.read(s).unwrap().pprof_gz[0])
            .collect();
        assert_eq!(firsts, [1, 2]);
        spool.add(&profile(9, 10), None).unwrap();
        assert_eq!(
            files(dir.path()),
            [
                "00000000000000000001.prof",
                "00000000000000000002.prof",
                "00000000000000000003.prof"
            ]
        );
    }

    #[test]
    fn symlinks_in_the_spool_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"precious").unwrap();
        let spool_dir = dir.path().join("spool");
        fs::create_dir(&spool_dir).unwrap();
        fs::set_permissions(&spool_dir, fs::Permissions::from_mode(0o700)).unwrap();
        // A link where the next profile and its temp file would go.
        std::os::unix::fs::symlink(&outside, spool_dir.join("00000000000000000005.prof")).unwrap();
        std::os::unix::fs::symlink(&outside, spool_dir.join(".tmp-00000000000000000000")).unwrap();
        let mut spool = Spool::open(&spool_dir, 1 << 20).unwrap();
        assert_eq!(spool.len(), 0, "a symlink is not a spooled profile");
        assert!(
            spool.add(&profile(1, 10), None).is_err(),
            "the temp path is a symlink"
        );
        assert!(spool.read(5).is_err(), "reading does not follow the link");
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        // A symlink as the spool directory itself is refused.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&spool_dir, &link).unwrap();
        drop(spool);
        assert!(matches!(
            Spool::open(&link, 1),
            Err(PushError::SpoolUnsafe { .. })
        ));
    }

    #[test]
    fn a_world_writable_spool_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = Spool::open(dir.path(), 1).unwrap_err().to_string();
        assert!(err.contains("chmod 700"), "{err}");
    }

    #[test]
    fn two_pushers_cannot_share_a_spool() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Spool::open(dir.path(), 1).unwrap();
        assert!(matches!(
            Spool::open(dir.path(), 1),
            Err(PushError::SpoolBusy { .. })
        ));
    }

    #[test]
    fn a_corrupt_file_is_reported_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("00000000000000000000.prof"), b"garbage").unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(spool.read(0), Err(PushError::Corrupt { .. })));
    }
}
