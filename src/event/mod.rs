//! Which event to sample and how: parses perf's event syntax (`-e`) into
//! [`EventSpec`]s and turns them into the `perf_event_attr` the kernel
//! takes. Pure apart from reading sysfs/tracefs names, whose roots are
//! parameters, so every encoding is unit-tested.
//!
//! - [`hardware`]: software, generic hardware and hardware cache names.
//! - [`pmu`]: sysfs PMUs (`pmu/event=0x3c,umask=1/`, named PMU events).
//! - [`tracepoint`]: tracefs ids and the format of raw tracepoint data.
//! - [`parse`]: the `-e` grammar (lists, `{groups}`, `:modifiers`).
//! - [`list`]: what `rprof list` shows.

pub mod hardware;
pub mod list;
pub mod parse;
pub mod pmu;
pub mod tracepoint;

pub use parse::{parse_event_list, parse_event_list_in, EventSources};

use crate::abi::{event_type, flag, sample, software, EventAttr};

/// Why an event description was refused; each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("-e {text}: {why}")]
    Syntax { text: String, why: String },
    #[error("unknown event '{name}'; `rprof list` shows the events this machine has")]
    UnknownEvent { name: String },
    #[error(
        "unknown PMU '{pmu}' in '{event}' (no {root}/{pmu}/type); `rprof list` shows the PMUs"
    )]
    UnknownPmu {
        pmu: String,
        event: String,
        root: String,
    },
    #[error("PMU {pmu} has no term '{term}' (its format terms: {known})")]
    UnknownPmuTerm {
        pmu: String,
        term: String,
        known: String,
    },
    #[error("PMU {pmu}: term '{term}' {why}")]
    BadPmuTerm {
        pmu: String,
        term: String,
        why: String,
    },
    #[error("event '{event}': unknown modifier '{modifier}' (rprof takes u, k, h and p, pp, ppp)")]
    BadModifier { event: String, modifier: char },
    #[error(
        "tracepoints need tracefs, which is not mounted (neither /sys/kernel/tracing/events nor \
         /sys/kernel/debug/tracing/events exists); as root: \
         `mount -t tracefs nodev /sys/kernel/tracing`"
    )]
    NoTracefs,
    #[error("unknown tracepoint '{name}' (not under {tracefs}/events); `rprof list TEXT` shows the tracepoints")]
    UnknownTracepoint { name: String, tracefs: String },
    #[error("no tracepoint matches '{pattern}' under {tracefs}/events; `rprof list '{pattern}'` shows what matches")]
    NoTracepointMatches { pattern: String, tracefs: String },
    #[error("-e {event}: term '{term}' {why}")]
    BadConfigTerm {
        event: String,
        term: String,
        why: String,
    },
    #[error("--filter {filter}: a filter applies to the tracepoint given by the -e just before it, and '{event}' is not one")]
    FilterWithoutTracepoint { filter: String, event: String },
}

/// Events opened together (`{a,b}`): the first is the leader, and the
/// kernel schedules them onto the PMU as one. A lone event is a group of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGroup {
    pub events: Vec<EventSpec>,
}

impl EventGroup {
    /// The groups' events in order, members marked as such (what the
    /// record session opens).
    pub fn flatten(groups: Vec<EventGroup>) -> Vec<EventSpec> {
        let mut events = Vec::new();
        for group in groups {
            for (index, mut event) in group.events.into_iter().enumerate() {
                event.group_member = index > 0;
                events.push(event);
            }
        }
        events
    }
}

/// How often to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Samples per second per CPU (`-F`); the kernel adapts the period.
    Frequency(u64),
    /// One sample every N events (`-c`); ns for cpu-clock.
    Period(u64),
}

impl Default for Sampling {
    /// perf's default: 4000 Hz.
    fn default() -> Self {
        Sampling::Frequency(4000)
    }
}

/// How call chains are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallGraph {
    /// Only the sampled instruction pointer.
    #[default]
    None,
    /// Kernel-walked frame-pointer chains (`-g`, `--call-graph fp`).
    FramePointer,
    /// The kernel's call chain for kernel frames, plus the user registers
    /// and a copy of the top `stack_bytes` of the user stack, unwound with
    /// DWARF CFI (`--call-graph dwarf[,SIZE]`).
    Dwarf { stack_bytes: u32 },
}

/// perf's default stack copy for `--call-graph dwarf`.
pub const DEFAULT_DWARF_STACK_BYTES: u32 = 8192;
/// The most the kernel copies per sample (a u16 record size less the rest).
pub const MAX_DWARF_STACK_BYTES: u32 = 65528;

/// The user registers a DWARF sample copies: perf's x86-64 set (the
/// general-purpose registers, ip, sp and flags; not the segment ones).
#[cfg(target_arch = "x86_64")]
pub const DWARF_USER_REGS: u64 = 0xff_0fff;
#[cfg(target_arch = "aarch64")]
pub const DWARF_USER_REGS: u64 = (1 << 33) - 1;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const DWARF_USER_REGS: u64 = 0;

/// The name `record --off-cpu` gives its event (perf shows it too).
pub const OFF_CPU_EVENT: &str = "off-cpu";

/// Whether an attr samples switch-outs with switch records beside them:
/// rprof's off-CPU event, or perf's `-e context-switches --switch-events`.
pub fn is_off_cpu(attr: &EventAttr) -> bool {
    attr.kind == event_type::SOFTWARE
        && attr.config == software::CONTEXT_SWITCHES
        && attr.has_flag(flag::CONTEXT_SWITCH)
}

/// The call-chain depth cap perf uses (`kernel.perf_event_max_stack` default).
pub const MAX_STACK: u16 = 127;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// Name shown in reports (`cpu-clock`).
    pub name: String,
    /// `PERF_TYPE_*` or a dynamic PMU's type.
    pub kind: u32,
    pub config: u64,
    /// PMU-specific extra config words (format terms placed there). Default 0.
    pub config1: u64,
    pub config2: u64,
    pub sampling: Sampling,
    pub call_graph: CallGraph,
    /// Leave kernel samples out (needed without privilege at paranoid 2).
    /// (Also leaves hypervisor samples out, as before modifiers existed.)
    pub exclude_kernel: bool,
    /// `:k`/`:h` without `u`: no user-mode samples. Default false.
    pub exclude_user: bool,
    /// No hypervisor samples. Default false.
    pub exclude_hv: bool,
    /// Skid constraint, 0-3 (`:p`, `:pp`, `:ppp`). Default 0.
    pub precise_ip: u8,
    /// Opened in the group of the nearest earlier event that is not a
    /// member (its leader). Default false.
    pub group_member: bool,
    /// `--filter EXPR` of a tracepoint (PERF_EVENT_IOC_SET_FILTER). Default None.
    pub filter: Option<String>,
    /// A tracepoint's tracefs `format` file, read when the event was
    /// parsed; the recording keeps it so the report can show raw fields.
    /// Default None.
    pub trace_format: Option<String>,
    /// DWARF mode: the kernel also walks the user stack by frame pointers,
    /// for where the stack copy ends before the root (the unwinder goes on
    /// along that chain when it holds the last frame it reached). Off as in
    /// perf, whose reader would show those frames twice; `record` turns it
    /// on for files, which it rewrites without them.
    pub kernel_user_chain: bool,
    /// Ask for PERF_RECORD_SWITCH / SWITCH_CPU_WIDE records (`attr.context_switch`):
    /// the switch-in times that weight off-CPU samples.
    pub context_switch: bool,
    /// `period=N` or `freq=HZ` in the event's own `/.../` terms: kept over
    /// -F/-c, as perf does. Default None.
    pub own_sampling: Option<Sampling>,
    /// `record --label-cgroup`: each sample carries its task's cgroup id
    /// (PERF_SAMPLE_CGROUP), and the kernel reports new cgroups'
    /// paths (`attr.cgroup`). Default false.
    pub cgroup: bool,
}

impl EventSpec {
    /// The software timer rprof records by default.
    pub fn cpu_clock(sampling: Sampling, call_graph: CallGraph) -> EventSpec {
        EventSpec {
            name: "cpu-clock".to_string(),
            kind: event_type::SOFTWARE,
            config: software::CPU_CLOCK,
            config1: 0,
            config2: 0,
            sampling,
            call_graph,
            exclude_kernel: false,
            exclude_user: false,
            exclude_hv: false,
            precise_ip: 0,
            group_member: false,
            filter: None,
            trace_format: None,
            kernel_user_chain: false,
            context_switch: false,
            own_sampling: None,
            cgroup: false,
        }
    }

    /// Off-CPU sampling (`record --off-cpu`): the context-switches software
    /// event, sampled in the task that switches out (so its call chain is
    /// where it blocked), plus switch records for when it runs again.
    /// `sampling` bounds the overhead: every Nth switch, or a rate the
    /// kernel keeps by adapting N; the sample's period carries N.
    pub fn off_cpu(sampling: Sampling, call_graph: CallGraph) -> EventSpec {
        EventSpec {
            name: OFF_CPU_EVENT.to_string(),
            kind: event_type::SOFTWARE,
            config: software::CONTEXT_SWITCHES,
            context_switch: true,
            ..EventSpec::cpu_clock(sampling, call_graph)
        }
    }

    /// True for `subsys:name` events.
    pub fn is_tracepoint(&self) -> bool {
        self.kind == event_type::TRACEPOINT
    }

    /// How perf samples this event when neither -F nor -c is given: every
    /// hit of a tracepoint (its period is 1), the 4000 Hz default otherwise.
    pub fn default_sampling(&self) -> Sampling {
        if self.is_tracepoint() {
            Sampling::Period(1)
        } else {
            Sampling::default()
        }
    }

    /// The attr for sampling this event. The record session adds the
    /// target-dependent bits (disabled, inherit, enable_on_exec).
    pub fn to_attr(&self) -> EventAttr {
        let mut sample_type =
            sample::IP | sample::TID | sample::TIME | sample::CPU | sample::PERIOD;
        let mut flags = flag::MMAP
            | flag::MMAP2
            | flag::COMM
            | flag::COMM_EXEC
            | flag::TASK
            | flag::SAMPLE_ID_ALL;
        // No `build_id` bit, for any target: the kernel (seen on 6.18) sets
        // the build-id flag on the MMAP2 records of every event iterated
        // after one that asked (all events on the host when a system-wide
        // one asked; later events on the same task otherwise), over bodies
        // that still hold device/inode bytes, and Linux perf aborts on such
        // files. rprof takes build ids from the files when it embeds symbols
        // (docs/file-format.md, "Build ids").
        let sample_period_or_freq = match self.sampling {
            Sampling::Frequency(hz) => {
                flags |= flag::FREQ;
                hz
            }
            Sampling::Period(period) => period,
        };
        let mut sample_regs_user = 0;
        let mut sample_stack_user = 0;
        match self.call_graph {
            CallGraph::None => {}
            CallGraph::FramePointer => sample_type |= sample::CALLCHAIN,
            CallGraph::Dwarf { stack_bytes } => {
                // The kernel walks only its own frames; the user part comes
                // from the registers and the stack copy, as with perf.
                sample_type |= sample::CALLCHAIN | sample::REGS_USER | sample::STACK_USER;
                // Data mappings too, as perf asks: its unwinder places a
                // file by the mapping of its first (read-only) segment.
                flags |= flag::MMAP_DATA;
                if !self.kernel_user_chain {
                    flags |= flag::EXCLUDE_CALLCHAIN_USER;
                }
                sample_regs_user = DWARF_USER_REGS;
                sample_stack_user = stack_bytes;
            }
        }
        if self.exclude_kernel {
            flags |= flag::EXCLUDE_KERNEL | flag::EXCLUDE_HV;
        }
        if self.context_switch {
            flags |= flag::CONTEXT_SWITCH;
        }
        if self.exclude_user {
            flags |= flag::EXCLUDE_USER;
        }
        if self.exclude_hv {
            flags |= flag::EXCLUDE_HV;
        }
        if self.cgroup {
            sample_type |= sample::CGROUP;
            flags |= flag::CGROUP;
        }
        flags |= u64::from(self.precise_ip.min(3)) << flag::PRECISE_IP_SHIFT;
        // A tracepoint's fields are its raw data.
        if self.is_tracepoint() {
            sample_type |= sample::RAW;
        }
        EventAttr {
            kind: self.kind,
            config: self.config,
            config1: self.config1,
            config2: self.config2,
            sample_period_or_freq,
            sample_type,
            flags,
            sample_max_stack: if self.call_graph == CallGraph::None {
                0
            } else {
                MAX_STACK
            },
            sample_regs_user,
            sample_stack_user,
            ..EventAttr::default()
        }
    }
}

/// The attrs for recording `events` together, in order. Side-band records
/// (mmap, comm, task) are asked of the first event only: one copy of each
/// is enough, and the others would only repeat it. With several events
/// every record carries PERF_SAMPLE_IDENTIFIER, so a reader can tell which
/// event a sample belongs to (as perf does).
pub fn recording_attrs(events: &[EventSpec]) -> Vec<EventAttr> {
    let side_band =
        flag::MMAP | flag::MMAP2 | flag::COMM | flag::COMM_EXEC | flag::TASK | flag::CGROUP;
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let mut attr = event.to_attr();
            if index > 0 {
                attr.flags &= !side_band;
            }
            if events.len() > 1 {
                attr.sample_type |= sample::IDENTIFIER;
            }
            attr
        })
        .collect()
}

/// The unit of an event's sample weights (its periods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Timer events (cpu-clock, task-clock): periods are nanoseconds.
    Nanoseconds,
    /// Page, minor, major, alignment and emulation faults: counts of faults.
    Faults,
    /// Everything else counts occurrences (cycles, switches, tracepoint hits).
    Events,
    /// Time a thread spent blocked, from its switch-out to its next
    /// switch-in (pprof's sample type `off-cpu`, unit `nanoseconds`).
    OffCpuNanoseconds,
}

impl Unit {
    /// The event's unit from its type and config.
    pub fn of(kind: u32, config: u64) -> Unit {
        match (kind, config) {
            (event_type::SOFTWARE, software::CPU_CLOCK | software::TASK_CLOCK) => Unit::Nanoseconds,
            (
                event_type::SOFTWARE,
                software::PAGE_FAULTS
                | software::PAGE_FAULTS_MIN
                | software::PAGE_FAULTS_MAJ
                | software::ALIGNMENT_FAULTS
                | software::EMULATION_FAULTS,
            ) => Unit::Faults,
            _ => Unit::Events,
        }
    }

    /// Short name in report headers (`ns`, `events`).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Nanoseconds => "ns",
            Unit::Faults => "faults",
            Unit::Events => "events",
            Unit::OffCpuNanoseconds => "off-cpu/nanoseconds",
        }
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of an event, as perf spells it (`cycles`, `cpu-clock`,
/// `r1c2`, `type 4 config 0x1c2`): the one place events are named, for
/// reports and messages alike.
pub fn event_name(kind: u32, config: u64) -> String {
    const HARDWARE: [&str; 10] = [
        "cycles",
        "instructions",
        "cache-references",
        "cache-misses",
        "branches",
        "branch-misses",
        "bus-cycles",
        "stalled-cycles-frontend",
        "stalled-cycles-backend",
        "ref-cycles",
    ];
    const SOFTWARE: [&str; 12] = [
        "cpu-clock",
        "task-clock",
        "page-faults",
        "context-switches",
        "cpu-migrations",
        "minor-faults",
        "major-faults",
        "alignment-faults",
        "emulation-faults",
        "dummy",
        "bpf-output",
        "cgroup-switches",
    ];
    let named = |table: &[&'static str]| {
        usize::try_from(config)
            .ok()
            .and_then(|i| table.get(i).copied())
    };
    let name = match kind {
        event_type::HARDWARE => named(&HARDWARE),
        event_type::SOFTWARE => named(&SOFTWARE),
        _ => None,
    };
    match (name, kind) {
        (Some(name), _) => name.to_string(),
        (None, event_type::RAW) => format!("r{config:x}"),
        (None, _) => format!("type {kind} config {config:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_clock_frequency_with_frame_pointers_sets_callchain_and_freq() {
        let attr =
            EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer).to_attr();
        assert_eq!(attr.kind, event_type::SOFTWARE);
        assert_eq!(attr.config, software::CPU_CLOCK);
        assert!(attr.is_freq());
        assert_eq!(attr.sample_period_or_freq, 999);
        assert_ne!(attr.sample_type & sample::CALLCHAIN, 0);
        assert!(attr.has_flag(flag::SAMPLE_ID_ALL) && attr.has_flag(flag::MMAP2));
        assert_eq!(attr.sample_max_stack, MAX_STACK);
    }

    #[test]
    fn dwarf_call_graph_copies_user_registers_and_stack_like_perf() {
        let attr = EventSpec::cpu_clock(
            Sampling::Frequency(999),
            CallGraph::Dwarf { stack_bytes: 8192 },
        )
        .to_attr();
        let dwarf = sample::CALLCHAIN | sample::REGS_USER | sample::STACK_USER;
        assert_eq!(attr.sample_type & dwarf, dwarf);
        // perf 6.x `--call-graph dwarf` on x86-64: the same registers, and
        // the kernel walks no user frames (they come from the copy).
        #[cfg(target_arch = "x86_64")]
        assert_eq!(attr.sample_regs_user, 0xff0fff);
        assert_eq!(attr.sample_stack_user, 8192);
        assert!(attr.has_flag(flag::EXCLUDE_CALLCHAIN_USER) && attr.has_flag(flag::MMAP_DATA));
        assert!(!attr.has_flag(flag::EXCLUDE_CALLCHAIN_KERNEL));
        let fp = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer).to_attr();
        assert_eq!((fp.sample_regs_user, fp.sample_stack_user), (0, 0));
        assert_eq!(fp.sample_type & (sample::REGS_USER | sample::STACK_USER), 0);
    }

    #[test]
    fn label_cgroup_samples_ids_and_asks_the_first_event_for_cgroup_records() {
        let mut cpu = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer);
        assert_eq!(cpu.to_attr().sample_type & sample::CGROUP, 0);
        assert!(!cpu.to_attr().has_flag(flag::CGROUP));
        cpu.cgroup = true;
        let faults = EventSpec {
            name: "page-faults".into(),
            config: software::PAGE_FAULTS,
            ..cpu.clone()
        };
        let attrs = recording_attrs(&[cpu, faults]);
        assert!(attrs.iter().all(|a| a.sample_type & sample::CGROUP != 0));
        assert!(attrs[0].has_flag(flag::CGROUP));
        assert!(!attrs[1].has_flag(flag::CGROUP), "one copy of each record");
    }

    #[test]
    fn several_events_carry_identifiers_and_one_set_of_side_band_records() {
        let cpu = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::FramePointer);
        let single = recording_attrs(std::slice::from_ref(&cpu));
        assert_eq!(single, vec![cpu.to_attr()]);
        let faults = EventSpec {
            name: "page-faults".into(),
            config: software::PAGE_FAULTS,
            ..cpu.clone()
        };
        let attrs = recording_attrs(&[cpu, faults]);
        assert!(attrs
            .iter()
            .all(|a| a.sample_type & sample::IDENTIFIER != 0));
        assert!(attrs[0].has_flag(flag::MMAP2) && attrs[0].has_flag(flag::COMM));
        assert!(!attrs[1].has_flag(flag::MMAP2) && !attrs[1].has_flag(flag::COMM));
        assert!(!attrs[1].has_flag(flag::TASK));
        assert_eq!(attrs[1].config, software::PAGE_FAULTS);
        // The trailer every record carries stays decodable for all.
        assert!(attrs.iter().all(|a| a.has_flag(flag::SAMPLE_ID_ALL)));
    }

    #[test]
    fn events_are_named_as_perf_names_them() {
        assert_eq!(
            event_name(event_type::SOFTWARE, software::CPU_CLOCK),
            "cpu-clock"
        );
        assert_eq!(event_name(event_type::SOFTWARE, 2), "page-faults");
        assert_eq!(event_name(event_type::HARDWARE, 1), "instructions");
        assert_eq!(event_name(event_type::RAW, 0x1c2), "r1c2");
        assert_eq!(event_name(9, 0x10), "type 9 config 0x10");
        assert_eq!(
            Unit::of(event_type::SOFTWARE, software::TASK_CLOCK),
            Unit::Nanoseconds
        );
        assert_eq!(Unit::of(event_type::SOFTWARE, 2), Unit::Faults);
        assert_eq!(Unit::of(event_type::SOFTWARE, 6), Unit::Faults);
        assert_eq!(Unit::of(event_type::SOFTWARE, 3), Unit::Events);
        assert_eq!(Unit::of(event_type::HARDWARE, 0), Unit::Events);
        assert_eq!(Unit::Faults.to_string(), "faults");
    }

    #[test]
    fn events_never_ask_for_mmap2_build_ids_so_other_profilers_keep_working() {
        for call_graph in [
            CallGraph::None,
            CallGraph::FramePointer,
            CallGraph::Dwarf { stack_bytes: 8192 },
        ] {
            for sampling in [Sampling::Frequency(4000), Sampling::Period(1_000_000)] {
                let attr = EventSpec::cpu_clock(sampling, call_graph).to_attr();
                assert!(
                    !attr.has_flag(flag::BUILD_ID),
                    "{sampling:?} {call_graph:?}"
                );
            }
        }
    }

    #[test]
    fn off_cpu_samples_context_switches_and_asks_for_switch_records() {
        let spec = EventSpec::off_cpu(Sampling::Period(1), CallGraph::FramePointer);
        let attr = spec.to_attr();
        assert_eq!(
            (attr.kind, attr.config, attr.sample_period_or_freq),
            (event_type::SOFTWARE, software::CONTEXT_SWITCHES, 1)
        );
        assert!(attr.has_flag(flag::CONTEXT_SWITCH) && !attr.is_freq());
        assert_ne!(attr.sample_type & sample::CALLCHAIN, 0);
        assert!(is_off_cpu(&attr));
        let cpu = EventSpec::cpu_clock(Sampling::Period(1), CallGraph::FramePointer).to_attr();
        assert!(!cpu.has_flag(flag::CONTEXT_SWITCH) && !is_off_cpu(&cpu));
        // Beside cpu-clock (--wall) it keeps the flag: switch records are
        // not side-band records the first event already asks for.
        let attrs = recording_attrs(&[
            EventSpec::cpu_clock(Sampling::Period(1), CallGraph::None),
            spec,
        ]);
        assert!(is_off_cpu(&attrs[1]));
        assert_eq!(Unit::OffCpuNanoseconds.as_str(), "off-cpu/nanoseconds");
    }

    #[test]
    fn fixed_period_without_callgraph_has_no_callchain() {
        let attr = EventSpec::cpu_clock(Sampling::Period(250_000), CallGraph::None).to_attr();
        assert!(!attr.is_freq());
        assert_eq!(attr.sample_period_or_freq, 250_000);
        assert_eq!(attr.sample_type & sample::CALLCHAIN, 0);
    }
}
