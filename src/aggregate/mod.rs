//! Aggregation: streams a recording's records in time order through the
//! process model, locates every sample's frames in modules, and interns what
//! is unique into the address-level [`Profile`] (see [`model`]). Names come
//! later, from the symbol table ([`Profile::name_locations`]); outputs read
//! named views ([`view`]).

mod model;
mod offcpu;
mod view;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHasher};

use crate::progress::{NoProgress, Progress};

pub use model::{
    Cgroup, CgroupId, Event, EventId, Location, LocationId, MappingRange, Module, ModuleId,
    OffCpuStats, Profile, RecordingStats, StackId, StackSample, Thread, ThreadId, TimeBuckets,
};
pub use view::{
    frame_infos, module_display_name, CodeKind, FrameId, FrameInfo, NamedProfile, NamedStack,
    Namer, FOLDED_RUN_NAME, FOLD_UNKNOWN_RUN,
};

use crate::abi::{event_type, software};
use crate::event::{event_name, is_off_cpu, Sampling, Unit, OFF_CPU_EVENT};
use crate::perfdata::format::feature;
use crate::perfdata::{EventAttr, Metadata, PerfFile, Record, Sample};
use crate::process::{ModuleAddr, ProcessModel};
use crate::symbolize::unwind_info::ElfUnwindInfo;
use crate::symbolize::{Frames, ModuleRequest, SymbolTable};
use crate::unwind::dwarf::Completion;
use crate::unwind::{self, NoUnwindInfo, RawFrame, Space, StackUnwinder, UnwindInfoSource};

/// Which samples to keep (`report --pid/--comm`).
#[derive(Debug, Clone, Default)]
pub struct SampleFilter {
    pub pids: Vec<u32>,
    pub comms: Vec<String>,
}

impl SampleFilter {
    fn accepts(&self, pid: u32, comm: &str) -> bool {
        (self.pids.is_empty() || self.pids.contains(&pid))
            && (self.comms.is_empty() || self.comms.iter().any(|c| c == comm))
    }
}

/// How to build a profile.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// Which samples to keep (default: all).
    pub filter: SampleFilter,
    /// Width of the time buckets samples are counted in (default 1 s).
    pub time_bucket_ns: u64,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            filter: SampleFilter::default(),
            time_bucket_ns: 1_000_000_000,
        }
    }
}

/// The event a wall profile (`record --wall`) shows: cpu-clock and
/// off-CPU time together, in ns.
pub const WALL_EVENT: &str = "wall";

fn is_cpu_clock(attr: &EventAttr) -> bool {
    attr.kind == event_type::SOFTWARE && attr.config == software::CPU_CLOCK
}

/// Whether the file is a wall recording: off-CPU switches and cpu-clock
/// samples, which then count as one event in one unit.
fn is_wall(attrs: &[EventAttr]) -> bool {
    attrs.iter().any(is_off_cpu) && attrs.iter().any(is_cpu_clock)
}

/// The events of a file: one per distinct name, and which event each attr
/// (by index) belongs to. Off-CPU switch samples become the `off-cpu`
/// event, weighted in blocked nanoseconds; beside cpu-clock, both become
/// the one `wall` event.
pub fn file_events(attrs: &[EventAttr], metadata: &Metadata) -> (Vec<Event>, Vec<EventId>) {
    let mut events: Vec<Event> = Vec::new();
    let mut attr_event = Vec::with_capacity(attrs.len());
    let wall = is_wall(attrs);
    for (index, attr) in attrs.iter().enumerate() {
        let (name, unit) = if wall && (is_off_cpu(attr) || is_cpu_clock(attr)) {
            (WALL_EVENT.to_string(), Unit::Nanoseconds)
        } else if is_off_cpu(attr) {
            (OFF_CPU_EVENT.to_string(), Unit::OffCpuNanoseconds)
        } else {
            let name = metadata
                .event_names
                .get(index)
                .filter(|name| !name.is_empty())
                .cloned()
                .unwrap_or_else(|| event_name(attr.kind, attr.config));
            (name, Unit::of(attr.kind, attr.config))
        };
        let id = match events.iter().position(|e| e.name == name) {
            Some(existing) => existing,
            None => {
                events.push(Event {
                    name,
                    unit,
                    samples: 0,
                    weight: 0,
                });
                events.len() - 1
            }
        };
        attr_event.push(id as EventId);
    }
    (events, attr_event)
}

/// Streams a file into an (unnamed) profile. Memory is bounded by what is
/// unique in it, not by its number of records.
pub fn profile_file(file: &PerfFile, options: &ProfileOptions) -> Profile {
    profile_file_with_progress(file, options, &NoProgress)
}

/// Records between two progress reports: often enough for a bar to move,
/// rarely enough to cost nothing.
const PROGRESS_EVERY: u32 = 1 << 16;

/// Records per batch of DWARF stacks unwound together.
const UNWIND_BATCH: usize = 4096;

/// Whether the samples of some event carry copied user stacks.
fn copies_stacks(attrs: &[EventAttr]) -> bool {
    attrs
        .iter()
        .any(|a| a.sample_type & crate::abi::sample::STACK_USER != 0)
}

/// [`profile_file`], reporting the bytes read on `progress`.
pub fn profile_file_with_progress(
    file: &PerfFile,
    options: &ProfileOptions,
    progress: &dyn Progress,
) -> Profile {
    let (events, attr_event) = file_events(file.attrs(), file.metadata());
    let mut builder = ProfileBuilder::new(events, attr_event, options.clone())
        .off_cpu_attrs(file.attrs())
        .with_unwind_info(Box::new(ElfUnwindInfo::default()))
        .unwound_at_record(file.feature(feature::RPROF_UNWOUND).is_some())
        .recorded_build_ids(&file.metadata().build_ids);
    let mut records = file.ordered();
    progress.begin("reading records", file.len() as u64);
    let (mut since_report, mut reported) = (0u32, 0usize);
    if copies_stacks(file.attrs()) {
        // DWARF stacks: unwound a batch at a time, on all cores.
        let mut batch = Vec::with_capacity(UNWIND_BATCH);
        loop {
            batch.clear();
            batch.extend(records.by_ref().take(UNWIND_BATCH));
            if batch.is_empty() {
                break;
            }
            builder.add_batch(&batch);
            let read = records.bytes_read();
            progress.advance(read.saturating_sub(reported) as u64);
            reported = read;
        }
    }
    while let Some(record) = records.next() {
        builder.add(&record);
        since_report += 1;
        if since_report == PROGRESS_EVERY {
            since_report = 0;
            let read = records.bytes_read();
            progress.advance(read.saturating_sub(reported) as u64);
            reported = read;
        }
    }
    progress.end();
    builder.finish(records.warnings())
}

/// How a sample's copied user stack (if any) is unwound.
enum Unwinding {
    /// Now, one sample at a time.
    Here,
    /// Already, in a batch (`None`: there was nothing to unwind).
    Done(Option<unwind::Unwound>),
}

// The builder's maps are looked up for every sample, with keys from the
// recording itself: FxHash (rustc's hasher) is several times faster than
// SipHash there, and flooding its buckets needs a crafted file that would
// only slow down the one report reading it.

/// The hash of a located stack, whether it comes as addresses (a sample)
/// or as location ids (a stack already interned).
fn hash_frames(frames: impl Iterator<Item = ModuleAddr>) -> u64 {
    let mut hasher = FxHasher::default();
    for frame in frames {
        frame.hash(&mut hasher);
    }
    hasher.finish()
}

/// Key of [`StackSample`]s while building: event, stack, thread, bucket, cgroup.
type SampleKey = (EventId, StackId, ThreadId, u32, Option<CgroupId>);

/// Builds a [`Profile`] from records given in time order.
pub struct ProfileBuilder {
    options: ProfileOptions,
    model: ProcessModel,
    events: Vec<Event>,
    /// Event of each attr index.
    attr_event: Vec<EventId>,
    /// Stack ids, hashed and compared through `stacks` and `locations`, so
    /// each unique stack is stored once.
    stack_index: HashTable<StackId>,
    stacks: Vec<Box<[LocationId]>>,
    location_index: FxHashMap<ModuleAddr, LocationId>,
    locations: Vec<ModuleAddr>,
    threads: Vec<Thread>,
    thread_index: FxHashMap<Thread, ThreadId>,
    /// The last thread id handed out per tid, with the name it had.
    thread_cache: FxHashMap<u32, (Rc<str>, u32, ThreadId)>,
    /// Kernel ids of the cgroups samples ran in, by [`CgroupId`], and the
    /// paths CGROUP records gave (every cgroup the recording names).
    cgroup_index: FxHashMap<u64, CgroupId>,
    cgroups: Vec<u64>,
    cgroup_paths: FxHashMap<u64, String>,
    samples: FxHashMap<SampleKey, (u64, u64)>,
    stats: RecordingStats,
    // perf 6.x writes both the ring's LOST records and, at the end, a
    // LOST_SAMPLES total of the same losses: count the larger, not the sum.
    lost_in_ring: u64,
    lost_samples: u64,
    /// Scratch space reused for every sample.
    raw: Vec<RawFrame>,
    located: Vec<ModuleAddr>,
    /// User stacks of samples with copied registers and stack (DWARF mode).
    unwinder: StackUnwinder,
    /// The unwinder's view of the mappings in [`ProfileBuilder::add_batch`].
    unwind_model: ProcessModel,
    /// The recording's user stacks were unwound by `rprof record` (it holds
    /// call chains where perf's DWARF files hold stack copies).
    unwound_at_record: bool,
    /// Off-CPU recordings: which attrs sample switch-outs, which are the
    /// cpu-clock of a wall profile, and the switch-outs in flight.
    off_cpu_attr: Vec<bool>,
    on_cpu_attr: Vec<bool>,
    off_cpu: Option<offcpu::OffCpuTracker>,
}

impl ProfileBuilder {
    pub fn new(events: Vec<Event>, attr_event: Vec<EventId>, options: ProfileOptions) -> Self {
        ProfileBuilder {
            options,
            model: ProcessModel::new(),
            events,
            attr_event,
            stack_index: HashTable::new(),
            stacks: Vec::new(),
            location_index: FxHashMap::default(),
            locations: Vec::new(),
            threads: Vec::new(),
            thread_index: FxHashMap::default(),
            thread_cache: FxHashMap::default(),
            cgroup_index: FxHashMap::default(),
            cgroups: Vec::new(),
            cgroup_paths: FxHashMap::default(),
            samples: FxHashMap::default(),
            stats: RecordingStats::default(),
            lost_in_ring: 0,
            lost_samples: 0,
            raw: Vec::new(),
            located: Vec::new(),
            unwinder: StackUnwinder::new(Box::new(NoUnwindInfo)),
            unwound_at_record: false,
            unwind_model: ProcessModel::new(),
            off_cpu_attr: Vec::new(),
            on_cpu_attr: Vec::new(),
            off_cpu: None,
        }
    }

    /// The file's attrs, for off-CPU recordings: switch-out samples then
    /// wait for their thread's switch-in record, which gives their weight.
    pub fn off_cpu_attrs(mut self, attrs: &[EventAttr]) -> Self {
        let Some(first) = attrs.iter().find(|a| is_off_cpu(a)) else {
            return self;
        };
        let wall = is_wall(attrs);
        self.off_cpu_attr = attrs.iter().map(is_off_cpu).collect();
        self.on_cpu_attr = attrs.iter().map(|a| wall && is_cpu_clock(a)).collect();
        let sampling = if first.is_freq() {
            Sampling::Frequency(first.sample_period_or_freq)
        } else {
            Sampling::Period(first.sample_period_or_freq)
        };
        let mut tracker = offcpu::OffCpuTracker::default();
        tracker.stats.sampling = Some(sampling);
        tracker.stats.on_cpu_ns = wall.then_some(0);
        self.off_cpu = Some(tracker);
        self
    }

    /// What off-CPU pairing needs from every record: the time (the end of
    /// the recording), and which threads come and go.
    fn note_off_cpu(&mut self, record: &Record<'_>) {
        let Some(tracker) = self.off_cpu.as_mut() else {
            return;
        };
        if let Some(time) = record.time() {
            tracker.saw_time(time);
            // Blocked time ends at switch-ins, after the last sample: the
            // profile lasts until then.
            if self.stats.first_time.is_some() {
                self.stats.last_time = self.stats.last_time.max(Some(time));
            }
        }
        match record {
            Record::Fork(t) => tracker.created(t.tid),
            Record::Exit(t) => tracker.exited(t.tid),
            Record::Switch(switch) => {
                if let Some(tid) = switch.sample_id.tid {
                    tracker.switch(tid, switch);
                }
            }
            _ => {}
        }
    }

    /// Build ids the recording's header lists, for mappings without one.
    pub fn recorded_build_ids(mut self, build_ids: &[(i32, Vec<u8>, String)]) -> Self {
        let pairs = build_ids
            .iter()
            .map(|(_, id, path)| (path.as_str(), &id[..]));
        self.model.set_recorded_build_ids(pairs.clone());
        self.unwind_model.set_recorded_build_ids(pairs);
        self
    }

    /// Whether `rprof record` unwound the user stacks (its DWARF mode): then
    /// each user call chain is such a walk, and one that ends in
    /// [`unwind::TRUNCATED_MARK`] was cut short.
    pub fn unwound_at_record(mut self, unwound: bool) -> Self {
        self.unwound_at_record = unwound;
        self
    }

    /// Where the DWARF unwinder gets module sections (default: nowhere, so
    /// copied stacks are walked by frame pointer only).
    pub fn with_unwind_info(mut self, source: Box<dyn UnwindInfoSource>) -> Self {
        self.unwinder = StackUnwinder::new(source);
        self
    }

    /// Takes the next record (in time order).
    pub fn add(&mut self, record: &Record<'_>) {
        self.note_off_cpu(record);
        match record {
            Record::Sample(sample) => self.add_sample(sample, Unwinding::Here),
            Record::Lost(l) => self.lost_in_ring = self.lost_in_ring.saturating_add(l.lost),
            Record::LostSamples(l) => self.lost_samples = self.lost_samples.saturating_add(l.lost),
            Record::Throttle(t) if !t.unthrottle => self.stats.throttled += 1,
            Record::Cgroup(c) => {
                // A path the kernel gave later (a new cgroup) wins.
                self.cgroup_paths.insert(c.id, c.path.clone());
            }
            Record::Exit(t) if t.pid == t.tid => {
                self.unwinder.forget(t.pid);
                self.model.apply(record);
            }
            other => self.model.apply(other),
        }
    }

    /// Takes a batch of records (in time order, following those taken
    /// before): the copied user stacks among them are unwound on all cores.
    /// The unwinder follows the mappings in a model of its own, ahead of
    /// the one that places frames (which must see each sample's time).
    pub fn add_batch(&mut self, batch: &[Record<'_>]) {
        let mut jobs = Vec::with_capacity(batch.len());
        for record in batch {
            match record {
                Record::Sample(sample) => jobs.push(self.unwinder.job(&self.unwind_model, sample)),
                other => {
                    jobs.push(None);
                    if let Record::Exit(t) = other {
                        if t.pid == t.tid {
                            self.unwinder.forget(t.pid);
                        }
                    }
                    self.unwind_model.apply(other);
                }
            }
        }
        let unwound = unwind::run_all(&jobs);
        drop(jobs);
        for (record, unwound) in batch.iter().zip(unwound) {
            match record {
                Record::Sample(sample) => self.add_sample(sample, Unwinding::Done(unwound)),
                Record::Exit(t) if t.pid == t.tid => {
                    self.note_off_cpu(record);
                    self.model.apply(record);
                }
                other => self.add(other),
            }
        }
    }

    fn add_sample(&mut self, sample: &Sample<'_>, unwinding: Unwinding) {
        let comm = self.model.comm(sample.pid, sample.tid);
        if !self.options.filter.accepts(sample.pid, &comm) {
            self.stats.filtered_out += 1;
            return;
        }
        let event = self.event_of(sample.attr_index);
        let weight = sample.period.max(1);
        let switched_out = self.off_cpu_attr.get(sample.attr_index) == Some(&true);
        if let Some(tracker) = self.off_cpu.as_mut() {
            tracker.saw_time(sample.time);
            if switched_out && !tracker.tracks(sample.tid) {
                return;
            }
        }
        let origin = *self.stats.first_time.get_or_insert(sample.time);
        self.stats.last_time = Some(sample.time);
        self.stats.has_callchains |= !sample.callchain.is_empty();

        let stack = self.stack_of(sample, unwinding);
        let thread = self.thread_of(sample.pid, sample.tid, comm);
        let bucket = sample.time.saturating_sub(origin) / self.options.time_bucket_ns.max(1);
        let bucket = u32::try_from(bucket).unwrap_or(u32::MAX);
        let cgroup = sample.cgroup.map(|id| self.cgroup_of(id));
        let key = (event, stack, thread, bucket, cgroup);
        if let Some(tracker) = self.off_cpu.as_mut() {
            if switched_out {
                // Its weight is the time until the thread runs again.
                tracker.switched_out(sample.tid, key, sample.time, sample.period);
                return;
            }
            if self.on_cpu_attr.get(sample.attr_index) == Some(&true) {
                let on_cpu = tracker.stats.on_cpu_ns.get_or_insert(0);
                *on_cpu = on_cpu.saturating_add(weight);
            }
        }
        self.count(key, weight);
    }

    /// One sample (or off-CPU interval) of `weight` into the event and the
    /// samples. Weights come from the file: saturate rather than overflow.
    fn count(&mut self, key: SampleKey, weight: u64) {
        self.count_many(key, 1, weight);
    }

    /// `samples` samples of `weight` in all.
    fn count_many(&mut self, key: SampleKey, samples: u64, weight: u64) {
        let stats = &mut self.events[key.0 as usize];
        stats.samples += samples;
        stats.weight = stats.weight.saturating_add(weight);
        let entry = self.samples.entry(key).or_insert((0, 0));
        entry.0 += samples;
        entry.1 = entry.1.saturating_add(weight);
    }

    fn event_of(&mut self, attr_index: usize) -> EventId {
        if let Some(&event) = self.attr_event.get(attr_index) {
            return event;
        }
        // A sample of an attr the file never declared: keep it visible.
        if self.events.is_empty() {
            self.events.push(Event {
                name: "unknown event".into(),
                unit: Unit::Events,
                samples: 0,
                weight: 0,
            });
        }
        0
    }

    /// The sample's raw frames into `self.raw`: the call chain, or in DWARF
    /// mode its kernel part followed by the user stack unwound here.
    fn raw_frames(&mut self, sample: &Sample<'_>, unwinding: Unwinding) {
        let unwound = match unwinding {
            Unwinding::Here => self
                .unwinder
                .sample_frames(&self.model, sample, &mut self.raw),
            Unwinding::Done(Some((user, done))) => {
                unwind::with_user_frames(sample, &user, done, &mut self.raw);
                Some(done)
            }
            Unwinding::Done(None) => {
                unwind::frames_into(sample, &mut self.raw);
                None
            }
        };
        if let Some(done) = unwound {
            self.stats.has_callchains = true;
            self.stats.dwarf_stacks += 1;
            if done == Completion::Truncated {
                self.stats.truncated_stacks += 1;
            }
        } else if self.unwound_at_record {
            self.recorded_unwind_marks();
        }
    }

    /// Counts a stack `rprof record` unwound, and turns its mark of a walk
    /// cut short into the [`RawFrame::TRUNCATED`] frame.
    fn recorded_unwind_marks(&mut self) {
        if !self.raw.iter().any(|f| f.space == Space::User) {
            return;
        }
        self.stats.dwarf_stacks += 1;
        if let Some(last) = self.raw.last_mut() {
            if last.space == Space::User && last.addr == unwind::TRUNCATED_MARK {
                *last = RawFrame::TRUNCATED;
                self.stats.truncated_stacks += 1;
            }
        }
    }

    /// Locates the sample's frames and interns the stack.
    fn stack_of(&mut self, sample: &Sample<'_>, unwinding: Unwinding) -> StackId {
        self.raw_frames(sample, unwinding);
        self.located.clear();
        for frame in &self.raw {
            self.located.push(self.model.locate(sample.pid, frame));
        }
        let hash = hash_frames(self.located.iter().copied());
        let (stacks, locations) = (&self.stacks, &self.locations);
        let same = |&id: &StackId| {
            let stack = &stacks[id as usize];
            stack.len() == self.located.len()
                && stack
                    .iter()
                    .zip(&self.located)
                    .all(|(&location, at)| locations[location as usize] == *at)
        };
        if let Some(&id) = self.stack_index.find(hash, same) {
            return id;
        }
        let locations: Box<[LocationId]> = self
            .located
            .iter()
            .map(|at| {
                *self.location_index.entry(*at).or_insert_with(|| {
                    self.locations.push(*at);
                    (self.locations.len() - 1) as LocationId
                })
            })
            .collect();
        let id = self.stacks.len() as StackId;
        self.stacks.push(locations);
        let (stacks, locations) = (&self.stacks, &self.locations);
        self.stack_index.insert_unique(hash, id, |&id| {
            hash_frames(stacks[id as usize].iter().map(|&l| locations[l as usize]))
        });
        id
    }

    fn cgroup_of(&mut self, id: u64) -> CgroupId {
        *self.cgroup_index.entry(id).or_insert_with(|| {
            self.cgroups.push(id);
            (self.cgroups.len() - 1) as CgroupId
        })
    }

    fn thread_of(&mut self, pid: u32, tid: u32, comm: Rc<str>) -> ThreadId {
        if let Some((name, cached_pid, id)) = self.thread_cache.get(&tid) {
            if Rc::ptr_eq(name, &comm) && *cached_pid == pid {
                return *id;
            }
        }
        let thread = Thread {
            pid,
            tid,
            comm: comm.to_string(),
        };
        let id = match self.thread_index.get(&thread) {
            Some(&id) => id,
            None => {
                let id = self.threads.len() as ThreadId;
                self.threads.push(thread.clone());
                self.thread_index.insert(thread, id);
                id
            }
        };
        self.thread_cache.insert(tid, (comm, pid, id));
        id
    }

    /// The profile, its locations not named yet.
    pub fn finish(mut self, mut warnings: Vec<String>) -> Profile {
        if let Some(mut tracker) = self.off_cpu.take() {
            for blocked in tracker.finish() {
                self.count_many(blocked.key, blocked.count, blocked.weight);
            }
            self.stats.off_cpu = Some(tracker.stats);
        }
        warnings.extend(self.unwinder.warnings());
        let no_frames: Frames = Arc::from(Vec::new());
        let modules = (0..self.model.modules().len() as ModuleId)
            .map(|id| Module {
                module: self.model.module(id).clone(),
                mapping: self.model.first_mapping(id),
            })
            .collect();
        let locations = self
            .locations
            .iter()
            .map(|at| Location {
                module: at.module,
                address: at.addr,
                frames: Arc::clone(&no_frames),
            })
            .collect();
        let mut samples: Vec<StackSample> = self
            .samples
            .into_iter()
            .map(
                |((event, stack, thread, bucket, cgroup), (count, weight))| StackSample {
                    event,
                    stack,
                    thread,
                    cgroup,
                    bucket,
                    count,
                    weight,
                },
            )
            .collect();
        samples.sort_unstable_by_key(|s| (s.event, s.stack, s.thread, s.cgroup, s.bucket));
        let cgroups = self
            .cgroups
            .iter()
            .map(|&id| Cgroup {
                id,
                path: self.cgroup_paths.remove(&id),
            })
            .collect();
        let mut stats = self.stats;
        stats.lost = self.lost_in_ring.max(self.lost_samples);
        Profile {
            events: self.events,
            modules,
            locations,
            stacks: self.stacks,
            threads: self.threads,
            cgroups,
            samples,
            time: TimeBuckets {
                origin_ns: stats.first_time.unwrap_or(0),
                bucket_ns: self.options.time_bucket_ns.max(1),
            },
            stats,
            warnings,
        }
    }
}

impl Profile {
    /// Unique addresses per module, sorted: what the symbolizer is asked.
    pub fn symbol_requests(&self) -> Vec<ModuleRequest> {
        let mut per_module: BTreeMap<ModuleId, Vec<u64>> = BTreeMap::new();
        for location in &self.locations {
            per_module
                .entry(location.module)
                .or_default()
                .push(location.address);
        }
        per_module
            .into_iter()
            .map(|(module, mut addrs)| {
                addrs.sort_unstable();
                addrs.dedup();
                ModuleRequest {
                    module: self.module(module).module.clone(),
                    addrs,
                }
            })
            .collect()
    }

    /// Names every location through `table`; what it lacks stays unnamed.
    pub fn name_locations(&mut self, table: &SymbolTable) {
        let table_ids: Vec<Option<u32>> = self
            .modules
            .iter()
            .map(|m| table.find_recorded(&m.module))
            .collect();
        for location in &mut self.locations {
            let named = table_ids[location.module as usize]
                .and_then(|id| table.lookup(id, location.address));
            if let Some(frames) = named {
                location.frames = Arc::clone(frames);
            }
        }
    }
}

/// Every unique (module, lookup address) that the file's samples touch,
/// grouped per module: what `record` symbolizes before it exits.
pub fn symbol_requests(file: &PerfFile, progress: &dyn Progress) -> Vec<ModuleRequest> {
    profile_file_with_progress(file, &ProfileOptions::default(), progress).symbol_requests()
}

/// Splits the requests into what `embedded` already answers and what is
/// still missing (to be symbolized from this machine's files).
pub fn missing_from(table: &SymbolTable, requests: Vec<ModuleRequest>) -> Vec<ModuleRequest> {
    requests
        .into_iter()
        .filter_map(|mut request| {
            if let Some(id) = table.find_recorded(&request.module) {
                request
                    .addrs
                    .retain(|&addr| table.lookup(id, addr).is_none());
            }
            (!request.addrs.is_empty()).then_some(request)
        })
        .collect()
}

#[cfg(test)]
mod tests;
