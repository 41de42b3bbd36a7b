//! The sender loop against a scripted transport (no sockets).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use super::http::Transport;
use super::wire::{Request, Response};
use super::*;

/// Answers from a script (then 200), recording each request's body.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<Result<u16, String>>>>,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Transport for Scripted {
    fn post(&self, request: &Request) -> Result<Response, String> {
        self.bodies.lock().unwrap().push(request.body.clone());
        let answer = self.answers.lock().unwrap().pop_front().unwrap_or(Ok(200));
        answer.map(|status| Response {
            status,
            ..Response::default()
        })
    }
}

fn config(dir: &std::path::Path) -> PushConfig {
    let mut config = PushConfig::new("http://127.0.0.1:9", PushFormat::Pyroscope, dir);
    config.labels = vec![("service_name".into(), "test".into())];
    config.retry = RetryPolicy {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(40),
    };
    config
}

fn profile(n: u8) -> IntervalProfile {
    let from = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    IntervalProfile {
        pprof_gz: vec![n; 16],
        from,
        until: from,
        sample_rate_hz: 99,
    }
}

fn wait_for(pusher: &Pusher, done: impl Fn(&PushStats) -> bool) -> PushStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = pusher.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn profiles_go_out_oldest_first_after_passing_faults() {
    let dir = tempfile::tempdir().unwrap();
    let transport = Scripted::default();
    transport
        .answers
        .lock()
        .unwrap()
        .extend([Err("refused".to_string()), Ok(503), Ok(429)]);
    let pusher = Pusher::with_transport(config(dir.path()), Box::new(transport.clone())).unwrap();
    for n in 0..3 {
        pusher.submit(profile(n)).unwrap();
    }
    let stats = wait_for(&pusher, |s| s.sent == 3);
    assert_eq!(
        (stats.sent, stats.retries, stats.rejected, stats.spooled_now),
        (3, 3, 0, 0),
        "{stats:?}"
    );
    assert!(stats.last_error.unwrap().contains("429"));
    let firsts: Vec<u8> = transport
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| b[0])
        .collect();
    assert_eq!(
        firsts,
        [0, 0, 0, 0, 1, 2],
        "retried in place, then in order"
    );
}

#[test]
fn a_rejected_profile_is_dropped_and_the_queue_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let transport = Scripted::default();
    transport.answers.lock().unwrap().push_back(Ok(400));
    let pusher = Pusher::with_transport(config(dir.path()), Box::new(transport.clone())).unwrap();
    pusher.submit(profile(0)).unwrap();
    pusher.submit(profile(1)).unwrap();
    let stats = wait_for(&pusher, |s| s.sent == 1);
    assert_eq!(
        (stats.sent, stats.rejected, stats.retries),
        (1, 1, 0),
        "{stats:?}"
    );
    assert!(stats.last_error.unwrap().starts_with("rejected: HTTP 400"));
}

#[test]
fn shutdown_leaves_undelivered_profiles_for_the_next_pusher() {
    let dir = tempfile::tempdir().unwrap();
    let down = Scripted::default();
    down.answers
        .lock()
        .unwrap()
        .extend(std::iter::repeat_n(Err("down".to_string()), 1000));
    let pusher = Pusher::with_transport(config(dir.path()), Box::new(down)).unwrap();
    for n in 0..3 {
        pusher.submit(profile(n)).unwrap();
    }
    let stats = pusher.shutdown(Duration::from_millis(50));
    assert_eq!((stats.sent, stats.spooled_now), (0, 3), "{stats:?}");

    let up = Scripted::default();
    let pusher = Pusher::with_transport(config(dir.path()), Box::new(up.clone())).unwrap();
    let stats = pusher.shutdown(Duration::from_secs(10));
    assert_eq!((stats.sent, stats.spooled_now), (3, 0), "{stats:?}");
    let firsts: Vec<u8> = up.bodies.lock().unwrap().iter().map(|b| b[0]).collect();
    assert_eq!(firsts, [0, 1, 2]);
}

#[test]
fn urls_with_credentials_or_odd_schemes_are_refused_without_echoing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = config(dir.path());
    bad.url = "http://user:SECRET@host:4040".into();
    let err = Pusher::start(bad).err().unwrap().to_string();
    assert!(
        !err.contains("SECRET") && err.contains("basic-auth-file"),
        "{err}"
    );
    for url in ["ftp://host", "http://", "http://host/?x=1"] {
        let mut bad = config(dir.path());
        bad.url = url.into();
        assert!(Pusher::start(bad).is_err(), "{url}");
    }
    let mut no_service = config(dir.path());
    no_service.labels.clear();
    assert!(Pusher::start(no_service).is_err());
    let mut parca = config(dir.path());
    parca.format = PushFormat::Parca;
    parca.labels.clear();
    assert!(Pusher::start(parca).is_ok(), "Parca needs no service_name");
}

#[test]
fn the_config_debug_output_redacts_credentials() {
    let mut config = config(std::path::Path::new("/nonexistent"));
    config.auth = Some(Auth::Bearer("SECRET".into()));
    assert!(!format!("{config:?}").contains("SECRET"));
}

#[test]
fn a_corrupt_spool_file_is_rejected_and_the_rest_still_goes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("00000000000000000000.prof"),
        b"not a spooled profile",
    )
    .unwrap();
    let transport = Scripted::default();
    let pusher = Pusher::with_transport(config(dir.path()), Box::new(transport.clone())).unwrap();
    pusher.submit(profile(1)).unwrap();
    let stats = wait_for(&pusher, |s| s.sent == 1);
    assert_eq!(
        (stats.sent, stats.rejected, stats.spooled_now),
        (1, 1, 0),
        "{stats:?}"
    );
    assert!(stats.last_error.unwrap().contains("corrupt"));
    assert_eq!(transport.bodies.lock().unwrap().len(), 1);
}
