//! The profile model: what a recording says, at the level of addresses.
//! Every output (top, folded, svg, and later pprof and diff) is a view of it.
//!
//! ```text
//! Profile
//!  ├─ events     name, unit, sample count and weight per event
//!  ├─ modules    path, build id, kind, first mapping (start, limit, file offset)
//!  ├─ locations  (module, module-relative address) -> frames, innermost first
//!  ├─ stacks     location ids, leaf first (interned)
//!  ├─ threads    (pid, tid, comm) (interned)
//!  ├─ cgroups    (kernel id, path) of recordings with cgroup ids (interned)
//!  └─ samples    (event, stack, thread, cgroup, time bucket) -> count, weight
//! ```
//!
//! Memory grows with what is unique (stacks, addresses, threads, busy time
//! buckets), never with the number of records.

use crate::event::{Sampling, Unit};
use crate::process::ModuleRef;
use crate::symbolize::Frames;

pub type EventId = u32;
pub type ModuleId = u32;
pub type LocationId = u32;
pub type StackId = u32;
pub type ThreadId = u32;
pub type CgroupId = u32;

/// One event of the recording (one `perf_event_attr`, or several with the
/// same name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `cpu-clock`, `page-faults`, a tracepoint's name, ...
    pub name: String,
    /// The unit of its sample weights (periods).
    pub unit: Unit,
    /// Samples of this event that passed the filter.
    pub samples: u64,
    /// Their summed weight (saturating), in `unit`.
    pub weight: u64,
}

/// Where a module was first seen mapped (pprof's Mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingRange {
    /// First address of the mapping in the process.
    pub start: u64,
    /// One past its last address.
    pub limit: u64,
    /// File offset of `start`.
    pub offset: u64,
}

/// A binary, the kernel, or a JIT map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub module: ModuleRef,
    /// None for the kernel and JIT code.
    pub mapping: Option<MappingRange>,
}

/// A code address in a module, and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub module: ModuleId,
    /// Module-relative: the file offset for ELF modules, the raw address for
    /// the kernel and JIT code. Return addresses are already minus one, so
    /// it points into the call instruction.
    pub address: u64,
    /// Functions, files and lines, innermost first (inlined callees, then
    /// the function that holds the code); empty when nothing names it.
    pub frames: Frames,
}

/// A thread as samples name it; a thread renamed during the recording
/// appears once per name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Thread {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
}

/// A cgroup samples ran in (recordings with PERF_SAMPLE_CGROUP: `record
/// --label-cgroup`, `perf record --all-cgroups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// The kernel's cgroup id (on 64-bit: the directory's inode number).
    pub id: u64,
    /// From the hierarchy's root (`/system.slice/nginx.service`), when a
    /// CGROUP record named the id.
    pub path: Option<String>,
}

/// All samples that share an event, stack, thread, cgroup and time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackSample {
    pub event: EventId,
    pub stack: StackId,
    pub thread: ThreadId,
    /// The task's cgroup; `None` when the recording has no cgroup ids (a
    /// thread can change cgroups, so this is per sample, not per thread).
    pub cgroup: Option<CgroupId>,
    /// `(time - Profile::time.origin_ns) / Profile::time.bucket_ns`.
    pub bucket: u32,
    pub count: u64,
    /// Summed periods, in the event's unit (saturating).
    pub weight: u64,
}

/// How sample times were bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBuckets {
    /// Time of the first sample (perf clock, ns).
    pub origin_ns: u64,
    pub bucket_ns: u64,
}

/// Counts about the recording itself, for report headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingStats {
    pub lost: u64,
    pub throttled: u64,
    pub first_time: Option<u64>,
    pub last_time: Option<u64>,
    pub has_callchains: bool,
    /// Samples dropped by the filter.
    pub filtered_out: u64,
    /// Samples whose user stack was unwound from a stack copy (DWARF mode).
    pub dwarf_stacks: u64,
    /// Of those, stacks that end in `[truncated]`.
    pub truncated_stacks: u64,
    /// Off-CPU recordings (`record --off-cpu`/`--wall`): how the switches
    /// were sampled and what they came to.
    pub off_cpu: Option<OffCpuStats>,
}

/// What the sampled switch-outs of an off-CPU recording came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffCpuStats {
    /// How the kernel sampled switches (from the event's attr).
    pub sampling: Option<Sampling>,
    /// Switch-outs sampled.
    pub sampled: u64,
    /// Of those: blocked, weighted until the thread's next switch-in.
    pub blocked: u64,
    /// Preempted while runnable (waiting for a CPU, not blocked): left out.
    pub preempted: u64,
    /// Still blocked when the recording stopped: weighted until its last record.
    pub unfinished: u64,
    /// Whose switch-in never came (a lost record, the thread exited): left out.
    pub unpaired: u64,
    /// The sampling periods seen (1 in N switches).
    pub min_period: Option<u64>,
    pub max_period: u64,
    /// Summed off-CPU weight, in ns.
    pub off_cpu_ns: u64,
    /// Threads that blocked but had no switch-out sampled, and their
    /// blocked time: no stack to give it, so left out.
    pub unsampled_threads: u64,
    pub unsampled_ns: u64,
    /// A wall profile (`record --wall`): the cpu-clock weight merged into
    /// the same event, in ns.
    pub on_cpu_ns: Option<u64>,
}

impl RecordingStats {
    pub fn duration_ns(&self) -> u64 {
        match (self.first_time, self.last_time) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        }
    }
}

/// The whole model; see the module docs.
#[derive(Debug, Clone)]
pub struct Profile {
    pub events: Vec<Event>,
    pub modules: Vec<Module>,
    pub locations: Vec<Location>,
    /// Location ids, leaf first.
    pub stacks: Vec<Box<[LocationId]>>,
    pub threads: Vec<Thread>,
    /// Empty unless the samples carry cgroup ids.
    pub cgroups: Vec<Cgroup>,
    /// Sorted by (event, stack, thread, cgroup, bucket).
    pub samples: Vec<StackSample>,
    pub time: TimeBuckets,
    pub stats: RecordingStats,
    pub warnings: Vec<String>,
}

impl Profile {
    pub fn event(&self, id: EventId) -> &Event {
        &self.events[id as usize]
    }

    pub fn location(&self, id: LocationId) -> &Location {
        &self.locations[id as usize]
    }

    pub fn module(&self, id: ModuleId) -> &Module {
        &self.modules[id as usize]
    }

    pub fn thread(&self, id: ThreadId) -> &Thread {
        &self.threads[id as usize]
    }

    pub fn cgroup(&self, id: CgroupId) -> &Cgroup {
        &self.cgroups[id as usize]
    }

    pub fn stack(&self, id: StackId) -> &[LocationId] {
        &self.stacks[id as usize]
    }

    /// Samples of one event, in (stack, thread, cgroup, bucket) order.
    pub fn samples_of(&self, event: EventId) -> &[StackSample] {
        let start = self.samples.partition_point(|s| s.event < event);
        let end = self.samples.partition_point(|s| s.event <= event);
        &self.samples[start..end]
    }

    /// The event called `name`, if the recording has it.
    pub fn find_event(&self, name: &str) -> Option<EventId> {
        self.events
            .iter()
            .position(|e| e.name == name)
            .map(|i| i as EventId)
    }

    /// Total samples over all events.
    pub fn total_samples(&self) -> u64 {
        self.events.iter().map(|e| e.samples).sum()
    }
}
