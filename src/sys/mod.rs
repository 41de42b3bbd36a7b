//! The only module with unsafe code: perf_event_open, its ioctls, the mmap'd
//! ring buffers, and the few raw syscalls nix does not wrap.
//!
//! Layout:
//! - [`event`]: [`PerfEvent`] (perf_event_open + ioctls) and the pure
//!   `EventAttr -> perf_event_attr` conversion.
//! - [`ring`]: [`RingBuffer`] (the mmap'd per-CPU ring) and the pure
//!   record-walking logic it uses.
//! - [`child`]: [`HeldChild`], a forked command held before `exec` until
//!   the events on it are open.
//! - [`counter`]: reading counting events' groups (`rprof stat`).
//! - here: [`SysError`], the errno helper and small system queries.
#![allow(unsafe_code)]

mod child;
mod counter;
mod event;
mod ring;

pub use child::{ChildStdout, ChildUsage, ExecFailure, HeldChild};
pub use counter::{decode_group_read, GroupReading, COUNTING_READ_FORMAT, MAX_GROUP_MEMBERS};
pub use event::{to_kernel_attr, PerfEvent};
pub use ring::{copy_ring, count_records, ring_segments, DrainStats, RingBuffer};

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error(
        "perf_event_open: permission denied ({errno}){}.\n  \
         Fix: run rprof as root, or give it CAP_PERFMON \
         (`sudo setcap cap_perfmon+ep $(command -v rprof)`), or lower the restriction: \
         `sudo sysctl kernel.perf_event_paranoid=1` \
         (-1 to allow system-wide and kernel profiling for everyone){}",
        paranoid_text(*paranoid),
        if *system_wide { ".\n  System-wide (-a/-C) recording needs perf_event_paranoid <= 0 \
              (`sudo sysctl kernel.perf_event_paranoid=0`) or CAP_PERFMON" } else { "" }
    )]
    PermissionDenied {
        errno: &'static str,
        /// `kernel.perf_event_paranoid`, when readable.
        paranoid: Option<i32>,
        system_wide: bool,
    },
    /// Refused on a process of another user: perf_event_open checks ptrace
    /// read access (same uid, or CAP_SYS_PTRACE), whatever the paranoid level.
    #[error(
        "cannot attach to PID {pid}: it belongs to another user (uid {owner}, rprof runs as \
         uid {uid}); attaching needs ptrace access to it ({errno}). Run rprof as that user or \
         as root, or give it CAP_SYS_PTRACE"
    )]
    OtherUsersProcess {
        pid: i32,
        owner: u32,
        uid: u32,
        errno: &'static str,
    },
    #[error("{}", unsupported_text(event, *needs_pmu, errno))]
    EventUnsupported {
        event: String,
        /// A hardware event (generic, cache, raw or a PMU's): the refusal
        /// means the machine has no such PMU.
        needs_pmu: bool,
        errno: &'static str,
    },
    #[error("no such process: {pid} (it exited, or the PID is wrong; check with `ps -p {pid}`)")]
    NoSuchProcess { pid: i32 },
    #[error("{}", too_many_files_text(*soft, *hard, *needed))]
    TooManyFiles {
        soft: u64,
        hard: u64,
        /// File descriptors the recording needs in all (0: unknown here).
        needed: u64,
    },
    #[error(
        "perf_event_open: the kernel rejected the event ({errno}): {hint}.\n  Event: {details}"
    )]
    InvalidAttr {
        errno: &'static str,
        /// The flag that most likely caused it, and what to do.
        hint: String,
        details: String,
    },
    /// mmap of a ring refused by the locked-memory limit.
    #[error(
        "mmap of a {kib} KiB perf ring buffer: {source}: over the locked-memory limit for \
         perf rings (kernel.perf_event_mlock_kb per CPU, plus `ulimit -l`). Use fewer \
         --mmap-pages, raise `ulimit -l` or `sudo sysctl kernel.perf_event_mlock_kb`, or run \
         as root"
    )]
    RingOverLockLimit {
        kib: usize,
        #[source]
        source: io::Error,
    },
    #[error("{call}: {source}")]
    Syscall {
        call: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Other(String),
}

fn too_many_files_text(soft: u64, hard: u64, needed: u64) -> String {
    let need = if needed > 0 {
        format!("this recording needs about {needed} file descriptors (one per CPU and thread)")
    } else {
        "rprof needs one file descriptor per CPU and thread".to_string()
    };
    let suggest = suggested_fd_limit(soft, needed);
    let above_hard = if suggest > hard {
        format!(" (above the hard limit {hard}: as root, or raise it in /etc/security/limits.conf)")
    } else {
        String::new()
    };
    format!(
        "too many open files (EMFILE): {need}, and the limit is {soft}; raise it, e.g. \
         `ulimit -n {suggest}`{above_hard}, or record fewer threads or CPUs (-t, -C)"
    )
}

/// A file-descriptor limit worth suggesting: room for what is needed, and
/// at least twice the current one.
pub fn suggested_fd_limit(current: u64, needed: u64) -> u64 {
    let roomy = needed.saturating_add(64).next_multiple_of(1024);
    current.saturating_mul(2).max(roomy).max(1024)
}

fn unsupported_text(event: &str, needs_pmu: bool, errno: &str) -> String {
    if needs_pmu {
        format!(
            "event {event} needs a hardware PMU, and this machine has none that counts it \
             ({errno}; a VM usually has no hardware PMU). Sample time instead: -e cpu-clock \
             (or -e task-clock); `rprof list` shows what this machine has"
        )
    } else {
        format!(
            "event {event} is not supported on this machine ({errno}); `rprof list` shows what \
             it has, and cpu-clock works everywhere"
        )
    }
}

fn paranoid_text(paranoid: Option<i32>) -> String {
    match paranoid {
        Some(level) => format!(": kernel.perf_event_paranoid is {level}"),
        None => ": kernel.perf_event_paranoid could not be read".to_string(),
    }
}

impl SysError {
    /// Replaces the generic event description in [`SysError::EventUnsupported`]
    /// with the name the user typed.
    pub fn with_event_name(self, name: &str) -> SysError {
        match self {
            SysError::EventUnsupported {
                errno, needs_pmu, ..
            } => SysError::EventUnsupported {
                event: name.to_string(),
                needs_pmu,
                errno,
            },
            other => other,
        }
    }

    /// True for EACCES/EPERM from perf_event_open.
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self,
            SysError::PermissionDenied { .. } | SysError::OtherUsersProcess { .. }
        )
    }

    /// Adds how many file descriptors the recording needs to [`SysError::TooManyFiles`].
    pub fn with_fds_needed(self, total: u64) -> SysError {
        match self {
            SysError::TooManyFiles { soft, hard, .. } => SysError::TooManyFiles {
                soft,
                hard,
                needed: total,
            },
            other => other,
        }
    }
}

/// The one errno check for raw calls: `-1` becomes the thread's `errno`.
fn cvt<T: Copy + PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Symbolic name of an errno, for messages.
pub fn errno_name(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(libc::ENODEV) => "ENODEV",
        Some(libc::ESRCH) => "ESRCH",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::E2BIG) => "E2BIG",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::ENOMEM) => "ENOMEM",
        _ => "error",
    }
}

fn read_cpu_list(path: &str) -> Result<Vec<u32>, SysError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SysError::Other(format!("reading {path}: {e}")))?;
    crate::procfs::parse_cpu_list(&text).map_err(|e| SysError::Other(format!("{path}: {e}")))
}

/// Maps a file read-only: the one way rprof memory-maps files (recordings,
/// binaries). If another process truncates the file while it is mapped,
/// reads past the new end fault (SIGBUS); rprof accepts that risk like perf
/// and every other mmap-based reader.
pub fn map_read_only(file: &std::fs::File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process, and every
    // caller keeps the Mmap alive as long as it hands out slices of it.
    unsafe { memmap2::Mmap::map(file) }
}

/// Lets the pages of `range` (offsets into a read-only file map) leave this
/// process's resident set: a reader streaming through a large file is then
/// bounded by what it still holds, not by the file's size. The pages stay in
/// the page cache and come back, unchanged, if read again.
pub fn drop_resident(map: &memmap2::Mmap, range: std::ops::Range<usize>) -> io::Result<()> {
    let page = page_size();
    let start = range.start.next_multiple_of(page);
    let end = range.end.min(map.len()) / page * page;
    if end <= start {
        return Ok(());
    }
    // SAFETY: `map_read_only` maps files read-only and nothing writes to the
    // map, so it has no private (copy-on-write) pages that MADV_DONTNEED
    // would turn into zeros: dropped pages read back from the file as they
    // were. `start..end` lies inside the map (checked above).
    unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) }
}

/// CPUs that are online now (`/sys/devices/system/cpu/online`).
pub fn online_cpus() -> Result<Vec<u32>, SysError> {
    read_cpu_list("/sys/devices/system/cpu/online")
}

/// CPUs present in the machine (`/sys/devices/system/cpu/present`).
pub fn present_cpus() -> Result<Vec<u32>, SysError> {
    read_cpu_list("/sys/devices/system/cpu/present")
}

fn read_proc_number<T: std::str::FromStr>(path: &str) -> Option<T> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `kernel.perf_event_paranoid`, when readable.
pub fn perf_event_paranoid() -> Option<i32> {
    read_proc_number("/proc/sys/kernel/perf_event_paranoid")
}

/// `kernel.perf_event_max_sample_rate` (samples/s per CPU), when readable.
pub fn max_sample_rate() -> Option<u64> {
    read_proc_number("/proc/sys/kernel/perf_event_max_sample_rate")
}

/// `kernel.perf_event_max_stack` (frames per call chain), when readable.
pub fn max_stack() -> Option<u64> {
    read_proc_number("/proc/sys/kernel/perf_event_max_stack")
}

/// True when running with effective uid 0.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The effective uid rprof runs as.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The real uid owning a process or thread (`Uid:` in `/proc/PID/status`).
pub fn process_owner(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().next()?.parse().ok()
}

/// `kernel.perf_event_mlock_kb`: locked memory for perf rings, per CPU, per user.
pub fn perf_event_mlock_kb() -> Option<u64> {
    read_proc_number("/proc/sys/kernel/perf_event_mlock_kb")
}

/// The soft `RLIMIT_MEMLOCK` in bytes (`ulimit -l`); None when unlimited or unreadable.
pub fn memlock_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource};
    let (soft, _) = getrlimit(Resource::RLIMIT_MEMLOCK).ok()?;
    (soft != libc::RLIM_INFINITY).then_some(soft)
}

/// A pidfd for a process (`pidfd_open(2)`); readable once the process exits.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    pidfd_open_flags(pid, 0)
}

/// A pidfd for one thread (`PIDFD_THREAD`, Linux 6.9+); readable once the
/// thread exits.
pub fn pidfd_open_thread(tid: u32) -> io::Result<OwnedFd> {
    pidfd_open_flags(tid, libc::O_EXCL as libc::c_uint)
}

fn pidfd_open_flags(pid: u32, flags: libc::c_uint) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags by value and touches no memory of ours.
    let ret = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) })?;
    let fd = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this fd to us, nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> Result<u64, SysError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| SysError::Syscall {
        call: "getrlimit(RLIMIT_NOFILE)",
        source: e.into(),
    })?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| SysError::Syscall {
            call: "setrlimit(RLIMIT_NOFILE)",
            source: e.into(),
        })?;
    }
    Ok(hard)
}

/// Current `RLIMIT_NOFILE` (soft, hard), for messages.
pub fn fd_limits() -> (u64, u64) {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap_or((0, 0))
}

/// Gives memory that was freed back to the kernel. A long-running
/// recorder finishes intervals on worker threads, each with a malloc
/// arena; without this, every arena keeps the high-water mark of its
/// busiest interval, and RSS creeps up over hours though nothing is held.
/// glibc only (`malloc_trim`); elsewhere a no-op.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; 0 keeps
    // no padding at the top of the heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Sets glibc's malloc for a process that runs for days: fixed mmap and
/// trim thresholds, and few arenas. By default glibc raises both
/// thresholds each time a large block is freed (up to 32 and 64 MiB), and a
/// worker thread's arena then keeps that much free memory at its top, out
/// of `malloc_trim`'s reach: a rotating recorder whose in-use heap stayed at
/// 2.5 MB grew to 29 MB of RSS in 20 minutes, in steps, as bigger intervals
/// came. Fixed values turn the adjustment off: blocks of 256 KiB and more
/// are mapped and unmapped on their own, and a heap's free top over 512 KiB
/// goes back at once. glibc only; elsewhere a no-op.
pub fn tune_allocator_for_long_runs() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's parameters; called before
    // the worker threads start, and glibc locks its arenas while it does.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 10);
        // One arena per worker kept each its own free memory; the workers
        // take turns (record, finish, convert, push), so two are enough.
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// CPU time (user + system) this process has used so far, all threads.
pub fn getrusage_self() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            timeval_to_duration(usage.user_time()) + timeval_to_duration(usage.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

fn timeval_to_duration(tv: nix::sys::time::TimeVal) -> Duration {
    let secs = u64::try_from(tv.tv_sec()).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec()).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// Sends `signal` to a process; errors (already gone) are ignored.
pub fn kill(pid: u32, signal: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_cpus_are_readable_here() {
        let cpus = online_cpus().unwrap();
        assert!(!cpus.is_empty());
    }

    #[test]
    fn permission_message_names_the_fix() {
        let msg = SysError::PermissionDenied {
            errno: "EACCES",
            paranoid: Some(2),
            system_wide: true,
        }
        .to_string();
        assert!(msg.contains("perf_event_paranoid is 2"), "{msg}");
        assert!(msg.contains("sysctl kernel.perf_event_paranoid=1"), "{msg}");
        assert!(msg.contains("CAP_PERFMON"), "{msg}");
        assert!(msg.contains("System-wide"), "{msg}");
    }

    #[test]
    fn fd_limit_hint_suggests_more_than_the_current_limit() {
        let msg = SysError::TooManyFiles {
            soft: 1024,
            hard: 1024,
            needed: 0,
        }
        .with_fds_needed(3000)
        .to_string();
        assert!(msg.contains("needs about 3000 file descriptors"), "{msg}");
        assert!(msg.contains("the limit is 1024"), "{msg}");
        assert!(msg.contains("`ulimit -n 3072`"), "{msg}");
        assert!(msg.contains("above the hard limit 1024"), "{msg}");
        for (current, needed) in [(1024, 0), (20, 30), (524_288, 10), (u64::MAX, 5)] {
            let suggested = suggested_fd_limit(current, needed);
            assert!(suggested > needed, "{current} {needed}: {suggested}");
            assert!(
                suggested > current || current == u64::MAX,
                "{current}: {suggested}"
            );
        }
        let roomy = SysError::TooManyFiles {
            soft: 256,
            hard: 65536,
            needed: 0,
        }
        .to_string();
        assert!(
            roomy.contains("`ulimit -n 1024`") && !roomy.contains("hard limit"),
            "{roomy}"
        );
    }

    #[test]
    fn pidfd_of_self_opens_and_bogus_pid_fails() {
        assert!(pidfd_open(std::process::id()).is_ok());
        assert!(pidfd_open(u32::MAX).is_err());
    }

    #[test]
    fn rusage_and_page_size_are_sane() {
        assert!(page_size() >= 4096);
        let _ = getrusage_self();
    }
}

#[cfg(test)]
mod kernel_tests {
    use super::*;
    use crate::abi::flag;
    use crate::event::{CallGraph, EventSpec, Sampling};

    /// Opens a real cpu-clock event on this thread, spins, and expects samples.
    /// Skips only when perf_event_open is refused and RPROF_REQUIRE_PERF is unset.
    #[test]
    fn cpu_clock_samples_arrive_in_a_real_ring() {
        let mut spec = EventSpec::cpu_clock(Sampling::Frequency(1000), CallGraph::FramePointer);
        let mut opened = None;
        for exclude_kernel in [false, true] {
            spec.exclude_kernel = exclude_kernel;
            let mut attr = spec.to_attr();
            attr.flags |= flag::DISABLED;
            match PerfEvent::open(&attr, 0, -1) {
                Ok(event) => {
                    opened = Some(event);
                    break;
                }
                Err(e) if e.is_permission_denied() && !exclude_kernel => continue,
                Err(e)
                    if e.is_permission_denied()
                        && std::env::var_os("RPROF_REQUIRE_PERF").is_none() =>
                {
                    eprintln!("skipping: {e}");
                    return;
                }
                Err(e) => panic!("perf_event_open failed: {e}"),
            }
        }
        let event = opened.expect("opened");
        let mut ring = RingBuffer::new(&event, 16).expect("mmap ring");
        assert!(event.id().is_ok());
        event.enable().expect("enable");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        event.disable().expect("disable");
        let mut out = Vec::new();
        let stats = ring.drain(&mut out);
        assert!(stats.samples > 0, "no samples: {stats:?}");
        assert_eq!(stats.bytes as usize, out.len());
        assert_eq!(stats.malformed_bytes, 0);
        assert!(!ring.has_data());
        assert_eq!(ring.drain(&mut out), DrainStats::default());
    }

    #[test]
    fn set_output_redirects_into_one_ring() {
        let attr = {
            let mut a = EventSpec::cpu_clock(Sampling::Frequency(1000), CallGraph::None).to_attr();
            a.flags |= flag::DISABLED | flag::EXCLUDE_KERNEL | flag::EXCLUDE_HV;
            a
        };
        let cpu = online_cpus().unwrap()[0] as i32;
        let (a, b) = match (
            PerfEvent::open(&attr, 0, cpu),
            PerfEvent::open(&attr, 0, cpu),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                assert!(
                    e.is_permission_denied() && std::env::var_os("RPROF_REQUIRE_PERF").is_none(),
                    "{e}"
                );
                return;
            }
        };
        let _ring = RingBuffer::new(&a, 8).expect("mmap");
        b.set_output(&a).expect("set_output on the same CPU");
        assert_ne!(a.id().unwrap(), b.id().unwrap());
    }
}
