//! `perf_event_open(2)` and the ioctls on its file descriptor.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use perf_event_open_sys as pes;
use pes::bindings;

use super::{cvt, errno_name, SysError};
use crate::abi::EventAttr;

/// Converts rprof's attr into the kernel struct, every field. `size` is the
/// bindings' struct size; the flag word is copied bit for bit through the
/// bindings' bitfield accessor, so the layout (and endianness) is theirs.
pub fn to_kernel_attr(attr: &EventAttr) -> bindings::perf_event_attr {
    let mut k = bindings::perf_event_attr {
        type_: attr.kind,
        size: std::mem::size_of::<bindings::perf_event_attr>() as u32,
        config: attr.config,
        sample_type: attr.sample_type,
        read_format: attr.read_format,
        bp_type: attr.bp_type,
        branch_sample_type: attr.branch_sample_type,
        sample_regs_user: attr.sample_regs_user,
        sample_stack_user: attr.sample_stack_user,
        clockid: attr.clockid,
        sample_regs_intr: attr.sample_regs_intr,
        aux_watermark: attr.aux_watermark,
        sample_max_stack: attr.sample_max_stack,
        aux_sample_size: attr.aux_sample_size,
        sig_data: attr.sig_data,
        config3: attr.config3,
        ..Default::default()
    };
    k.__bindgen_anon_1.sample_period = attr.sample_period_or_freq;
    k.__bindgen_anon_2.wakeup_events = attr.wakeup_events_or_watermark;
    k.__bindgen_anon_3.config1 = attr.config1;
    k.__bindgen_anon_4.config2 = attr.config2;
    for bit in 0..64 {
        k._bitfield_1.set_bit(bit, attr.flags & (1u64 << bit) != 0);
    }
    k
}

/// An open perf event; the fd closes on drop.
#[derive(Debug)]
pub struct PerfEvent {
    fd: OwnedFd,
}

impl PerfEvent {
    /// Opens `attr` for `pid` (-1: every process) on `cpu` (-1: any CPU),
    /// close-on-exec, with no group.
    pub fn open(attr: &EventAttr, pid: i32, cpu: i32) -> Result<PerfEvent, SysError> {
        Self::open_in_group(attr, pid, cpu, None)
    }

    /// Opens `attr` like [`PerfEvent::open`], as a member of `leader`'s
    /// group when one is given (the kernel schedules a group's events
    /// together, so their counts cover the same time).
    pub fn open_in_group(
        attr: &EventAttr,
        pid: i32,
        cpu: i32,
        leader: Option<&PerfEvent>,
    ) -> Result<PerfEvent, SysError> {
        let group_fd = leader.map_or(-1, |l| l.fd.as_raw_fd());
        let mut kattr = to_kernel_attr(attr);
        // SAFETY: `kattr` is a fully initialised perf_event_attr that lives
        // across the call; the kernel may write the expected size back into
        // it. `group_fd` is -1 or the fd of a live event (borrowed above).
        let ret = unsafe {
            pes::perf_event_open(
                &mut kattr,
                pid,
                cpu,
                group_fd,
                libc::c_ulong::from(bindings::PERF_FLAG_FD_CLOEXEC),
            )
        };
        match cvt(ret) {
            // SAFETY: the kernel just returned this fd; nothing else owns it.
            Ok(fd) => Ok(PerfEvent {
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
            }),
            Err(err) => Err(open_error(attr, pid, cpu, &err)),
        }
    }

    pub fn enable(&self) -> Result<(), SysError> {
        // SAFETY: ENABLE takes an integer argument and our fd is a live perf event fd.
        let ret = unsafe { pes::ioctls::ENABLE(self.fd.as_raw_fd(), 0) };
        cvt(ret).map(drop).map_err(|source| SysError::Syscall {
            call: "ioctl(PERF_EVENT_IOC_ENABLE)",
            source,
        })
    }

    pub fn disable(&self) -> Result<(), SysError> {
        // SAFETY: DISABLE takes an integer argument and our fd is a live perf event fd.
        let ret = unsafe { pes::ioctls::DISABLE(self.fd.as_raw_fd(), 0) };
        cvt(ret).map(drop).map_err(|source| SysError::Syscall {
            call: "ioctl(PERF_EVENT_IOC_DISABLE)",
            source,
        })
    }

    /// The sample id the kernel assigned (`PERF_EVENT_IOC_ID`).
    pub fn id(&self) -> Result<u64, SysError> {
        let mut id = 0u64;
        // SAFETY: ID writes one u64 through the pointer, which points at a live local.
        let ret = unsafe { pes::ioctls::ID(self.fd.as_raw_fd(), &mut id) };
        cvt(ret).map_err(|source| SysError::Syscall {
            call: "ioctl(PERF_EVENT_IOC_ID)",
            source,
        })?;
        Ok(id)
    }

    /// Sets a tracepoint's filter (`PERF_EVENT_IOC_SET_FILTER`), e.g.
    /// `prev_pid == 1`; the kernel refuses (EINVAL) one it cannot parse.
    pub fn set_filter(&self, filter: &str) -> Result<(), SysError> {
        let mut text = std::ffi::CString::new(filter)
            .map_err(|_| SysError::Other(format!("--filter {filter:?}: contains a NUL byte")))?
            .into_bytes_with_nul();
        // SAFETY: SET_FILTER reads a NUL-terminated string through the
        // pointer, which points at `text`, alive across the call.
        let ret = unsafe {
            pes::ioctls::SET_FILTER(
                self.fd.as_raw_fd(),
                text.as_mut_ptr().cast::<libc::c_char>(),
            )
        };
        cvt(ret)
            .map(drop)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EINVAL) => SysError::Other(format!(
                    "--filter {filter:?}: the kernel refused the filter (EINVAL); filters compare \
                 the tracepoint's fields (see its format file, e.g. `prev_pid == 1 && \
                 next_comm != \"swapper/0\"`)"
                )),
                _ => SysError::Syscall {
                    call: "ioctl(PERF_EVENT_IOC_SET_FILTER)",
                    source,
                },
            })
    }

    /// Sends this event's records into `target`'s ring buffer
    /// (`PERF_EVENT_IOC_SET_OUTPUT`; both must be on the same CPU).
    pub fn set_output(&self, target: &PerfEvent) -> Result<(), SysError> {
        // SAFETY: SET_OUTPUT takes another perf event fd by value; both fds are live.
        let ret = unsafe { pes::ioctls::SET_OUTPUT(self.fd.as_raw_fd(), target.fd.as_raw_fd()) };
        cvt(ret).map(drop).map_err(|source| SysError::Syscall {
            call: "ioctl(PERF_EVENT_IOC_SET_OUTPUT)",
            source,
        })
    }
}

impl AsFd for PerfEvent {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PerfEvent {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The flag most likely behind an EINVAL, from the limits the kernel checks.
fn invalid_attr_hint(attr: &EventAttr, max_rate: Option<u64>, max_stack: Option<u64>) -> String {
    let value = attr.sample_period_or_freq;
    if attr.is_freq() {
        if let Some(max) = max_rate.filter(|&max| value > max) {
            return format!(
                "-F {value} is above kernel.perf_event_max_sample_rate ({max}); lower -F, or \
                 raise the limit with `sudo sysctl kernel.perf_event_max_sample_rate={value}`"
            );
        }
    } else if value >> 63 != 0 {
        return format!(
            "-c {value}: the kernel takes sampling periods below 2^63; use a smaller -c"
        );
    }
    if attr.sample_type & crate::abi::sample::CALLCHAIN != 0 {
        if let Some(max) = max_stack.filter(|&max| u64::from(attr.sample_max_stack) > max) {
            return format!(
                "-g asks for call chains of {} frames, above kernel.perf_event_max_stack ({max}); \
                 raise it with `sudo sysctl kernel.perf_event_max_stack={}`",
                attr.sample_max_stack, attr.sample_max_stack
            );
        }
    }
    // PERF_SAMPLE_CGROUP and attr.cgroup came with Linux 5.7.
    if attr.sample_type & crate::abi::sample::CGROUP != 0 {
        return "--label-cgroup needs Linux 5.7 or later (PERF_SAMPLE_CGROUP); on an older \
                kernel leave it out"
            .into();
    }
    "check the sampling flags (-F or -c) and -g; the event's fields follow".into()
}

fn open_error(attr: &EventAttr, pid: i32, cpu: i32, err: &io::Error) -> SysError {
    let errno = errno_name(err);
    match err.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => {
            let uid = super::euid();
            match (pid > 0 && uid != 0).then(|| super::process_owner(pid)) {
                Some(Some(owner)) if owner != uid => SysError::OtherUsersProcess {
                    pid,
                    owner,
                    uid,
                    errno,
                },
                _ => SysError::PermissionDenied {
                    errno,
                    paranoid: super::perf_event_paranoid(),
                    system_wide: pid == -1,
                },
            }
        }
        Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV) => SysError::EventUnsupported {
            event: crate::event::event_name(attr.kind, attr.config),
            needs_pmu: !matches!(
                attr.kind,
                crate::abi::event_type::SOFTWARE | crate::abi::event_type::TRACEPOINT
            ),
            errno,
        },
        Some(libc::ESRCH) => SysError::NoSuchProcess { pid },
        Some(libc::EMFILE) => {
            let (soft, hard) = super::fd_limits();
            SysError::TooManyFiles {
                soft,
                hard,
                needed: 0,
            }
        }
        Some(libc::EINVAL | libc::E2BIG) => {
            let max_rate = super::max_sample_rate();
            let rate = if attr.is_freq() {
                let max = max_rate.map_or_else(|| "?".to_string(), |m| m.to_string());
                format!(
                    "sample_freq={} Hz (kernel.perf_event_max_sample_rate={max})",
                    attr.sample_period_or_freq
                )
            } else {
                format!("sample_period={}", attr.sample_period_or_freq)
            };
            SysError::InvalidAttr {
                errno,
                hint: invalid_attr_hint(attr, max_rate, super::max_stack()),
                details: format!(
                    "event {} (type {} config {:#x}), {rate}, sample_type={:#x}, flags={:#x}, \
                     wakeup={}, sample_max_stack={}, sample_stack_user={}, pid={pid}, cpu={cpu}",
                    crate::event::event_name(attr.kind, attr.config),
                    attr.kind,
                    attr.config,
                    attr.sample_type,
                    attr.flags,
                    attr.wakeup_events_or_watermark,
                    attr.sample_max_stack,
                    attr.sample_stack_user,
                ),
            }
        }
        _ => SysError::Syscall {
            call: "perf_event_open",
            source: io::Error::from_raw_os_error(err.raw_os_error().unwrap_or(0)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{flag, sample, software};
    use crate::event::{CallGraph, EventSpec, Sampling};

    #[test]
    fn conversion_sets_fields_and_bitfield_bits() {
        let mut attr =
            EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer).to_attr();
        attr.flags |= flag::DISABLED | flag::INHERIT | flag::ENABLE_ON_EXEC | flag::WATERMARK;
        attr.flags |= flag::BUILD_ID;
        attr.flags |= 2 << flag::PRECISE_IP_SHIFT;
        attr.wakeup_events_or_watermark = 131072;
        attr.config1 = 7;
        attr.config2 = 8;
        let k = to_kernel_attr(&attr);
        assert_eq!(k.type_, bindings::PERF_TYPE_SOFTWARE);
        assert_eq!(
            k.size as usize,
            std::mem::size_of::<bindings::perf_event_attr>()
        );
        assert_eq!(k.config, software::CPU_CLOCK);
        assert_eq!(k.sample_type, attr.sample_type);
        assert_ne!(k.sample_type & sample::CALLCHAIN, 0);
        assert_eq!(k.sample_max_stack, 127);
        // SAFETY (test): plain integer union fields, all written above.
        let (freq, wakeup, c1, c2) = unsafe {
            (
                k.__bindgen_anon_1.sample_freq,
                k.__bindgen_anon_2.wakeup_watermark,
                k.__bindgen_anon_3.config1,
                k.__bindgen_anon_4.config2,
            )
        };
        assert_eq!((freq, wakeup, c1, c2), (999, 131072, 7, 8));
        assert_eq!(k.disabled(), 1);
        assert_eq!(k.inherit(), 1);
        assert_eq!(k.enable_on_exec(), 1);
        assert_eq!(k.watermark(), 1);
        assert_eq!(k.freq(), 1);
        assert_eq!(k.mmap(), 1);
        assert_eq!(k.mmap2(), 1);
        assert_eq!(k.comm(), 1);
        assert_eq!(k.comm_exec(), 1);
        assert_eq!(k.task(), 1);
        assert_eq!(k.sample_id_all(), 1);
        assert_eq!(k.build_id(), 1);
        assert_eq!(k.precise_ip(), 2);
        assert_eq!(k.exclude_kernel(), 0);
        assert_eq!(k.exclude_user(), 0);
        assert_eq!(k.pinned(), 0);
    }

    #[test]
    fn conversion_of_exclude_kernel_and_period() {
        let mut spec = EventSpec::cpu_clock(Sampling::Period(250_000), CallGraph::None);
        spec.exclude_kernel = true;
        let k = to_kernel_attr(&spec.to_attr());
        assert_eq!(k.exclude_kernel(), 1);
        assert_eq!(k.exclude_hv(), 1);
        assert_eq!(k.freq(), 0);
        // SAFETY (test): plain integer union field.
        assert_eq!(unsafe { k.__bindgen_anon_1.sample_period }, 250_000);
    }

    #[test]
    fn invalid_period_names_the_c_flag() {
        let attr = EventSpec::cpu_clock(Sampling::Period(u64::MAX), CallGraph::None).to_attr();
        let msg = open_error(&attr, 1, 0, &io::Error::from_raw_os_error(libc::EINVAL)).to_string();
        assert!(
            msg.contains("-c 18446744073709551615") && msg.contains("below 2^63"),
            "{msg}"
        );
        let attr = EventSpec::cpu_clock(Sampling::Frequency(900_000), CallGraph::None).to_attr();
        let hint = invalid_attr_hint(&attr, Some(25_000), None);
        assert!(
            hint.starts_with("-F 900000") && hint.contains("lower -F"),
            "{hint}"
        );
        let attr = EventSpec::cpu_clock(Sampling::Frequency(99), CallGraph::FramePointer).to_attr();
        assert!(invalid_attr_hint(&attr, Some(25_000), Some(64)).starts_with("-g"));
        assert!(invalid_attr_hint(&attr, Some(25_000), Some(127)).contains("-F or -c"));
        let mut cgroup = EventSpec::cpu_clock(Sampling::Frequency(99), CallGraph::None);
        cgroup.cgroup = true;
        let hint = invalid_attr_hint(&cgroup.to_attr(), Some(25_000), Some(127));
        assert!(hint.starts_with("--label-cgroup needs Linux 5.7"), "{hint}");
    }

    #[test]
    fn permission_error_on_another_users_process_names_ptrace() {
        let msg = SysError::OtherUsersProcess {
            pid: 42,
            owner: 0,
            uid: 65534,
            errno: "EACCES",
        }
        .to_string();
        assert!(msg.contains("PID 42: it belongs to another user"), "{msg}");
        assert!(msg.contains("ptrace") && !msg.contains("paranoid"), "{msg}");
        // Our own process is never blamed on ptrace.
        let me = std::process::id() as i32;
        let err = open_error(
            &EventSpec::cpu_clock(Sampling::Frequency(99), CallGraph::None).to_attr(),
            me,
            0,
            &io::Error::from_raw_os_error(libc::EACCES),
        );
        assert!(matches!(err, SysError::PermissionDenied { .. }), "{err}");
    }

    #[test]
    fn invalid_attr_error_shows_key_fields() {
        let attr = EventSpec::cpu_clock(Sampling::Frequency(123), CallGraph::None).to_attr();
        let msg = open_error(&attr, 42, 1, &io::Error::from_raw_os_error(libc::EINVAL)).to_string();
        assert!(msg.contains("sample_freq=123"), "{msg}");
        assert!(msg.contains("pid=42"), "{msg}");
        let msg = open_error(
            &EventAttr {
                kind: crate::abi::event_type::HARDWARE,
                ..attr
            },
            -1,
            0,
            &io::Error::from_raw_os_error(libc::ENOENT),
        )
        .to_string();
        assert!(msg.contains("needs a hardware PMU"), "{msg}");
        assert!(
            msg.contains("-e cpu-clock") && msg.contains("task-clock"),
            "{msg}"
        );
        assert!(msg.contains("cycles"), "{msg}");
        let msg = open_error(
            &EventAttr {
                kind: crate::abi::event_type::SOFTWARE,
                config: 99,
                ..attr
            },
            -1,
            0,
            &io::Error::from_raw_os_error(libc::ENOENT),
        )
        .to_string();
        assert!(
            msg.contains("not supported on this machine") && !msg.contains("PMU"),
            "{msg}"
        );
        assert!(matches!(
            open_error(&attr, 5, 0, &io::Error::from_raw_os_error(libc::ESRCH)),
            SysError::NoSuchProcess { pid: 5 }
        ));
    }
}
