//! `rprof stat`: count events (no sampling) over a launched command, attached
//! processes or threads, or whole CPUs, and print them the way `perf stat`
//! does.
//!
//! ```text
//! names     -e lists -> counter groups, through the shared event parser
//! counter   Counter / CounterGroup -> perf_event_attr (pure)
//! session   open groups per thread or CPU, read them (read_format GROUP), scale
//! here      runs (-r), intervals (-I), rows with means and noise
//! print     text, CSV (-x) and JSON (-j) as perf writes them (pure)
//! ```

pub mod counter;
pub mod names;
pub mod print;
pub mod session;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

pub use counter::{Counter, CounterGroup};
pub use names::{parse_counters, DEFAULT_EVENTS};
pub use print::OutputFormat;

use crate::record::target::{self, Plan};
use crate::record::{RecordError, Target};
use crate::sys::{self, ChildStdout, ChildUsage, SysError};
use counter::OpenMode;
use print::{Elapsed, Row, RowStatus, TableContext};
use session::{OpenCounters, Readings, Slot};

#[derive(Debug, thiserror::Error)]
pub enum StatError {
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error(transparent)]
    Target(#[from] RecordError),
    #[error("cannot run {program}: {reason}")]
    Exec { program: String, reason: String },
    #[error("writing the counts: {0}")]
    Output(#[from] std::io::Error),
}

/// A validated `rprof stat` invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct StatConfig {
    pub groups: Vec<CounterGroup>,
    pub target: Target,
    /// `-C`: only these CPUs (system-wide unless a process is given).
    pub cpus: Option<Vec<u32>>,
    /// `-C` as typed, for the table's title.
    pub cpu_text: Option<String>,
    /// `-r`: how many runs (at least 1).
    pub repeat: u32,
    /// `-I`: print counts every this often instead of one final table.
    pub interval: Option<Duration>,
    /// `-A`: one row per CPU instead of their sum.
    pub per_cpu: bool,
    pub format: OutputFormat,
}

/// How the counting ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatOutcome {
    /// The launched command's exit status (128+N for signal N).
    pub exit_code: Option<i32>,
}

/// Counts of one run.
#[derive(Debug)]
struct RunCounts {
    readings: Readings,
    elapsed: Duration,
    usage: Option<ChildUsage>,
    exit_code: Option<i32>,
}

/// Longest sleep between checks of the stop flag.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// How long a launched command has to exit by itself after a stop signal
/// (Ctrl-C reaches it too) before it gets SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Runs the counting `config.repeat` times and writes the table (or the
/// interval lines) to `out`.
pub fn run(config: &StatConfig, out: &mut dyn Write) -> Result<StatOutcome, StatError> {
    let stop = StopFlag::install()?;
    let mut runs = Vec::new();
    let mut opened = Vec::new();
    for _ in 0..config.repeat.max(1) {
        let (counts, counters) = run_once(config, &stop, out)?;
        runs.push(counts);
        opened = counters;
        if stop.requested() {
            break;
        }
    }
    let exit_code = runs.last().and_then(|r| r.exit_code);
    if config.interval.is_none() {
        let rows = rows(&opened, &runs, config.per_cpu);
        let context = TableContext {
            target: describe_target(config),
            runs: runs.len() as u32,
            elapsed: elapsed_stats(&runs),
            usage: if runs.len() == 1 { runs[0].usage } else { None },
        };
        out.write_all(print::render_table(&config.format, &rows, &context).as_bytes())?;
    }
    out.flush()?;
    Ok(StatOutcome { exit_code })
}

fn run_once(
    config: &StatConfig,
    stop: &StopFlag,
    out: &mut dyn Write,
) -> Result<(RunCounts, Vec<session::OpenedCounter>), StatError> {
    let mut plan = target::prepare(&config.target, ChildStdout::Inherit)?;
    let slots = slots(config, &plan)?;
    let mode = OpenMode {
        inherit: plan.inherit,
        enable_on_exec: plan.enable_on_exec,
    };
    let counters = OpenCounters::open(&config.groups, &slots, mode, plan.skip_vanished)?;
    if !plan.enable_on_exec {
        counters.enable()?;
    }
    let start = Instant::now();
    if let Some(child) = plan.child.as_mut() {
        child.release().map_err(|failure| StatError::Exec {
            program: program_name(&config.target),
            reason: failure.reason,
        })?;
    }
    let mut intervals = config
        .interval
        .map(|every| IntervalPrinter::new(every, start, config));
    if intervals.is_some() && config.format == OutputFormat::Text {
        out.write_all(print::interval_header(config.per_cpu).as_bytes())?;
    }
    wait_for_end(&mut plan, stop, |now| match intervals.as_mut() {
        Some(printer) => {
            if now >= printer.next {
                printer.tick(&counters, now, out)?;
            }
            Ok(Some(printer.next))
        }
        None => Ok(None),
    })?;
    let elapsed = start.elapsed();
    let (exit_code, usage) = match plan.child.as_mut() {
        Some(child) => {
            let (code, usage) = child.wait_with_usage();
            (Some(code), usage.filter(|_| plan.child_is_target))
        }
        None => (None, None),
    };
    if !plan.enable_on_exec {
        counters.disable()?;
    }
    if let Some(printer) = intervals.as_mut() {
        printer.tick(&counters, Instant::now(), out)?;
    }
    let readings = counters.read(config.per_cpu)?;
    Ok((
        RunCounts {
            readings,
            elapsed,
            usage,
            exit_code,
        },
        counters.counters.clone(),
    ))
}

/// The (pid, cpu) pairs events are opened on.
fn slots(config: &StatConfig, plan: &Plan) -> Result<Vec<Slot>, StatError> {
    let system_wide = matches!(config.target, Target::SystemWide { .. });
    let cpus: Vec<Option<u32>> = match &config.cpus {
        Some(cpus) => cpus.iter().map(|&c| Some(c)).collect(),
        None if system_wide => sys::online_cpus()?.into_iter().map(Some).collect(),
        None => vec![None],
    };
    Ok(plan
        .event_pids
        .iter()
        .flat_map(|&pid| cpus.iter().map(move |&cpu| Slot { pid, cpu }))
        .collect())
}

/// Waits until the command or the attached targets end, or a stop signal
/// arrives, calling `tick` with the time after every wake-up; `tick`
/// returns when it wants to be called next (the next `-I` interval).
fn wait_for_end(
    plan: &mut Plan,
    stop: &StopFlag,
    mut tick: impl FnMut(Instant) -> Result<Option<Instant>, StatError>,
) -> Result<(), StatError> {
    let mut stop_seen: Option<Instant> = None;
    let mut next_tick = tick(Instant::now())?;
    loop {
        if plan.watch.done() {
            return Ok(());
        }
        if stop.requested() {
            let since = *stop_seen.get_or_insert_with(Instant::now);
            match plan.child.as_mut() {
                // Ctrl-C reached the command too: give it time to exit.
                Some(child) if plan.child_is_target && since.elapsed() < STOP_GRACE => {
                    if child.try_wait().is_some() {
                        return Ok(());
                    }
                }
                Some(child) => {
                    child.terminate(STOP_GRACE);
                    return Ok(());
                }
                None => return Ok(()),
            }
        }
        let ready = {
            let watched = plan.watch.live_fds();
            let mut fds: Vec<PollFd> = watched
                .iter()
                .map(|(_, fd)| PollFd::new(*fd, PollFlags::POLLIN))
                .collect();
            let slice = next_tick.map_or(POLL_SLICE, |at| {
                at.saturating_duration_since(Instant::now()).min(POLL_SLICE)
            });
            // Whole milliseconds, rounded up: never a busy loop before a tick.
            let millis = u64::try_from(slice.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
            let timeout =
                PollTimeout::try_from(Duration::from_millis(millis)).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    return Err(SysError::Syscall {
                        call: "poll",
                        source: e.into(),
                    }
                    .into())
                }
            }
            watched
                .iter()
                .zip(&fds)
                .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|((id, _), _)| *id)
                .collect::<Vec<_>>()
        };
        for id in ready {
            plan.watch.mark_exited(id);
        }
        next_tick = tick(Instant::now())?;
    }
}

/// `-I`: prints what accrued since the previous interval.
struct IntervalPrinter {
    every: Duration,
    start: Instant,
    next: Instant,
    last_time: Instant,
    last: Readings,
    format: OutputFormat,
    per_cpu: bool,
}

impl IntervalPrinter {
    fn new(every: Duration, start: Instant, config: &StatConfig) -> IntervalPrinter {
        IntervalPrinter {
            every,
            start,
            next: start + every,
            last_time: start,
            last: Readings::new(),
            format: config.format.clone(),
            per_cpu: config.per_cpu,
        }
    }

    fn tick(
        &mut self,
        counters: &OpenCounters,
        now: Instant,
        out: &mut dyn Write,
    ) -> Result<(), StatError> {
        let readings = counters.read(self.per_cpu)?;
        let delta: Readings = readings
            .iter()
            .map(|(key, reading)| {
                let before = self.last.get(key).copied().unwrap_or_default();
                (*key, reading.since(&before))
            })
            .collect();
        let counts = RunCounts {
            readings: delta,
            elapsed: now - self.last_time,
            usage: None,
            exit_code: None,
        };
        let rows = rows(
            &counters.counters,
            std::slice::from_ref(&counts),
            self.per_cpu,
        );
        let since_start = u64::try_from((now - self.start).as_nanos()).unwrap_or(u64::MAX);
        let span = u64::try_from(counts.elapsed.as_nanos()).unwrap_or(u64::MAX);
        out.write_all(print::render_interval(&self.format, &rows, since_start, span).as_bytes())?;
        out.flush()?;
        self.last = readings;
        self.last_time = now;
        while self.next <= now {
            self.next += self.every;
        }
        Ok(())
    }
}

/// Table rows: one per counter (and CPU with -A), with the mean over runs
/// and, for several runs, the standard error of that mean in percent.
fn rows(counters: &[session::OpenedCounter], runs: &[RunCounts], per_cpu: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    for (index, opened) in counters.iter().enumerate() {
        let counter = &opened.counter;
        let mut cpus: Vec<Option<u32>> = runs
            .iter()
            .flat_map(|r| r.readings.keys())
            .filter(|(i, _)| *i == index)
            .map(|(_, cpu)| *cpu)
            .collect();
        cpus.sort_unstable();
        cpus.dedup();
        if cpus.is_empty() {
            cpus.push(None);
        }
        for cpu in cpus {
            let readings: Vec<_> = runs
                .iter()
                .filter_map(|r| r.readings.get(&(index, cpu)))
                .collect();
            let values: Vec<f64> = readings.iter().filter_map(|r| r.scaled()).collect();
            let status = if !opened.supported {
                RowStatus::NotSupported
            } else if values.is_empty() {
                RowStatus::NotCounted
            } else {
                RowStatus::Counted
            };
            let (mean, stderr) = mean_and_stderr(&values);
            let n = readings.len().max(1) as f64;
            rows.push(Row {
                cpu: cpu.filter(|_| per_cpu),
                name: counter.name.clone(),
                unit: counter.unit(),
                role: counter.role(),
                status,
                value: mean,
                runtime: (readings.iter().map(|r| r.running as f64).sum::<f64>() / n) as u64,
                running_pct: if readings.is_empty() {
                    100.0
                } else {
                    readings.iter().map(|r| r.running_pct()).sum::<f64>() / n
                },
                noise_pct: (runs.len() > 1).then(|| relative(stderr, mean)),
            });
        }
    }
    rows
}

/// The mean and its standard error (sample standard deviation / sqrt(n)),
/// as perf's `-r` computes them.
pub fn mean_and_stderr(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (variance / n).sqrt())
}

fn relative(stderr: f64, mean: f64) -> f64 {
    if mean == 0.0 {
        0.0
    } else {
        100.0 * stderr / mean
    }
}

fn elapsed_stats(runs: &[RunCounts]) -> Elapsed {
    let ns: Vec<f64> = runs.iter().map(|r| r.elapsed.as_nanos() as f64).collect();
    let (mean_ns, stderr_ns) = mean_and_stderr(&ns);
    Elapsed { mean_ns, stderr_ns }
}

fn program_name(target: &Target) -> String {
    let argv = match target {
        Target::Launch { argv } => Some(argv),
        Target::Pids { argv, .. } | Target::Tids { argv, .. } | Target::SystemWide { argv } => {
            argv.as_ref()
        }
    };
    argv.and_then(|a| a.first())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What perf's title says was counted.
fn describe_target(config: &StatConfig) -> String {
    let join = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    match &config.target {
        Target::Launch { argv } => format!(
            "'{}'",
            argv.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Target::Pids { pids, .. } => format!("process id '{}'", join(pids)),
        Target::Tids { tids, .. } => format!("thread id '{}'", join(tids)),
        Target::SystemWide { .. } => match &config.cpu_text {
            Some(cpus) => format!("'CPU(s) {cpus}'"),
            None => "'system wide'".to_string(),
        },
    }
}

/// SIGINT/SIGTERM/SIGHUP end the counting (the table is still printed);
/// the handlers go away on drop. A command rprof launches gets the default
/// handlers back at its exec.
struct StopFlag {
    flag: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl StopFlag {
    fn install() -> Result<StopFlag, StatError> {
        let flag = Arc::new(AtomicBool::new(false));
        let mut ids = Vec::new();
        for signal in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            ids.push(signal_hook::flag::register(signal, Arc::clone(&flag))?);
        }
        Ok(StopFlag { flag, ids })
    }

    fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

impl Drop for StopFlag {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_the_standard_error_of_the_mean() {
        let (mean, stderr) = mean_and_stderr(&[10.0, 12.0, 14.0]);
        assert_eq!(mean, 12.0);
        // Sample sd 2, over sqrt(3).
        assert!((stderr - 2.0 / 3f64.sqrt()).abs() < 1e-12);
        assert!((relative(stderr, mean) - 9.6225).abs() < 1e-3);
        assert_eq!(mean_and_stderr(&[5.0]), (5.0, 0.0));
        assert_eq!(mean_and_stderr(&[]), (0.0, 0.0));
        assert_eq!(relative(1.0, 0.0), 0.0);
    }

    #[test]
    fn rows_average_runs_and_mark_what_was_not_counted() {
        use session::{OpenedCounter, Reading};
        let opened = vec![
            OpenedCounter {
                counter: Counter::new("page-faults", 1, 2),
                supported: true,
            },
            OpenedCounter {
                counter: Counter::new("cycles", 0, 0),
                supported: false,
            },
            OpenedCounter {
                counter: Counter::new("context-switches", 1, 3),
                supported: true,
            },
        ];
        let run = |faults: u64| RunCounts {
            readings: [
                (
                    (0, None),
                    Reading {
                        value: faults,
                        enabled: 10,
                        running: 10,
                    },
                ),
                ((2, None), Reading::default()),
            ]
            .into_iter()
            .collect(),
            elapsed: Duration::from_millis(1),
            usage: None,
            exit_code: Some(0),
        };
        let rows = rows(&opened, &[run(100), run(110)], false);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].value, 105.0);
        assert!((rows[0].noise_pct.unwrap() - 100.0 * 5.0 / 105.0).abs() < 1e-9);
        assert_eq!(rows[1].status, RowStatus::NotSupported);
        assert_eq!(rows[2].status, RowStatus::NotCounted);
    }
}
