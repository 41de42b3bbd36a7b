//! A command forked and held before `exec`, so perf events can be opened on
//! its pid (with `enable_on_exec`) before it runs a single instruction of
//! the program. Exec failures come back through a close-on-exec pipe.
//!
//! The child does not outlive rprof: it asks the kernel for SIGKILL when
//! rprof dies (`PR_SET_PDEATHSIG`), so a killed rprof leaves no orphan
//! running (a set-uid program resets that at its exec).

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::SysError;

/// Why `exec` failed in the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecFailure {
    pub errno: i32,
    /// `strerror` text without the "(os error N)" suffix.
    pub reason: String,
}

/// Where a launched command's standard output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChildStdout {
    /// rprof's own standard output.
    #[default]
    Inherit,
    /// rprof's standard error: rprof's standard output carries the
    /// recording (`record -o -`), as `perf record -o -` does.
    Stderr,
}

/// A forked child waiting for [`HeldChild::release`] before it execs.
/// Dropping an unreaped child kills (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct HeldChild {
    pid: u32,
    go: Option<OwnedFd>,
    exec_status: Option<OwnedFd>,
    exit_code: Option<i32>,
}

impl HeldChild {
    /// Forks a child that will run `argv` (searched in `PATH`) once released.
    /// Arguments are passed byte for byte (they need not be UTF-8).
    pub fn spawn(argv: &[OsString], stdout: ChildStdout) -> Result<HeldChild, SysError> {
        if argv.is_empty() {
            return Err(SysError::Other("no command given to run".into()));
        }
        let args: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| SysError::Other("command argument contains a NUL byte".into()))?;
        let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());

        let pipe = || {
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::Syscall {
                call: "pipe2",
                source: e.into(),
            })
        };
        let (go_read, go_write) = pipe()?;
        let (status_read, status_write) = pipe()?;
        let parent = std::process::id() as libc::pid_t;

        let stdout_to_stderr = stdout == ChildStdout::Stderr;
        // SAFETY: after fork the child only makes async-signal-safe calls
        // (prctl, getppid, close, read, dup2, signal, sigprocmask, execvp,
        // write, _exit) on memory prepared before the fork, and never returns into
        // Rust code.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above; this is the child and ends in execvp or _exit.
            unsafe {
                // Die with rprof. If rprof died before this call, the
                // signal will never come: the parent is someone else now.
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                );
                if libc::getppid() != parent {
                    libc::_exit(127);
                }
                libc::close(go_write.as_raw_fd());
                libc::close(status_read.as_raw_fd());
                let mut byte = 0u8;
                loop {
                    let n = libc::read(go_read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                    if n == 1 {
                        break;
                    }
                    if n == -1 && *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    // The parent went away without releasing us.
                    libc::_exit(127);
                }
                if stdout_to_stderr && libc::dup2(2, 1) == -1 {
                    libc::_exit(127);
                }
                // Rust ignores SIGPIPE at start-up; the command gets the default.
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                libc::execvp(ptrs[0], ptrs.as_ptr());
                let errno: i32 = *libc::__errno_location();
                libc::write(status_write.as_raw_fd(), (&errno as *const i32).cast(), 4);
                libc::_exit(127);
            }
        }
        if pid < 0 {
            return Err(SysError::Syscall {
                call: "fork",
                source: io::Error::last_os_error(),
            });
        }
        drop(go_read);
        drop(status_write);
        Ok(HeldChild {
            pid: pid as u32,
            go: Some(go_write),
            exec_status: Some(status_read),
            exit_code: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Lets the child exec and reports whether the exec worked. On failure
    /// the child has been reaped.
    pub fn release(&mut self) -> Result<(), ExecFailure> {
        if let Some(go) = self.go.take() {
            // A failed write means the child is gone; the status pipe says why.
            let _ = nix::unistd::write(&go, &[1u8]);
        }
        let Some(status) = self.exec_status.take() else {
            return Ok(());
        };
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < buf.len() {
            match nix::unistd::read(&status, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        if got == 4 {
            let errno = i32::from_ne_bytes(buf);
            self.wait();
            return Err(ExecFailure {
                errno,
                reason: strerror(errno),
            });
        }
        Ok(())
    }

    /// The exit code if the child has exited (reaps it), without blocking.
    pub fn try_wait(&mut self) -> Option<i32> {
        if self.exit_code.is_none() {
            if let Ok(status) = waitpid(Pid::from_raw(self.pid as i32), Some(WaitPidFlag::WNOHANG))
            {
                self.exit_code = exit_code(status);
            }
        }
        self.exit_code
    }

    /// Waits for the child to exit; 128+N when killed by signal N.
    pub fn wait(&mut self) -> i32 {
        while self.exit_code.is_none() {
            match waitpid(Pid::from_raw(self.pid as i32), None) {
                Ok(status) => self.exit_code = exit_code(status),
                Err(nix::errno::Errno::EINTR) => continue,
                // ECHILD: already reaped elsewhere; nothing more to learn.
                Err(_) => self.exit_code = Some(-1),
            }
        }
        self.exit_code.unwrap_or(-1)
    }

    /// Waits for the child to exit like [`HeldChild::wait`], and returns the
    /// CPU time it used (with its waited-for children, as `time(1)` counts
    /// it). No usage when the child was already reaped.
    pub fn wait_with_usage(&mut self) -> (i32, Option<ChildUsage>) {
        if let Some(code) = self.exit_code {
            return (code, None);
        }
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: rusage is plain data the kernel fills in; both
            // pointers are to live locals for the duration of the call.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: see above; wait4 writes only through the two pointers.
            let ret = unsafe { libc::wait4(self.pid as libc::pid_t, &mut status, 0, &mut usage) };
            if ret == -1 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                self.exit_code = Some(-1);
                return (-1, None);
            }
            let Ok(status) = WaitStatus::from_raw(Pid::from_raw(ret), status) else {
                continue;
            };
            if let Some(code) = exit_code(status) {
                self.exit_code = Some(code);
                let usage = ChildUsage {
                    user: timeval(usage.ru_utime),
                    system: timeval(usage.ru_stime),
                };
                return (code, Some(usage));
            }
        }
    }

    /// Sends SIGTERM, waits up to `grace`, then SIGKILL; returns the exit code.
    pub fn terminate(&mut self, grace: Duration) -> i32 {
        if let Some(code) = self.try_wait() {
            return code;
        }
        super::kill(self.pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(code) = self.try_wait() {
                return code;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        super::kill(self.pid, Signal::SIGKILL);
        self.wait()
    }
}

impl Drop for HeldChild {
    fn drop(&mut self) {
        if self.exit_code.is_none() {
            super::kill(self.pid, Signal::SIGKILL);
            self.wait();
        }
    }
}

/// CPU time a command used, from `wait4(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildUsage {
    pub user: Duration,
    pub system: Duration,
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn runs_after_release_and_reports_exit_code() {
        let mut child =
            HeldChild::spawn(&argv(&["sh", "-c", "exit 3"]), ChildStdout::Inherit).unwrap();
        // Held: it has not run yet.
        assert_eq!(child.try_wait(), None);
        child.release().unwrap();
        assert_eq!(child.wait(), 3);
    }

    #[test]
    fn wait_with_usage_reports_exit_code_and_cpu_time() {
        let mut child = HeldChild::spawn(
            &argv(&[
                "sh",
                "-c",
                "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 4",
            ]),
            ChildStdout::Inherit,
        )
        .unwrap();
        child.release().unwrap();
        let (code, usage) = child.wait_with_usage();
        assert_eq!(code, 4);
        let usage = usage.unwrap();
        assert!(usage.user + usage.system > Duration::ZERO, "{usage:?}");
        assert_eq!(child.wait_with_usage(), (4, None));
    }

    #[test]
    fn non_utf8_arguments_reach_the_command_byte_for_byte() {
        use std::os::unix::ffi::OsStringExt;
        let mut args = argv(&["sh", "-c", r#"[ "$1" = "$(printf 'x\377\376')" ]"#, "sh"]);
        args.push(OsString::from_vec(vec![b'x', 0xff, 0xfe]));
        let mut child = HeldChild::spawn(&args, ChildStdout::Inherit).unwrap();
        child.release().unwrap();
        assert_eq!(child.wait(), 0);
    }

    #[test]
    fn exec_failure_comes_back_with_reason() {
        let mut child = HeldChild::spawn(
            &argv(&["/nonexistent/rprof-test-cmd"]),
            ChildStdout::Inherit,
        )
        .unwrap();
        let err = child.release().unwrap_err();
        assert_eq!(err.errno, libc::ENOENT);
        assert_eq!(err.reason, "No such file or directory");
    }

    #[test]
    fn dropping_a_held_child_kills_it() {
        let child = HeldChild::spawn(&argv(&["sleep", "100"]), ChildStdout::Inherit).unwrap();
        let pid = child.pid();
        drop(child);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn terminate_stops_a_running_child() {
        let mut child = HeldChild::spawn(&argv(&["sleep", "100"]), ChildStdout::Inherit).unwrap();
        child.release().unwrap();
        assert_eq!(child.terminate(Duration::from_secs(2)), 128 + libc::SIGTERM);
    }
}
