//! Tests that interfere through the kernel, and the one way tests run Linux
//! perf. Included with `#[path]` by the unit tests (`src/perfdata/tests.rs`)
//! and the integration tests (`tests/integration/util.rs`), so every test
//! binary takes the same lock.
//!
//! Two kinds of tests affect each other through the kernel, not through
//! files: a system-wide recording (`rprof record -a`, `-C`) opens events
//! that see every process on the host, and when such events ask for MMAP2
//! build ids (Linux perf's `-a --buildid-mmap`, rprof builds that still
//! asked for them), the kernel (seen on 6.18) flags the MMAP2 records of
//! every other event with build ids while their bodies hold device/inode
//! bytes; Linux perf (6.1, 6.12) then aborts on its own files. So
//! system-wide tests take the lock exclusively, and tests that run Linux
//! perf take it shared: perf's per-process recordings do not affect each
//! other, so they may run side by side.
//!
//! The lock is a `flock` on a file in the temp directory: it covers the test
//! threads of one binary (each guard opens the file anew, and flock locks
//! belong to the open file) and every test suite on the host, since the
//! kernel state it guards is host-wide too.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Where the lock lives: one name for every checkout on the host.
const LOCK_NAME: &str = "rprof-tests-kernel-wide.lock";

/// Held while a test records system-wide (exclusive) or runs Linux perf
/// (shared); released on drop.
pub struct KernelWide {
    _lock: Flock<File>,
}

impl KernelWide {
    /// For a test that records system-wide: no Linux perf runs meanwhile.
    pub fn system_wide() -> KernelWide {
        KernelWide::take(FlockArg::LockExclusive)
    }

    /// For a test that runs Linux perf: no system-wide recording meanwhile.
    pub fn linux_perf() -> KernelWide {
        KernelWide::take(FlockArg::LockShared)
    }

    fn take(kind: FlockArg) -> KernelWide {
        let path = std::env::temp_dir().join(LOCK_NAME);
        let mut file = open_lock_file(&path)
            .unwrap_or_else(|e| panic!("cannot open the test lock {}: {e}", path.display()));
        loop {
            match Flock::lock(file, kind) {
                Ok(lock) => return KernelWide { _lock: lock },
                Err((back, Errno::EINTR)) => file = back,
                Err((_, e)) => panic!("cannot lock {}: {e}", path.display()),
            }
        }
    }
}

/// Opens (creating it if needed) the lock file, never through a symlink.
/// A file another user created is locked through a read-only descriptor,
/// which flock allows.
fn open_lock_file(path: &std::path::Path) -> io::Result<File> {
    let created = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    match created {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path),
        other => other,
    }
}

/// Runs `perf ARGS` with the shared lock held. `Err` only when perf cannot
/// be started; a perf that crashes fails the test (see [`check_not_crashed`]).
pub fn run_linux_perf<I, S>(args: I) -> io::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let lock = KernelWide::linux_perf();
    run_linux_perf_holding(&lock, args)
}

/// Runs `perf ARGS` under a lock the caller already holds (a system-wide
/// test that runs perf beside its recording holds it exclusively).
pub fn run_linux_perf_holding<I, S>(lock: &KernelWide, args: I) -> io::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_perf(lock, args, Stdio::null())
}

/// As [`run_linux_perf`], reading `stdin` (for `perf report -i -`).
pub fn run_linux_perf_with_stdin<I, S>(args: I, stdin: File) -> io::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let lock = KernelWide::linux_perf();
    run_perf(&lock, args, Stdio::from(stdin))
}

fn run_perf<I, S>(_lock: &KernelWide, args: I, stdin: Stdio) -> io::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new("perf").args(&args).stdin(stdin).output()?;
    check_not_crashed(&args, &output);
    Ok(output)
}

/// What perf prints when it aborts or cannot read its own file.
const CRASH_SIGNS: &[&str] = &[
    "stack smashing detected",
    "*** ",
    "assertion failed",
    "failed to process sample",
];

/// Fails the test, naming the likely cause, when perf died from a signal or
/// printed one of [`CRASH_SIGNS`].
pub fn check_not_crashed(args: &[std::ffi::OsString], output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let how = match output.status.signal() {
        Some(signal) => format!("killed by signal {signal}"),
        None => match CRASH_SIGNS.iter().find(|sign| stderr.contains(*sign)) {
            Some(sign) => format!("printed {:?}", sign.trim()),
            None => return,
        },
    };
    panic!(
        "Linux perf crashed or could not read its own file (perf {args:?}: {how}). Is a \
         system-wide profiler with build ids running on this host (`perf record -a \
         --buildid-mmap`, an `rprof record -a` built before it stopped asking for them)? Kernel 6.x then flags the \
         MMAP2 records of every other event with build ids over device/inode bytes, and perf \
         6.1 and 6.12 abort on such files; see docs/file-format.md, \"Build ids\". perf's \
         stderr:\n{stderr}"
    );
}
