//! Opening the events (one per event, CPU and target thread; one ring per
//! CPU that all events on it write into) and the drain loop that moves ring
//! bytes into the file.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::target::{Plan, Watch, WatchId};
use super::RecordError;
use crate::abi::{flag, EventAttr};
use crate::event::{recording_attrs, EventSpec};
use crate::perfdata::writer::{encode, DataSink};
use crate::sys::{self, DrainStats, PerfEvent, RingBuffer, SysError};

/// Longest sleep in poll: bounds how late `--duration` is noticed, and how
/// long samples wait in the rings (a SIGKILL loses what is there).
const TICK: Duration = Duration::from_millis(100);
/// How often buffered data is written and the header's data size
/// refreshed: with TICK, a SIGKILL loses at most about 200 ms of samples.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Rings are not shrunk below this many data pages for the locked-memory
/// limit (smaller ones lose samples at the default rate).
const MIN_SHRUNK_PAGES: usize = 8;
/// File descriptors rprof holds besides its events (stdio, the output,
/// pipes, pidfds), for the EMFILE message.
const BASE_FDS: u64 = 16;

/// The target-independent attr plus the bits this plan needs.
pub(crate) fn session_attr(base: &EventAttr, plan: &Plan, ring_bytes: usize) -> EventAttr {
    let mut attr = *base;
    attr.flags |= flag::DISABLED | flag::WATERMARK;
    if plan.inherit {
        attr.flags |= flag::INHERIT;
    }
    if plan.enable_on_exec {
        attr.flags |= flag::ENABLE_ON_EXEC;
    }
    // Wake up when a quarter of the ring is full: few wakeups, room to spare.
    attr.wakeup_events_or_watermark = u32::try_from(ring_bytes / 4).unwrap_or(u32::MAX).max(1);
    attr
}

/// All open events and the per-CPU rings they write into.
pub(crate) struct Session {
    /// One attr per recorded event, in the order asked for.
    pub attrs: Vec<EventAttr>,
    events: Vec<PerfEvent>,
    /// Index into `attrs` of each open event.
    event_attr: Vec<usize>,
    /// (ring, index of the event that owns it)
    rings: Vec<(RingBuffer, usize)>,
    /// Rings whose owner reported POLLHUP/POLLERR are drained but not polled.
    ring_polled: Vec<bool>,
}

impl Session {
    /// Opens the events; on a permission refusal for a non-root user, retries
    /// once without kernel samples, and shrinks rings the locked-memory
    /// limit refuses; says so in `warnings`.
    pub fn open(
        events: &[EventSpec],
        plan: &Plan,
        cpus: &[u32],
        data_pages: usize,
        warnings: &mut Vec<String>,
    ) -> Result<Session, RecordError> {
        sys::raise_fd_limit()?;
        let data_pages = data_pages.max(1).next_power_of_two();
        let fds_needed = (events.len() * cpus.len() * plan.event_pids.len()) as u64 + BASE_FDS;
        let named = |err: RecordError| match err {
            RecordError::Sys(e) => RecordError::Sys(e.with_fds_needed(fds_needed)),
            other => other,
        };
        let order = OpenOrder::of(events);
        let bases = recording_attrs(events);
        match Session::open_shrinking(&bases, &order, plan, cpus, data_pages, warnings) {
            Err(RecordError::Sys(e))
                if e.is_permission_denied()
                    && !bases.iter().all(|b| b.has_flag(flag::EXCLUDE_KERNEL))
                    && !sys::is_root() =>
            {
                let user_only: Vec<EventAttr> = bases
                    .iter()
                    .map(|base| EventAttr {
                        flags: base.flags | flag::EXCLUDE_KERNEL | flag::EXCLUDE_HV,
                        ..*base
                    })
                    .collect();
                let session =
                    Session::open_shrinking(&user_only, &order, plan, cpus, data_pages, warnings)
                        .map_err(named)?;
                let level =
                    sys::perf_event_paranoid().map_or_else(|| "?".to_string(), |l| l.to_string());
                warnings.push(format!(
                    "kernel frames excluded: perf_event_paranoid={level} (run as root or \
                     `sudo sysctl kernel.perf_event_paranoid=1` to include them)"
                ));
                Ok(session)
            }
            other => other.map_err(named),
        }
    }

    /// Opens with rings of `data_pages`, halving them while the
    /// locked-memory limit refuses the mapping (as perf sizes its rings to
    /// that limit), down to [`MIN_SHRUNK_PAGES`].
    fn open_shrinking(
        bases: &[EventAttr],
        order: &OpenOrder<'_>,
        plan: &Plan,
        cpus: &[u32],
        data_pages: usize,
        warnings: &mut Vec<String>,
    ) -> Result<Session, RecordError> {
        let mut pages = data_pages;
        loop {
            let attrs: Vec<EventAttr> = bases
                .iter()
                .zip(&order.leader)
                .map(|(base, leader)| {
                    let mut attr = session_attr(base, plan, pages * sys::page_size());
                    // As perf: only a group's leader is disabled and enabled
                    // (at exec); its members follow it.
                    if leader.is_some() {
                        attr.flags &= !(flag::DISABLED | flag::ENABLE_ON_EXEC);
                    }
                    attr
                })
                .collect();
            // Warnings of an attempt that is retried would repeat.
            let mut attempt_warnings = Vec::new();
            let opened = Session::open_with(attrs, order, plan, cpus, pages, &mut attempt_warnings);
            if let Err(RecordError::Sys(SysError::RingOverLockLimit { .. })) = &opened {
                if let Some(smaller) = smaller_ring(pages) {
                    pages = smaller;
                    continue;
                }
            }
            let session = opened?;
            warnings.append(&mut attempt_warnings);
            if pages < data_pages {
                warnings.push(shrunk_ring_warning(&RingBudget {
                    requested: data_pages,
                    used: pages,
                    rings: session.rings.len(),
                    online_cpus: sys::online_cpus().map_or(cpus.len(), |c| c.len()),
                    page_size: sys::page_size(),
                    mlock_kb: sys::perf_event_mlock_kb(),
                }));
            }
            return Ok(session);
        }
    }

    fn open_with(
        attrs: Vec<EventAttr>,
        order: &OpenOrder<'_>,
        plan: &Plan,
        cpus: &[u32],
        data_pages: usize,
        warnings: &mut Vec<String>,
    ) -> Result<Session, RecordError> {
        let count = attrs.len() * cpus.len() * plan.event_pids.len();
        let mut events: Vec<PerfEvent> = Vec::with_capacity(count);
        let mut event_attr: Vec<usize> = Vec::with_capacity(count);
        let mut rings: Vec<(RingBuffer, usize)> = Vec::with_capacity(cpus.len());
        // Owner of the ring on each CPU, by position in `cpus`.
        let mut owner: Vec<Option<usize>> = vec![None; cpus.len()];
        let mut opened_any = false;
        let mut vanished: Vec<i32> = Vec::new();
        // The open event of each (attr, pid, CPU slot): where group members find their leader.
        let mut opened: std::collections::HashMap<(usize, i32, usize), usize> =
            std::collections::HashMap::new();
        for (index, attr) in attrs.iter().enumerate() {
            for &pid in &plan.event_pids {
                if vanished.contains(&pid) {
                    continue;
                }
                for (slot, &cpu) in cpus.iter().enumerate() {
                    let cpu = i32::try_from(cpu)
                        .map_err(|_| RecordError::Other(format!("bad CPU number {cpu}")))?;
                    let leader = match order.leader[index] {
                        Some(leader) => match opened.get(&(leader, pid, slot)) {
                            Some(&at) => Some(&events[at]),
                            // The leader's thread vanished: so has this one.
                            None => continue,
                        },
                        None => None,
                    };
                    let event = match PerfEvent::open_in_group(attr, pid, cpu, leader) {
                        Ok(event) => event,
                        Err(SysError::NoSuchProcess { .. }) if plan.skip_vanished && pid > 0 => {
                            warnings.push(format!(
                                "thread {pid} exited before it could be attached; skipped"
                            ));
                            vanished.push(pid);
                            break;
                        }
                        Err(SysError::NoSuchProcess { pid }) => {
                            return Err(RecordError::NoSuchProcess(u32::try_from(pid).unwrap_or(0)))
                        }
                        Err(e) => {
                            let name = order.names.get(index).copied().unwrap_or("event");
                            return Err(e.with_event_name(name).into());
                        }
                    };
                    if let Some(filter) = order.filters[index] {
                        event.set_filter(filter)?;
                    }
                    opened.insert((index, pid, slot), events.len());
                    match owner[slot] {
                        Some(owner) => event.set_output(&events[owner])?,
                        None => {
                            rings.push((RingBuffer::new(&event, data_pages)?, events.len()));
                            owner[slot] = Some(events.len());
                        }
                    }
                    events.push(event);
                    event_attr.push(index);
                    opened_any = true;
                }
            }
        }
        if !opened_any {
            let pid = plan.event_pids.first().copied().unwrap_or(0);
            return Err(RecordError::NoSuchProcess(u32::try_from(pid).unwrap_or(0)));
        }
        let ring_polled = vec![true; rings.len()];
        Ok(Session {
            attrs,
            events,
            event_attr,
            rings,
            ring_polled,
        })
    }

    /// Sample ids of the open events, per attr (as `attrs`), in open order.
    pub fn ids(&self) -> Result<Vec<Vec<u64>>, RecordError> {
        let mut ids = vec![Vec::new(); self.attrs.len()];
        for (event, &index) in self.events.iter().zip(&self.event_attr) {
            ids[index].push(event.id()?);
        }
        Ok(ids)
    }

    pub fn enable(&self) -> Result<(), RecordError> {
        for event in &self.events {
            event.enable()?;
        }
        Ok(())
    }

    /// Stops sampling; errors are ignored (an event of an exited task may refuse).
    pub fn disable(&self) {
        for event in &self.events {
            let _ = event.disable();
        }
    }

    /// Copies every ring's new records into `out`.
    pub fn drain(&mut self, out: &mut Vec<u8>) -> DrainStats {
        let mut stats = DrainStats::default();
        for (ring, _) in &mut self.rings {
            stats += ring.drain(out);
        }
        stats
    }

    /// Polls rings, watched pids and the stop pipe, draining into `out`
    /// until the target exits, `deadline` passes or a stop signal arrives.
    /// After each drain `out` may switch files (`--rotate`).
    pub fn record_loop(
        &mut self,
        out: &mut dyn RecordSink,
        watch: &mut Watch,
        stop: &mut StopSignals,
        deadline: Option<Instant>,
    ) -> Result<DrainStats, RecordError> {
        let round_marker = encode::finished_round();
        let mut buf = Vec::with_capacity(1 << 20);
        let mut total = DrainStats::default();
        let mut last_flush = Instant::now();
        loop {
            let now = Instant::now();
            let wake = match (deadline, out.wake_at()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = wake.map_or(TICK, |d| d.saturating_duration_since(now).min(TICK));
            self.wait(watch, stop, timeout)?;

            let drained = self.drain(&mut buf);
            total += drained;
            if !buf.is_empty() {
                buf.extend_from_slice(&round_marker);
                out.write_raw(&buf)?;
                buf.clear();
            }
            out.drained(drained);
            if stop.requested() || watch.done() || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            out.between_drains(stop.take_switch())?;
            if last_flush.elapsed() >= FLUSH_EVERY {
                out.flush()?;
                last_flush = Instant::now();
            }
        }
        self.disable();
        let drained = self.drain(&mut buf);
        total += drained;
        if !buf.is_empty() {
            buf.extend_from_slice(&round_marker);
            out.write_raw(&buf)?;
        }
        out.drained(drained);
        Ok(total)
    }

    /// One poll() over the live ring fds, the watched pidfds and the stop pipe.
    fn wait(
        &mut self,
        watch: &mut Watch,
        stop: &mut StopSignals,
        timeout: Duration,
    ) -> Result<(), RecordError> {
        let ring_idx: Vec<usize> = (0..self.rings.len())
            .filter(|&i| self.ring_polled[i])
            .collect();
        let watched = watch.live_fds();
        let watched_ids: Vec<WatchId> = watched.iter().map(|(id, _)| *id).collect();
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(ring_idx.len() + watched.len() + 1);
        for &i in &ring_idx {
            fds.push(PollFd::new(
                self.events[self.rings[i].1].as_fd(),
                PollFlags::POLLIN,
            ));
        }
        for (_, fd) in &watched {
            fds.push(PollFd::new(*fd, PollFlags::POLLIN));
        }
        fds.push(PollFd::new(stop.pipe.as_fd(), PollFlags::POLLIN));
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(RecordError::Sys(SysError::Syscall {
                    call: "poll",
                    source: e.into(),
                }))
            }
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        drop(watched);
        let hangup = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        for (k, &i) in ring_idx.iter().enumerate() {
            if revents[k].intersects(hangup) {
                self.ring_polled[i] = false;
            }
        }
        for (k, id) in watched_ids.iter().enumerate() {
            if !revents[ring_idx.len() + k].is_empty() {
                watch.mark_exited(*id);
            }
        }
        if revents.last().is_some_and(|r| !r.is_empty()) {
            stop.clear_pipe();
        }
        Ok(())
    }
}

/// Where the record loop puts drained records: one file (any
/// [`DataSink`]), or one file per interval ([`super::rotate::Rotator`]).
pub(crate) trait RecordSink {
    /// Appends whole records (one drain, ending with a round marker).
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), RecordError>;
    /// Writes out buffered records (about every 100 ms).
    fn flush(&mut self) -> Result<(), RecordError>;
    /// Counts what a drain just written held.
    fn drained(&mut self, _stats: DrainStats) {}
    /// Between two drains while recording goes on; `switch`: SIGHUP asked
    /// for a new file. A rotating sink switches files here.
    fn between_drains(&mut self, _switch: bool) -> Result<(), RecordError> {
        Ok(())
    }
    /// When the loop must wake up for the sink (an interval's end).
    fn wake_at(&self) -> Option<Instant> {
        None
    }
}

impl RecordSink for Box<dyn DataSink> {
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        Ok(DataSink::write_raw(&mut **self, bytes)?)
    }

    fn flush(&mut self) -> Result<(), RecordError> {
        Ok(DataSink::flush(&mut **self)?)
    }
}

/// What opening needs of each event besides its attr, by event index.
struct OpenOrder<'a> {
    names: Vec<&'a str>,
    /// The index of a group member's leader.
    leader: Vec<Option<usize>>,
    /// Tracepoint filters.
    filters: Vec<Option<&'a str>>,
}

impl<'a> OpenOrder<'a> {
    fn of(events: &'a [EventSpec]) -> OpenOrder<'a> {
        let mut leader = Vec::with_capacity(events.len());
        let mut current = 0;
        for (index, event) in events.iter().enumerate() {
            if event.group_member && index > 0 {
                leader.push(Some(current));
            } else {
                current = index;
                leader.push(None);
            }
        }
        OpenOrder {
            names: events.iter().map(|e| e.name.as_str()).collect(),
            leader,
            filters: events.iter().map(|e| e.filter.as_deref()).collect(),
        }
    }
}

/// The ring size to try after the locked-memory limit refused `pages`:
/// half, while that stays at or above [`MIN_SHRUNK_PAGES`].
fn smaller_ring(pages: usize) -> Option<usize> {
    (pages / 2 >= MIN_SHRUNK_PAGES).then_some(pages / 2)
}

/// What the kernel's locked-memory check counts for perf rings.
struct RingBudget {
    /// Data pages per ring asked for (`-m`) and used.
    requested: usize,
    used: usize,
    rings: usize,
    online_cpus: usize,
    page_size: usize,
    /// `kernel.perf_event_mlock_kb` (per CPU), when readable.
    mlock_kb: Option<u64>,
}

impl RingBudget {
    /// Locked KiB the requested rings take (each has one header page more).
    fn requested_kib(&self) -> u64 {
        (self.rings * (self.requested + 1) * self.page_size / 1024) as u64
    }

    /// The `perf_event_mlock_kb` that fits the requested rings: the kernel
    /// allows it once per online CPU.
    fn mlock_kb_needed(&self) -> u64 {
        self.requested_kib()
            .div_ceil(self.online_cpus.max(1) as u64)
    }
}

fn shrunk_ring_warning(budget: &RingBudget) -> String {
    let kib = |pages: usize| pages * budget.page_size / 1024;
    let current = budget
        .mlock_kb
        .map_or_else(String::new, |kb| format!(" (now {kb})"));
    format!(
        "ring buffers shrunk from {} to {} pages ({} KiB) per CPU to fit the locked-memory \
         limit for perf rings; samples may be lost at high rates. To use -m {} run as root, or \
         raise the limit: `sudo sysctl kernel.perf_event_mlock_kb={}`{current} or \
         `ulimit -l {}` (KiB)",
        budget.requested,
        budget.used,
        kib(budget.used),
        budget.requested,
        budget.mlock_kb_needed(),
        budget.requested_kib(),
    )
}

/// SIGINT/SIGTERM/SIGHUP handling for the recording: the first signal ends
/// the loop (the file is finished normally); once
/// [`StopSignals::exit_on_next`] was called, a further signal exits at once.
/// With rotation, SIGHUP instead asks for a new file (logrotate style) and
/// never exits. Handlers are removed on drop.
pub(crate) struct StopSignals {
    /// Set by SIGINT/SIGTERM (and SIGHUP without rotation): stop recording.
    flag: Arc<AtomicBool>,
    /// Set by SIGHUP with rotation: finish this file, start the next.
    switch: Arc<AtomicBool>,
    /// Set by `exit_on_next`: a signal now exits the process.
    armed: Arc<AtomicBool>,
    pipe: UnixStream,
    ids: Vec<signal_hook::SigId>,
}

impl StopSignals {
    /// `rotating`: SIGHUP switches files instead of stopping.
    pub fn install(rotating: bool) -> Result<StopSignals, RecordError> {
        let io_err =
            |e: std::io::Error| RecordError::Other(format!("installing signal handlers: {e}"));
        let (read, write) = UnixStream::pair().map_err(io_err)?;
        read.set_nonblocking(true).map_err(io_err)?;
        let mut stop = StopSignals {
            flag: Arc::new(AtomicBool::new(false)),
            switch: Arc::new(AtomicBool::new(false)),
            armed: Arc::new(AtomicBool::new(false)),
            pipe: read,
            ids: Vec::new(),
        };
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        // SIGHUP without rotation: the terminal went away; finish the file
        // as for SIGTERM.
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let switches = rotating && signal == SIGHUP;
            if !switches {
                stop.ids.push(
                    signal_hook::flag::register_conditional_shutdown(
                        signal,
                        128 + signal,
                        Arc::clone(&stop.armed),
                    )
                    .map_err(io_err)?,
                );
            }
            let flag = if switches { &stop.switch } else { &stop.flag };
            stop.ids
                .push(signal_hook::flag::register(signal, Arc::clone(flag)).map_err(io_err)?);
            let wake = write.try_clone().map_err(io_err)?;
            stop.ids
                .push(signal_hook::low_level::pipe::register(signal, wake).map_err(io_err)?);
        }
        Ok(stop)
    }

    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Whether SIGHUP asked for a new file since the last call.
    pub fn take_switch(&self) -> bool {
        self.switch.swap(false, Ordering::Relaxed)
    }

    /// Once the data is flushed and the command reaped: a signal now (e.g.
    /// during symbolization) exits at once; the file stays readable. Until
    /// then every signal only asks the loop to stop.
    pub fn exit_on_next(&self) {
        self.armed.store(true, Ordering::Relaxed);
    }

    fn clear_pipe(&mut self) {
        let mut sink = [0u8; 64];
        while matches!(self.pipe.read(&mut sink), Ok(n) if n > 0) {}
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CallGraph, EventSpec, Sampling};
    use crate::record::target::{Plan, Synth};

    fn plan(inherit: bool, enable_on_exec: bool) -> Plan {
        Plan {
            event_pids: vec![0],
            inherit,
            enable_on_exec,
            skip_vanished: false,
            synth: Synth::Nothing,
            child: None,
            child_is_target: false,
            watch: Watch::default(),
        }
    }

    #[test]
    fn attr_for_launch_has_inherit_enable_on_exec_and_watermark() {
        let base = EventSpec::cpu_clock(Sampling::Frequency(999), CallGraph::None).to_attr();
        let attr = session_attr(&base, &plan(true, true), 512 * 1024);
        assert!(attr.has_flag(flag::DISABLED));
        assert!(attr.has_flag(flag::INHERIT));
        assert!(attr.has_flag(flag::ENABLE_ON_EXEC));
        assert!(attr.has_flag(flag::WATERMARK));
        assert_eq!(attr.wakeup_events_or_watermark, 128 * 1024);
        assert_eq!(attr.sample_type, base.sample_type);
        let attr = session_attr(&base, &plan(false, false), 4096);
        assert!(!attr.has_flag(flag::INHERIT) && !attr.has_flag(flag::ENABLE_ON_EXEC));
        assert!(attr.has_flag(flag::DISABLED));
    }

    #[test]
    fn session_on_this_thread_samples_into_per_cpu_rings() {
        let cpu_clock = EventSpec::cpu_clock(Sampling::Frequency(2000), CallGraph::FramePointer);
        let task_clock = EventSpec {
            name: "task-clock".into(),
            config: crate::abi::software::TASK_CLOCK,
            ..cpu_clock.clone()
        };
        let cpus = sys::online_cpus().unwrap();
        let mut warnings = Vec::new();
        let session = Session::open(
            &[cpu_clock, task_clock],
            &plan(false, false),
            &cpus,
            8,
            &mut warnings,
        );
        let mut session = match session {
            Ok(s) => s,
            Err(RecordError::Sys(e))
                if e.is_permission_denied() && std::env::var_os("RPROF_REQUIRE_PERF").is_none() =>
            {
                eprintln!("skipping: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        // Both events on every CPU, writing into one ring per CPU.
        assert_eq!(session.rings.len(), cpus.len());
        let ids = session.ids().unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ids.iter().all(|ids| ids.len() == cpus.len()), "{ids:?}");
        session.enable().unwrap();
        let start = Instant::now();
        let mut x = 1u64;
        while start.elapsed() < Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_mul(3).wrapping_add(7));
        }
        session.disable();
        let mut out = Vec::new();
        let stats = session.drain(&mut out);
        assert!(stats.samples > 0, "{stats:?}");
        assert_eq!(out.len() as u64, stats.bytes);
    }

    #[test]
    fn rings_refused_by_the_lock_limit_halve_down_to_the_minimum() {
        assert_eq!(smaller_ring(256), Some(128));
        assert_eq!(smaller_ring(16), Some(8));
        assert_eq!(smaller_ring(8), None);
        // A request already below the minimum is not shrunk at all.
        assert_eq!(smaller_ring(4), None);
        let mut pages = 1 << 20;
        let mut steps = 0;
        while let Some(p) = smaller_ring(pages) {
            pages = p;
            steps += 1;
        }
        assert_eq!((pages, steps), (MIN_SHRUNK_PAGES, 17));
    }

    #[test]
    fn shrunk_ring_warning_says_how_to_keep_the_requested_size() {
        let budget = RingBudget {
            requested: 256,
            used: 128,
            rings: 2,
            online_cpus: 2,
            page_size: 4096,
            mlock_kb: Some(516),
        };
        // Each ring locks its data pages and one header page.
        assert_eq!(budget.requested_kib(), 2 * 257 * 4);
        assert_eq!(budget.mlock_kb_needed(), 257 * 4);
        let text = shrunk_ring_warning(&budget);
        assert!(
            text.contains("from 256 to 128 pages (512 KiB) per CPU"),
            "{text}"
        );
        assert!(
            text.contains("kernel.perf_event_mlock_kb=1028` (now 516) or `ulimit -l 2056`"),
            "{text}"
        );
        assert!(text.contains("`ulimit -l 2056`"), "{text}");
        // Fewer rings than online CPUs (-C): the per-CPU allowance is shared.
        let budget = RingBudget {
            rings: 1,
            online_cpus: 4,
            mlock_kb: None,
            ..budget
        };
        assert_eq!(budget.mlock_kb_needed(), 257);
        assert!(!shrunk_ring_warning(&budget).contains("now"));
    }

    #[test]
    fn stop_signal_sets_flag_and_wakes_the_pipe() {
        let mut stop = StopSignals::install(false).unwrap();
        assert!(!stop.requested());
        // SIGTERM to ourselves: handled, not fatal, while installed.
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        assert!(stop.requested());
        let mut byte = [0u8; 1];
        assert!(matches!(stop.pipe.read(&mut byte), Ok(n) if n > 0));
        stop.clear_pipe();
        // Do not raise again: the next one would exit the test process.
        stop.flag.store(false, Ordering::Relaxed);
    }
}
