//! `rprof::push` against the test receiver (tests/support/receiver.rs):
//! each interval's pprof reaches a Pyroscope `/ingest` or Parca `WriteRaw`
//! stand-in with the labels and parameters the backends read, survives a
//! server outage and a restart in the spool, and is dropped oldest first
//! when the spool is full. Received profiles are read back by `go tool
//! pprof` where it is installed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;
use rprof::output::pprof::{decode, proto};
use rprof::push::{Auth, IntervalProfile, PushConfig, PushFormat, PushStats, Pusher, RetryPolicy};

use crate::pprof::{go_pprof, go_pprof_available};
use crate::util::temp_dir;

#[path = "../support/receiver.rs"]
mod receiver;
use receiver::{Receiver, PARCA_PATH};

const WAIT: Duration = Duration::from_secs(20);

/// A small CPU profile (cpu/nanoseconds at 99 Hz) whose `duration_nanos`
/// is `n`, so each interval can be told apart on arrival.
fn interval(n: u64) -> IntervalProfile {
    let strings = [
        "",
        "samples",
        "count",
        "cpu",
        "nanoseconds",
        "main",
        "burn",
        "work.c",
    ];
    let s = |name: &str| strings.iter().position(|&x| x == name).unwrap() as i64;
    let value_type = |t: &str, u: &str| proto::ValueType {
        r#type: s(t),
        unit: s(u),
    };
    let function = |id: u64, name: &str| proto::Function {
        id,
        name: s(name),
        system_name: s(name),
        filename: s("work.c"),
        ..Default::default()
    };
    let location = |id: u64, address: u64| proto::Location {
        id,
        address,
        line: vec![proto::Line {
            function_id: id,
            line: 10 * id as i64,
            ..Default::default()
        }],
        ..Default::default()
    };
    let period = 10_101_010;
    let profile = proto::Profile {
        sample_type: vec![
            value_type("samples", "count"),
            value_type("cpu", "nanoseconds"),
        ],
        sample: vec![proto::Sample {
            location_id: vec![2, 1],
            value: vec![5, 5 * period],
            ..Default::default()
        }],
        location: vec![location(1, 0x1000), location(2, 0x2000)],
        function: vec![function(1, "main"), function(2, "burn")],
        string_table: strings.iter().map(|s| s.to_string()).collect(),
        time_nanos: 1_700_000_000_000_000_000 + n as i64,
        duration_nanos: n as i64,
        period_type: Some(value_type("cpu", "nanoseconds")),
        period,
        ..Default::default()
    };
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&profile.encode_to_vec()).unwrap();
    let from = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 60 * n);
    IntervalProfile {
        pprof_gz: gz.finish().unwrap(),
        from,
        until: from + Duration::from_secs(60),
        sample_rate_hz: 99,
    }
}

/// Which interval a received profile is.
fn interval_of(pprof_gz: &[u8]) -> u64 {
    decode(pprof_gz)
        .expect("a received profile decodes")
        .duration_nanos as u64
}

fn config(receiver: &Receiver, format: PushFormat, spool: &Path) -> PushConfig {
    let mut config = PushConfig::new(receiver.url(), format, spool);
    config.labels = vec![
        ("service_name".into(), "api".into()),
        ("env".into(), "prod".into()),
    ];
    config.retry = RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    config.timeout = Duration::from_secs(5);
    config
}

fn spool_dir(name: &str) -> PathBuf {
    temp_dir(name).join("spool")
}

fn wait_stats(pusher: &Pusher, what: &str, done: impl Fn(&PushStats) -> bool) -> PushStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = pusher.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for {what}: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `go tool pprof -raw` reads the profile and shows its CPU sample types.
fn check_with_go_pprof(pprof_gz: &[u8], name: &str) {
    if !go_pprof_available() {
        eprintln!("skipped the go tool pprof check: go not installed (apt-get install golang-go)");
        return;
    }
    let file = temp_dir(name).join("received.pb.gz");
    std::fs::write(&file, pprof_gz).unwrap();
    let raw = go_pprof(&["-raw", file.to_str().unwrap()]);
    assert!(raw.contains("samples/count cpu/nanoseconds"), "{raw}");
    assert!(raw.contains("PeriodType: cpu nanoseconds"), "{raw}");
}

#[test]
fn pyroscope_ingest_gets_name_with_labels_times_rate_spy_and_the_pprof() {
    let receiver = Receiver::start();
    let spool = spool_dir("push-pyroscope");
    let pusher = Pusher::start(config(&receiver, PushFormat::Pyroscope, &spool)).unwrap();
    for n in 0..2 {
        pusher.submit(interval(n)).unwrap();
    }
    let received = receiver.wait_for(2, WAIT);
    for (n, got) in received.iter().enumerate() {
        let sent = interval(n as u64);
        assert_eq!(got.path, "/ingest");
        let from = 1_700_000_000 + 60 * n as u64;
        let expect = [
            ("name", "api{env=prod}".to_string()),
            ("from", from.to_string()),
            ("until", (from + 60).to_string()),
            ("format", "pprof".to_string()),
            ("sampleRate", "99".to_string()),
            ("spyName", "rprof".to_string()),
        ];
        for (key, value) in expect {
            assert_eq!(
                got.query(key),
                Some(value.as_str()),
                "{key} in {:?}",
                got.query
            );
        }
        assert_eq!(
            got.profile, sent.pprof_gz,
            "the body is the pprof, byte for byte"
        );
        assert_eq!(got.header("authorization"), None);
    }
    check_with_go_pprof(&received[0].profile, "push-pyroscope-go");
    let stats = pusher.shutdown(Duration::from_secs(5));
    assert_eq!(
        (stats.sent, stats.spooled_now, stats.dropped, stats.rejected),
        (2, 0, 0, 0)
    );
}

#[test]
fn parca_write_raw_gets_process_cpu_and_the_configured_labels() {
    let receiver = Receiver::start();
    let spool = spool_dir("push-parca");
    let pusher = Pusher::start(config(&receiver, PushFormat::Parca, &spool)).unwrap();
    pusher.submit(interval(7)).unwrap();
    let received = receiver.wait_for(1, WAIT);
    let got = &received[0];
    assert_eq!(got.path, PARCA_PATH);
    assert_eq!(
        got.header("content-type"),
        Some("application/grpc-web+proto")
    );
    let labels: Vec<(&str, &str)> = got
        .parca_labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("__name__", "process_cpu"),
            ("service_name", "api"),
            ("env", "prod")
        ]
    );
    assert_eq!(interval_of(&got.profile), 7);
    check_with_go_pprof(&got.profile, "push-parca-go");
    let stats = wait_stats(&pusher, "the gRPC-Web answer", |s| s.sent == 1);
    assert_eq!(stats.last_error, None);
}

#[test]
fn a_server_down_for_a_while_gets_every_profile_afterwards_in_order() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let spool = spool_dir("push-outage");
    let pusher = Pusher::start(config(&receiver, PushFormat::Pyroscope, &spool)).unwrap();
    let started = Instant::now();
    for n in 0..3 {
        pusher.submit(interval(n)).unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "submit does not wait on the server"
    );
    wait_stats(&pusher, "retries on 503", |s| s.retries >= 2);
    // Then connections closed unanswered.
    receiver.set_down(false);
    receiver.set_refuse(true);
    let before = pusher.stats().retries;
    for n in 3..5 {
        pusher.submit(interval(n)).unwrap();
    }
    let stats = wait_stats(&pusher, "retries on closed connections", |s| {
        s.retries >= before + 2
    });
    assert_eq!((stats.sent, stats.spooled_now), (0, 5), "{stats:?}");
    assert!(stats.last_error.is_some());
    receiver.set_refuse(false);
    let received = receiver.wait_for(5, WAIT);
    let order: Vec<u64> = received.iter().map(|r| interval_of(&r.profile)).collect();
    assert_eq!(order, [0, 1, 2, 3, 4]);
    let stats = wait_stats(&pusher, "all sent", |s| s.sent == 5);
    assert_eq!(
        (stats.spooled_now, stats.dropped, stats.rejected),
        (0, 0, 0)
    );
}

#[test]
fn a_restart_sends_what_the_last_run_spooled() {
    let receiver = Receiver::start();
    receiver.set_down(true);
    let spool = spool_dir("push-restart");
    let pusher = Pusher::start(config(&receiver, PushFormat::Parca, &spool)).unwrap();
    for n in 0..3 {
        pusher.submit(interval(n)).unwrap();
    }
    let stats = pusher.shutdown(Duration::from_millis(100));
    assert_eq!((stats.sent, stats.spooled_now), (0, 3), "{stats:?}");
    assert!(receiver.received().is_empty());

    receiver.set_down(false);
    let pusher = Pusher::start(config(&receiver, PushFormat::Parca, &spool)).unwrap();
    assert_eq!(pusher.stats().spooled_now + pusher.stats().sent, 3);
    let received = receiver.wait_for(3, WAIT);
    let order: Vec<u64> = received.iter().map(|r| interval_of(&r.profile)).collect();
    assert_eq!(order, [0, 1, 2]);
    let stats = pusher.shutdown(Duration::from_secs(5));
    assert_eq!((stats.sent, stats.spooled_now), (3, 0));
}

#[test]
fn a_full_spool_drops_the_oldest_profiles_and_counts_them() {
    let receiver = Receiver::start();
    receiver.set_refuse(true);
    let spool = spool_dir("push-full");
    let mut slow = config(&receiver, PushFormat::Pyroscope, &spool);
    // One try, then a long wait: nothing is in flight while we submit.
    slow.retry = RetryPolicy {
        initial: Duration::from_secs(30),
        max: Duration::from_secs(30),
    };
    let one = interval(0).pprof_gz.len() as u64 + 100;
    slow.spool_max_bytes = one * 2 + one / 2;
    let pusher = Pusher::start(slow).unwrap();
    pusher.submit(interval(0)).unwrap();
    wait_stats(&pusher, "the first try", |s| s.retries == 1);
    for n in 1..5 {
        pusher.submit(interval(n)).unwrap();
    }
    let stats = pusher.shutdown(Duration::ZERO);
    assert_eq!(
        (stats.spooled_now, stats.dropped, stats.sent),
        (2, 3, 0),
        "{stats:?}"
    );
    assert!(stats.dropped_bytes > 2 * interval(0).pprof_gz.len() as u64);
    assert!(stats.spooled_bytes <= one * 2 + one / 2);

    // The newest two are what a restart delivers.
    receiver.set_refuse(false);
    let pusher = Pusher::start(config(&receiver, PushFormat::Pyroscope, &spool)).unwrap();
    let received = receiver.wait_for(2, WAIT);
    let order: Vec<u64> = received.iter().map(|r| interval_of(&r.profile)).collect();
    assert_eq!(order, [3, 4]);
    pusher.shutdown(Duration::from_secs(5));
}

#[test]
fn credentials_arrive_in_the_authorization_header() {
    let receiver = Receiver::start();
    let spool = spool_dir("push-auth");
    let mut bearer = config(&receiver, PushFormat::Pyroscope, &spool);
    bearer.auth = Some(Auth::Bearer("t0ken".into()));
    let pusher = Pusher::start(bearer).unwrap();
    pusher.submit(interval(0)).unwrap();
    let received = receiver.wait_for(1, WAIT);
    assert_eq!(received[0].header("authorization"), Some("Bearer t0ken"));
    pusher.shutdown(Duration::from_secs(5));

    let mut basic = config(&receiver, PushFormat::Parca, &spool);
    basic.auth = Some(Auth::Basic {
        user: "me".into(),
        password: "pw".into(),
    });
    let pusher = Pusher::start(basic).unwrap();
    pusher.submit(interval(1)).unwrap();
    let received = receiver.wait_for(2, WAIT);
    // base64("me:pw")
    assert_eq!(received[1].header("authorization"), Some("Basic bWU6cHc="));
    pusher.shutdown(Duration::from_secs(5));
}

#[test]
fn a_rejected_profile_is_counted_with_the_server_message_and_not_retried() {
    let receiver = Receiver::start();
    receiver.set_status(400);
    let spool = spool_dir("push-reject");
    let pusher = Pusher::start(config(&receiver, PushFormat::Pyroscope, &spool)).unwrap();
    pusher.submit(interval(0)).unwrap();
    let stats = wait_stats(&pusher, "the rejection", |s| s.rejected == 1);
    let error = stats.last_error.unwrap();
    assert!(
        error.contains("400") && error.contains("test receiver says 400"),
        "{error}"
    );
    assert_eq!((stats.spooled_now, stats.retries), (0, 0));
    // A few backoff periods later it still was tried once.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.attempts(), 1);

    receiver.set_status(200);
    pusher.submit(interval(1)).unwrap();
    let received = receiver.wait_for(1, WAIT);
    assert_eq!(interval_of(&received[0].profile), 1);
    let stats = pusher.shutdown(Duration::from_secs(5));
    assert_eq!((stats.sent, stats.rejected), (1, 1));
}

#[test]
fn a_server_error_is_retried_until_it_recovers() {
    let receiver = Receiver::start();
    receiver.set_status(500);
    let spool = spool_dir("push-5xx");
    let pusher = Pusher::start(config(&receiver, PushFormat::Parca, &spool)).unwrap();
    pusher.submit(interval(0)).unwrap();
    wait_stats(&pusher, "retries on 500", |s| s.retries >= 2);
    receiver.set_status(200);
    receiver.wait_for(1, WAIT);
    let stats = pusher.shutdown(Duration::from_secs(5));
    assert_eq!((stats.sent, stats.rejected), (1, 0));
}

#[test]
fn an_https_url_speaks_tls_and_a_plain_server_is_retried_not_fatal() {
    let receiver = Receiver::start();
    let spool = spool_dir("push-tls");
    let mut tls = config(&receiver, PushFormat::Pyroscope, &spool);
    tls.url = receiver.url().replace("http://", "https://");
    let pusher = Pusher::start(tls).unwrap();
    pusher.submit(interval(0)).unwrap();
    let stats = wait_stats(&pusher, "a failed TLS handshake", |s| s.retries >= 1);
    assert_eq!(stats.sent, 0);
    let error = stats.last_error.unwrap();
    assert!(error.starts_with("https://127.0.0.1:"), "{error}");
    assert!(
        receiver.received().is_empty(),
        "nothing is sent in clear text"
    );
    let stats = pusher.shutdown(Duration::ZERO);
    assert_eq!(stats.spooled_now, 1, "kept for a retry");
}

#[test]
fn submit_returns_while_the_server_hangs_on_a_request() {
    let receiver = Receiver::start();
    receiver.set_stall(true);
    let spool = spool_dir("push-hang");
    let mut config = config(&receiver, PushFormat::Pyroscope, &spool);
    config.timeout = Duration::from_secs(20);
    let pusher = Pusher::start(config).unwrap();
    pusher.submit(interval(0)).unwrap();
    let deadline = Instant::now() + WAIT;
    while receiver.attempts() == 0 {
        assert!(Instant::now() < deadline, "the first request never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A request hangs (for up to 20 s); submitting only touches the disk.
    let started = Instant::now();
    for n in 1..4 {
        pusher.submit(interval(n)).unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "submit waited {:?}",
        started.elapsed()
    );
    assert_eq!(pusher.stats().spooled_now, 4);
    receiver.set_stall(false);
    let received = receiver.wait_for(4, WAIT);
    let order: Vec<u64> = received.iter().map(|r| interval_of(&r.profile)).collect();
    assert_eq!(order, [0, 1, 2, 3]);
    let stats = pusher.shutdown(Duration::from_secs(5));
    assert_eq!((stats.sent, stats.retries), (4, 0));
}

// --- `rprof record --rotate --push`, end to end ---

/// The pprof's `samples/count` total and burn_a's part of it (by leaf or
/// caller: any location of the sample named burn_a).
fn samples_and_burn_a(pprof_gz: &[u8]) -> (i64, i64) {
    let profile = decode(pprof_gz).expect("a pushed profile decodes");
    let name_of = |id: u64| -> Option<&str> {
        let function = profile.function.iter().find(|f| f.id == id)?;
        profile
            .string_table
            .get(function.name as usize)
            .map(String::as_str)
    };
    let mut burn_a_locations = std::collections::HashSet::new();
    for location in &profile.location {
        if location
            .line
            .iter()
            .any(|line| name_of(line.function_id) == Some("burn_a"))
        {
            burn_a_locations.insert(location.id);
        }
    }
    let mut total = 0;
    let mut burn_a = 0;
    for sample in &profile.sample {
        let count = sample.value[0];
        total += count;
        if sample
            .location_id
            .iter()
            .any(|id| burn_a_locations.contains(id))
        {
            burn_a += count;
        }
    }
    (total, burn_a)
}

/// `N files` from the summary line.
fn summary_files(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("[ rprof record:"))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let before = line.split(" files (").next().expect("files");
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn record_rotate_push_delivers_every_interval_through_an_outage() {
    crate::util::require_perf!();
    let _guard = crate::util::serial();
    let receiver = Receiver::start();
    // Down for the first intervals: they wait in the spool.
    receiver.set_down(true);
    let dir = temp_dir("push-e2e");
    let spool = dir.join("spool");
    let child = std::process::Command::new(crate::util::rprof_bin())
        .args(["record", "-F", "999", "-g", "--rotate", "300ms", "-o"])
        .arg(dir.join("out/"))
        .args(["--push", &receiver.url()])
        .args(["--label", "service_name=e2e,env=test", "--spool-dir"])
        .arg(&spool)
        .arg("--")
        .arg(&crate::util::workloads().work)
        .args(["split", "2.5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(900));
    assert!(receiver.received().is_empty(), "accepted while down");
    receiver.set_down(false);
    let run = child.wait_with_output().unwrap();
    let stderr = crate::util::text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        receiver.attempts() > 0,
        "nothing was tried during the outage"
    );
    let files = summary_files(&stderr);
    assert!(files >= 6, "{files} intervals: {stderr}");
    // Everything arrived before rprof exited (it waits for the spool).
    let received = receiver.received();
    assert_eq!(received.len(), files, "{stderr}");
    assert!(
        stderr.contains(&format!("pushed {files} profiles to")),
        "{stderr}"
    );
    let mut total = 0;
    let mut burn_a = 0;
    let mut times: Vec<(u64, u64)> = Vec::new();
    for got in &received {
        assert_eq!(got.path, "/ingest");
        assert_eq!(got.query("name"), Some("e2e{env=test}"));
        assert_eq!(got.query("format"), Some("pprof"));
        assert_eq!(got.query("sampleRate"), Some("999"));
        let from: u64 = got.query("from").unwrap().parse().unwrap();
        let until: u64 = got.query("until").unwrap().parse().unwrap();
        assert!(from <= until, "{from} > {until}");
        times.push((from, until));
        let (samples, a) = samples_and_burn_a(&got.profile);
        total += samples;
        burn_a += a;
    }
    // In order, and the intervals follow each other (whole seconds).
    for pair in times.windows(2) {
        assert!(
            pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].0 + 1,
            "{times:?}"
        );
    }
    // No sample lost or repeated between the recording and the server.
    assert_eq!(
        total as u64,
        crate::util::summary_samples(&stderr),
        "{stderr}"
    );
    // And the pushed profiles tell the truth: burn_a's share of the
    // workload's own CPU time.
    let truth = crate::util::truth(&crate::util::text(&run.stdout));
    let ns = |name: &str| truth.iter().find(|(n, _)| n == name).unwrap().1;
    let expected = ns("burn_a") / (ns("burn_a") + ns("burn_b"));
    let measured = burn_a as f64 / total as f64;
    assert!(
        (measured - expected).abs() < 0.05,
        "burn_a {measured:.3} of the pushed samples, truth {expected:.3}"
    );
    check_with_go_pprof(&received[0].profile, "push-e2e-go");
    // The spool is empty again.
    let left = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".prof"))
        .count();
    assert_eq!(left, 0, "profiles left in the spool");
}

#[test]
fn sigterm_mid_interval_pushes_the_interval_so_far() {
    crate::util::require_perf!();
    let _guard = crate::util::serial();
    let receiver = Receiver::start();
    let dir = temp_dir("push-sigterm");
    let child = std::process::Command::new(crate::util::rprof_bin())
        .args(["record", "-F", "999", "-g", "--rotate", "60s", "-o"])
        .arg(dir.join("out/"))
        .args(["--push", &receiver.url(), "--push-format", "parca"])
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .arg("--")
        .arg(&crate::util::workloads().work)
        .args(["split", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let run = child.wait_with_output().unwrap();
    let stderr = crate::util::text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM took {:?}",
        started.elapsed()
    );
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{stderr}");
    assert_eq!(received[0].path, PARCA_PATH);
    let labels = &received[0].parca_labels;
    assert!(
        labels.contains(&("__name__".into(), "process_cpu".into()))
            && labels.contains(&("service_name".into(), "work".into())),
        "{labels:?}"
    );
    let (samples, burn_a) = samples_and_burn_a(&received[0].profile);
    assert_eq!(
        samples as u64,
        crate::util::summary_samples(&stderr),
        "{stderr}"
    );
    assert!(
        burn_a > 0 && samples > 500,
        "{samples} samples, burn_a {burn_a}"
    );
}
