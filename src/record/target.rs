//! Who gets events: launching a held command, or attaching to running
//! processes / threads, and what ends the recording (pidfds).

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::{RecordError, Target};
use crate::sys::{self, ChildStdout, HeldChild};

/// Which processes to describe from /proc before sampling starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Synth {
    /// A launched command: the kernel reports its exec and mappings itself.
    Nothing,
    /// These processes (thread group ids), all their threads.
    Processes(Vec<u32>),
    /// Every process in /proc.
    All,
}

/// The resolved plan for opening events.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The `pid` argument of perf_event_open, one event per CPU for each.
    pub event_pids: Vec<i32>,
    pub inherit: bool,
    pub enable_on_exec: bool,
    /// Threads that exit before their events open are skipped (attach modes).
    pub skip_vanished: bool,
    pub synth: Synth,
    /// The command to run: held until [`Plan::child`] is released.
    pub child: Option<HeldChild>,
    /// True when the command itself is the profiled target (`-- CMD`).
    pub child_is_target: bool,
    pub watch: Watch,
}

/// What ends the recording besides signals and `--duration`: the launched
/// command exiting, or every attached process/thread exiting.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    child: Option<OwnedFd>,
    child_exited: bool,
    attached: Vec<(OwnedFd, bool)>,
}

/// Index into [`Watch`]'s fds, as given out by [`Watch::live_fds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchId {
    Child,
    Attached(usize),
}

impl Watch {
    /// Fds still worth polling (exited ones stay readable forever).
    pub fn live_fds(&self) -> Vec<(WatchId, BorrowedFd<'_>)> {
        let mut fds = Vec::new();
        if let (Some(fd), false) = (&self.child, self.child_exited) {
            fds.push((WatchId::Child, fd.as_fd()));
        }
        for (i, (fd, exited)) in self.attached.iter().enumerate() {
            if !exited {
                fds.push((WatchId::Attached(i), fd.as_fd()));
            }
        }
        fds
    }

    pub fn mark_exited(&mut self, id: WatchId) {
        match id {
            WatchId::Child => self.child_exited = true,
            WatchId::Attached(i) => {
                if let Some(entry) = self.attached.get_mut(i) {
                    entry.1 = true;
                }
            }
        }
    }

    /// True once the command exited, or all attached targets exited.
    pub fn done(&self) -> bool {
        self.child_exited
            || (!self.attached.is_empty() && self.attached.iter().all(|(_, exited)| *exited))
    }
}

/// Resolves the target: lists threads, opens pidfds, forks the (held) command.
/// A command it launches writes its standard output to `stdout`.
pub(crate) fn prepare(target: &Target, stdout: ChildStdout) -> Result<Plan, RecordError> {
    match target {
        Target::Launch { argv } => {
            let child = HeldChild::spawn(argv, stdout)?;
            let pid = child.pid();
            let watch = Watch {
                child: Some(pidfd(pid)?),
                ..Watch::default()
            };
            Ok(Plan {
                event_pids: vec![pid_arg(pid)?],
                inherit: true,
                enable_on_exec: true,
                skip_vanished: false,
                synth: Synth::Nothing,
                child: Some(child),
                child_is_target: true,
                watch,
            })
        }
        Target::Pids { pids, argv } => {
            let mut event_pids = Vec::new();
            let mut attached = Vec::new();
            for &pid in pids {
                // A thread id given as -p: watch its process.
                let fd = pidfd(pid).or_else(|e| match thread_group(pid) {
                    Some(tgid) if tgid != pid => pidfd(tgid),
                    _ => Err(e),
                })?;
                attached.push((fd, false));
                for tid in list_threads(pid)? {
                    event_pids.push(pid_arg(tid)?);
                }
            }
            // Mappings belong to the process: describe the tgid of a thread id.
            let processes = pids.iter().map(|&p| thread_group(p).unwrap_or(p)).collect();
            let mut plan = attach_plan(
                event_pids,
                Synth::Processes(dedup(processes)),
                argv.as_deref(),
                stdout,
            )?;
            plan.inherit = true;
            plan.watch.attached = attached;
            Ok(plan)
        }
        Target::Tids { tids, argv } => {
            let mut event_pids = Vec::new();
            let mut attached = Vec::new();
            let mut tgids = Vec::new();
            for &tid in tids {
                let tgid = thread_group(tid).ok_or(RecordError::NoSuchProcess(tid))?;
                tgids.push(tgid);
                let fd = sys::pidfd_open_thread(tid).or_else(|_| sys::pidfd_open(tgid));
                attached.push((fd.map_err(|_| RecordError::NoSuchProcess(tid))?, false));
                event_pids.push(pid_arg(tid)?);
            }
            let mut plan = attach_plan(
                event_pids,
                Synth::Processes(dedup(tgids)),
                argv.as_deref(),
                stdout,
            )?;
            plan.watch.attached = attached;
            Ok(plan)
        }
        Target::SystemWide { argv } => attach_plan(vec![-1], Synth::All, argv.as_deref(), stdout),
    }
}

fn attach_plan(
    event_pids: Vec<i32>,
    synth: Synth,
    argv: Option<&[OsString]>,
    stdout: ChildStdout,
) -> Result<Plan, RecordError> {
    let mut watch = Watch::default();
    let child = match argv {
        Some(argv) if !argv.is_empty() => {
            let child = HeldChild::spawn(argv, stdout)?;
            watch.child = Some(pidfd(child.pid())?);
            Some(child)
        }
        _ => None,
    };
    Ok(Plan {
        event_pids,
        inherit: false,
        enable_on_exec: false,
        skip_vanished: true,
        synth,
        child,
        child_is_target: false,
        watch,
    })
}

fn pidfd(pid: u32) -> Result<OwnedFd, RecordError> {
    sys::pidfd_open(pid).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) | Some(libc::EINVAL) => RecordError::NoSuchProcess(pid),
        _ => RecordError::Other(format!("pidfd_open({pid}): {e}")),
    })
}

fn pid_arg(pid: u32) -> Result<i32, RecordError> {
    i32::try_from(pid).map_err(|_| RecordError::NoSuchProcess(pid))
}

fn dedup(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v.dedup();
    v
}

/// The threads of a process, from `/proc/PID/task`.
pub(crate) fn list_threads(pid: u32) -> Result<Vec<u32>, RecordError> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|_| RecordError::NoSuchProcess(pid))?;
    let mut tids: Vec<u32> = dir
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    if tids.is_empty() {
        return Err(RecordError::NoSuchProcess(pid));
    }
    Ok(tids)
}

/// The thread group (process) id of a thread, from `/proc/TID/status`.
pub(crate) fn thread_group(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    crate::procfs::parse_status_field(&status, "Tgid:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_threads_and_group_are_found() {
        let me = std::process::id();
        assert!(list_threads(me).unwrap().contains(&me));
        assert_eq!(thread_group(me), Some(me));
    }

    #[test]
    fn missing_pid_is_no_such_process() {
        // Above the kernel's pid_max limit (4194304), so never a live pid.
        let err = prepare(
            &Target::Pids {
                pids: vec![999_999_999],
                argv: None,
            },
            ChildStdout::Inherit,
        )
        .unwrap_err();
        assert!(
            matches!(err, RecordError::NoSuchProcess(999_999_999)),
            "{err}"
        );
    }

    #[test]
    fn watch_is_done_when_child_or_all_attached_exit() {
        let me = || sys::pidfd_open(std::process::id()).unwrap();
        let mut w = Watch {
            attached: vec![(me(), false), (me(), false)],
            ..Watch::default()
        };
        assert!(!w.done());
        w.mark_exited(WatchId::Attached(0));
        assert!(!w.done());
        assert_eq!(w.live_fds().len(), 1);
        w.mark_exited(WatchId::Attached(1));
        assert!(w.done());
        let mut w = Watch {
            child: Some(me()),
            ..Watch::default()
        };
        assert!(!w.done());
        w.mark_exited(WatchId::Child);
        assert!(w.done());
        assert!(!Watch::default().done());
    }

    #[test]
    fn launch_plan_holds_the_child_with_enable_on_exec() {
        let plan = prepare(
            &Target::Launch {
                argv: vec!["true".into()],
            },
            ChildStdout::Inherit,
        )
        .unwrap();
        assert!(plan.inherit && plan.enable_on_exec && plan.child_is_target);
        assert_eq!(plan.synth, Synth::Nothing);
        let pid = plan.child.as_ref().unwrap().pid();
        assert_eq!(plan.event_pids, vec![pid as i32]);
        // Dropping the plan kills and reaps the held child.
    }
}
