//! `rprof record --rotate ... --push URL`: each finished interval file is
//! turned into pprof and handed to the [`Pusher`], off the recording thread.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::push::{IntervalProfile, PushConfig, PushError, PushStats, Pusher};
use crate::record::{FinishedInterval, IntervalSink};

/// How long the last pushes may take once the recording stopped; what is
/// still unsent stays in the spool for the next start.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What one interval conversion could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    path: PathBuf,
    reason: String,
}

/// Converts and submits intervals on a worker thread: reading a file back,
/// naming its stacks and gzipping the pprof takes tens of milliseconds that
/// the recording thread, which drains the rings, should not wait for.
pub struct PushSink {
    url: String,
    spool_dir: PathBuf,
    queue: Option<Sender<FinishedInterval>>,
    worker: Option<JoinHandle<(Pusher, Vec<Failure>)>>,
}

/// What pushing came to, for the summary after the recording.
#[derive(Debug)]
pub struct PushReport {
    pub url: String,
    pub spool_dir: PathBuf,
    pub stats: PushStats,
    /// Intervals that could not be turned into a profile (first few).
    pub failures: Vec<String>,
    pub failed: usize,
}

impl PushSink {
    /// Starts the pusher (which first sends what an earlier run spooled)
    /// and the conversion worker. `sample_rate_hz` is Pyroscope's
    /// `sampleRate` (the -F frequency).
    pub fn start(config: PushConfig, sample_rate_hz: u64) -> Result<PushSink, PushError> {
        let url = config.url.clone();
        let spool_dir = config.spool_dir.clone();
        let pusher = Pusher::start(config)?;
        let (queue, intervals) = mpsc::channel();
        let worker_url = url.clone();
        let worker = std::thread::Builder::new()
            .name("rprof-push".into())
            .spawn(move || convert_and_submit(pusher, intervals, sample_rate_hz, &worker_url))
            .map_err(|source| PushError::Spool {
                dir: spool_dir.clone(),
                what: "cannot start the push thread".into(),
                source,
            })?;
        Ok(PushSink {
            url,
            spool_dir,
            queue: Some(queue),
            worker: Some(worker),
        })
    }

    /// Converts what is queued, then gives the pusher [`SHUTDOWN_GRACE`]
    /// to deliver what is spooled.
    pub fn finish(mut self) -> PushReport {
        drop(self.queue.take());
        let (pusher, failures) = match self.worker.take().map(JoinHandle::join) {
            Some(Ok(done)) => done,
            // The worker panicked: its pusher is gone, the spool is kept.
            _ => {
                return PushReport {
                    url: self.url.clone(),
                    spool_dir: self.spool_dir.clone(),
                    stats: PushStats {
                        last_error: Some("the push thread stopped unexpectedly".into()),
                        ..PushStats::default()
                    },
                    failures: Vec::new(),
                    failed: 0,
                }
            }
        };
        let failed = failures.len();
        let failures = failures
            .into_iter()
            .take(3)
            .map(|f| format!("{}: {}", f.path.display(), f.reason))
            .collect();
        PushReport {
            url: self.url.clone(),
            spool_dir: self.spool_dir.clone(),
            stats: pusher.shutdown(SHUTDOWN_GRACE),
            failures,
            failed,
        }
    }
}

impl PushReport {
    /// The line printed after the recording's summary.
    pub fn summary(&self) -> String {
        summary_line(&self.url, &self.spool_dir, self)
    }
}

impl IntervalSink for PushSink {
    fn finished(&mut self, interval: &FinishedInterval) {
        if let Some(queue) = &self.queue {
            // A worker that is gone has reported why; the file stays on disk.
            let _ = queue.send(interval.clone());
        }
    }
}

fn convert_and_submit(
    pusher: Pusher,
    intervals: Receiver<FinishedInterval>,
    sample_rate_hz: u64,
    url: &str,
) -> (Pusher, Vec<Failure>) {
    let mut failures = Vec::new();
    let mut health = PushHealth::default();
    for interval in intervals {
        let converted = super::report::pprof_of_recording(&interval.path, interval.start);
        let result = converted
            .map_err(|e| format!("{e:#}"))
            .and_then(|pprof_gz| {
                pusher
                    .submit(IntervalProfile {
                        pprof_gz,
                        from: interval.start,
                        until: interval.end,
                        sample_rate_hz,
                    })
                    .map_err(|e| e.to_string())
            });
        // The profile's model is gone; keep the worker's arena small.
        crate::sys::release_free_memory();
        if let Err(reason) = result {
            failures.push(Failure {
                path: interval.path.clone(),
                reason,
            });
        }
        for line in health.check(url, &pusher.stats()) {
            eprintln!("{line}");
        }
    }
    (pusher, failures)
}

/// Warnings while the recording runs, so that a service's log shows a
/// failing server, refused profiles or a full spool when it happens, not
/// only in the summary at exit. Checked once per interval.
#[derive(Debug, Default)]
struct PushHealth {
    seen: PushStats,
    failing: bool,
}

impl PushHealth {
    /// The lines that `now` calls for, given what was seen at the last check.
    fn check(&mut self, url: &str, now: &PushStats) -> Vec<String> {
        let mut lines = Vec::new();
        let last_error = now.last_error.as_deref().unwrap_or("none");
        // Connection errors name the URL already.
        let last_error = last_error
            .strip_prefix(url)
            .map_or(last_error, |rest| rest.trim_start_matches(": "));
        if now.dropped > self.seen.dropped {
            lines.push(format!(
                "rprof: warning: the push spool is full: dropped {} unsent profiles, oldest \
                 first ({} since the start); raise --spool-max to keep more while {url} \
                 cannot take them (last error: {last_error})",
                now.dropped - self.seen.dropped,
                now.dropped
            ));
        }
        if now.rejected > self.seen.rejected {
            lines.push(format!(
                "rprof: warning: {url} refused {} profiles for good: {last_error}",
                now.rejected - self.seen.rejected
            ));
        }
        let failed_since = now.retries > self.seen.retries;
        if failed_since && !self.failing {
            self.failing = true;
            lines.push(format!(
                "rprof: warning: cannot push to {url}: {last_error}; profiles wait in the \
                 spool ({} now) and are retried",
                now.spooled_now
            ));
        } else if self.failing && !failed_since && now.sent > self.seen.sent {
            self.failing = false;
            lines.push(format!(
                "rprof: pushing to {url} again ({} waiting)",
                now.spooled_now
            ));
        }
        self.seen = now.clone();
        lines
    }
}

fn summary_line(url: &str, spool_dir: &std::path::Path, report: &PushReport) -> String {
    let stats = &report.stats;
    let mut line = format!("rprof: pushed {} profiles to {url}", stats.sent);
    if stats.spooled_now > 0 {
        line.push_str(&format!(
            "; {} waiting in {} (sent when rprof next starts with this spool)",
            stats.spooled_now,
            spool_dir.display()
        ));
    }
    if stats.dropped > 0 {
        line.push_str(&format!(
            "; {} dropped unsent ({} bytes) because the spool was full (raise --spool-max)",
            stats.dropped, stats.dropped_bytes
        ));
    }
    if stats.rejected > 0 {
        line.push_str(&format!("; {} refused by the server", stats.rejected));
    }
    if report.failed > 0 {
        line.push_str(&format!(
            "; {} intervals could not be converted ({})",
            report.failed,
            report.failures.join("; ")
        ));
    }
    if let Some(error) = &stats.last_error {
        if stats.spooled_now > 0 || stats.rejected > 0 || stats.retries > 0 {
            line.push_str(&format!("; last error: {error}"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_warns_once_per_change_while_recording() {
        let mut health = PushHealth::default();
        let stats = |sent, retries, dropped, rejected, spooled_now| PushStats {
            sent,
            retries,
            dropped,
            rejected,
            spooled_now,
            last_error: Some("HTTP 503".into()),
            ..PushStats::default()
        };
        let url = "http://p:4040";
        assert!(health.check(url, &stats(1, 0, 0, 0, 0)).is_empty());
        let lines = health.check(url, &stats(1, 2, 0, 0, 2));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("cannot push to http://p:4040: HTTP 503")
                && lines[0].contains("(2 now)"),
            "{lines:?}"
        );
        // Still failing: nothing new to say.
        assert!(health.check(url, &stats(1, 5, 0, 0, 3)).is_empty());
        let refused = PushStats {
            retries: 10,
            last_error: Some("http://p:4040: Connection Failed: refused".into()),
            ..stats(1, 9, 0, 0, 3)
        };
        let mut fresh = PushHealth::default();
        assert_eq!(
            fresh.check(url, &refused)[0],
            "rprof: warning: cannot push to http://p:4040: Connection Failed: refused; \
             profiles wait in the spool (3 now) and are retried"
        );
        let lines = health.check(url, &stats(1, 9, 2, 0, 3));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("dropped 2 unsent profiles") && lines[0].contains("--spool-max"),
            "{lines:?}"
        );
        let lines = health.check(url, &stats(4, 9, 2, 0, 0));
        assert_eq!(lines, ["rprof: pushing to http://p:4040 again (0 waiting)"]);
        let lines = health.check(url, &stats(4, 9, 2, 1, 0));
        assert_eq!(
            lines,
            ["rprof: warning: http://p:4040 refused 1 profiles for good: HTTP 503"]
        );
        assert!(health.check(url, &stats(5, 9, 2, 1, 0)).is_empty());
    }

    #[test]
    fn summary_names_what_was_sent_kept_dropped_and_why() {
        let report = PushReport {
            url: String::new(),
            spool_dir: PathBuf::new(),
            stats: PushStats {
                sent: 7,
                spooled_now: 2,
                spooled_bytes: 100,
                dropped: 1,
                dropped_bytes: 50,
                rejected: 1,
                retries: 3,
                last_error: Some("HTTP 503".into()),
            },
            failures: vec!["a.data: truncated".into()],
            failed: 1,
        };
        let line = summary_line("http://p:4040", std::path::Path::new("/spool"), &report);
        for part in [
            "pushed 7 profiles to http://p:4040",
            "2 waiting in /spool",
            "1 dropped unsent (50 bytes)",
            "--spool-max",
            "1 refused by the server",
            "1 intervals could not be converted (a.data: truncated)",
            "last error: HTTP 503",
        ] {
            assert!(line.contains(part), "{part:?} not in {line}");
        }
        let clean = PushReport {
            url: String::new(),
            spool_dir: PathBuf::new(),
            stats: PushStats {
                sent: 3,
                ..PushStats::default()
            },
            failures: Vec::new(),
            failed: 0,
        };
        assert_eq!(
            summary_line("u", std::path::Path::new("/s"), &clean),
            "rprof: pushed 3 profiles to u"
        );
    }
}
