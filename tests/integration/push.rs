//! `rprof::push` against the test receiver (tests/support/receiver.rs):
//! each interval's pprof reaches a Pyroscope `/ingest`, Pyroscope push API
//! or Parca `WriteRaw` stand-in with the labels and parameters the backends
//! read, over TLS too, survives a server outage and a restart in the spool,
//! and is dropped oldest first when the spool is full. Received profiles are
//! read back by `go tool pprof` where it is installed.

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
use receiver::{Receiver, PARCA_PATH, PYROSCOPE_PUSH_PATH};

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

/// `go tool pprof -raw` reads the profile and shows its CPU sample types;
/// returns what it printed (`None` where go is not installed).
fn check_with_go_pprof(pprof_gz: &[u8], name: &str) -> Option<String> {
    if !go_pprof_available() {
        eprintln!("skipped the go tool pprof check: go not installed (apt-get install golang-go)");
        return None;
    }
    let file = temp_dir(name).join("received.pb.gz");
    std::fs::write(&file, pprof_gz).unwrap();
    let raw = go_pprof(&["-raw", file.to_str().unwrap()]);
    assert!(raw.contains("samples/count cpu/nanoseconds"), "{raw}");
    assert!(raw.contains("PeriodType: cpu nanoseconds"), "{raw}");
    Some(raw)
}

fn pairs(labels: &[(String, String)]) -> Vec<(&str, &str)> {
    labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
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
    assert_eq!(
        pairs(&got.series_labels),
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
fn pyroscope_push_api_gets_process_cpu_the_labels_and_the_pprof() {
    let receiver = Receiver::start();
    let spool = spool_dir("push-pyroscope-api");
    let pusher = Pusher::start(config(&receiver, PushFormat::PyroscopePush, &spool)).unwrap();
    pusher.submit(interval(3)).unwrap();
    let received = receiver.wait_for(1, WAIT);
    let got = &received[0];
    assert_eq!(got.path, PYROSCOPE_PUSH_PATH);
    assert_eq!(got.header("content-type"), Some("application/proto"));
    assert_eq!(got.header("connect-protocol-version"), Some("1"));
    assert_eq!(
        pairs(&got.series_labels),
        [
            ("__name__", "process_cpu"),
            ("service_name", "api"),
            ("env", "prod")
        ]
    );
    assert_eq!(got.profile, interval(3).pprof_gz);
    check_with_go_pprof(&got.profile, "push-pyroscope-api-go");
    let stats = wait_stats(&pusher, "the Connect answer", |s| s.sent == 1);
    assert_eq!(stats.last_error, None);

    // A 400 is final: counted, not retried.
    receiver.set_status(400);
    pusher.submit(interval(4)).unwrap();
    let stats = wait_stats(&pusher, "the refusal", |s| s.rejected == 1);
    assert_eq!((stats.sent, stats.retries), (1, 0), "{stats:?}");
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
fn an_https_server_under_a_private_ca_is_trusted_through_the_ca_file_only() {
    let (receiver, ca_pem) = Receiver::start_tls();
    let dir = temp_dir("push-private-ca");
    // Without the CA: the certificate is unknown, the profile waits.
    let untrusted = config(&receiver, PushFormat::PyroscopePush, &dir.join("spool-a"));
    assert!(untrusted.url.starts_with("https://127.0.0.1:"));
    let pusher = Pusher::start(untrusted).unwrap();
    pusher.submit(interval(0)).unwrap();
    let stats = wait_stats(&pusher, "a refused certificate", |s| s.retries >= 1);
    let error = stats.last_error.clone().unwrap();
    assert!(
        error.to_ascii_lowercase().contains("certificate"),
        "{error}"
    );
    assert!(receiver.received().is_empty());
    assert_eq!(pusher.shutdown(Duration::ZERO).spooled_now, 1);

    // With it: delivered over TLS, and the spooled one follows.
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let mut trusted = config(&receiver, PushFormat::PyroscopePush, &dir.join("spool-a"));
    trusted.ca_file = Some(ca_file);
    trusted.auth = Some(Auth::Bearer("t0ken".into()));
    let pusher = Pusher::start(trusted).unwrap();
    pusher.submit(interval(1)).unwrap();
    let received = receiver.wait_for(2, WAIT);
    let order: Vec<u64> = received.iter().map(|r| interval_of(&r.profile)).collect();
    assert_eq!(order, [0, 1]);
    assert_eq!(received[0].header("authorization"), Some("Bearer t0ken"));
    let stats = pusher.shutdown(Duration::from_secs(5));
    assert_eq!((stats.sent, stats.spooled_now), (2, 0), "{stats:?}");

    // A file that holds no certificate stops the start, naming the file.
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let mut bad = config(&receiver, PushFormat::Parca, &dir.join("spool-b"));
    bad.ca_file = Some(not_pem);
    let error = Pusher::start(bad).err().unwrap().to_string();
    assert!(
        error.contains("not.pem") && error.contains("no usable CA certificate"),
        "{error}"
    );
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
        // The profile's own time span lies within from..until.
        let profile = decode(&got.profile).unwrap();
        let start = profile.time_nanos as u64;
        assert!(
            start / 1_000_000_000 == from
                && (start + profile.duration_nanos as u64) / 1_000_000_000 <= until,
            "profile {start} + {} ns, query {from}..{until}",
            profile.duration_nanos
        );
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
    // Every profile reads in go tool pprof, with the per-sample labels.
    for (n, got) in received.iter().enumerate() {
        let Some(raw) = check_with_go_pprof(&got.profile, &format!("push-e2e-go-{n}")) else {
            break;
        };
        for label in ["comm:[work]", "thread_comm:[work]", "pid:[", "tid:["] {
            assert!(raw.contains(label), "{label} not in profile {n}: {raw}");
        }
    }
    // The spool is empty again.
    let left = spooled_files(&spool).len();
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
    let labels = &received[0].series_labels;
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

/// A number just before `what` in the push summary line (0 when absent).
fn summary_count(stderr: &str, what: &str) -> u64 {
    let Some(line) = stderr.lines().find(|l| l.starts_with("rprof: pushed ")) else {
        panic!("no push summary: {stderr}")
    };
    let Some(at) = line.find(what) else {
        return 0;
    };
    line[..at]
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count before {what:?}: {line}"))
}

/// The spooled profiles, oldest first (their names are sequence numbers).
fn spooled_files(spool: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(spool)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "prof"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_full_spool_warns_while_recording_and_the_next_start_sends_what_was_kept() {
    crate::util::require_perf!();
    let _guard = crate::util::serial();
    let receiver = Receiver::start();
    receiver.set_down(true);
    let dir = temp_dir("push-e2e-full");
    let spool = dir.join("spool");
    let record = |seconds: &str, spool_max: &str| {
        let run = std::process::Command::new(crate::util::rprof_bin())
            .args(["record", "-F", "499", "-g", "--rotate", "250ms", "-o"])
            .arg(dir.join("out/"))
            .args(["--push", &receiver.url(), "--push-timeout", "1"])
            .args(["--spool-max", spool_max, "--spool-dir"])
            .arg(&spool)
            .arg("--")
            .arg(&crate::util::workloads().work)
            .args(["split", seconds])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = crate::util::text(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        stderr
    };
    // A first run sizes the profiles: all of them wait (the server is down).
    let first = record("0.6", "256M");
    let kept_first = summary_count(&first, " waiting in ");
    assert_eq!(kept_first, summary_files(&first) as u64, "{first}");
    let largest = spooled_files(&spool)
        .iter()
        .map(|f| f.metadata().unwrap().len())
        .max()
        .unwrap();

    // Room for about three: the oldest go first, and it says so meanwhile.
    let cap = (largest * 7 / 2).to_string();
    let second = record("2", &cap);
    let (kept, dropped) = (
        summary_count(&second, " waiting in "),
        summary_count(&second, " dropped unsent"),
    );
    assert!(kept >= 1 && dropped >= 1, "{second}");
    assert_eq!(
        kept + dropped,
        kept_first + summary_files(&second) as u64,
        "every profile is sent, kept or counted as dropped: {second}"
    );
    let summary_at = second.find("rprof: pushed ").unwrap();
    for live in [
        "rprof: warning: cannot push to",
        "rprof: warning: the push spool is full: dropped",
    ] {
        let at = second
            .find(live)
            .unwrap_or_else(|| panic!("no {live:?}: {second}"));
        assert!(at < summary_at, "{live:?} came only at exit: {second}");
    }
    let kept_times: Vec<u64> = spooled_profiles_from(&spool);

    // The server is back: the next start sends the kept ones first.
    receiver.set_down(false);
    let third = record("0.3", "256M");
    let files = summary_files(&third) as u64;
    let received = receiver.received();
    assert_eq!(received.len() as u64, kept + files, "{third}");
    let arrived: Vec<u64> = received
        .iter()
        .map(|r| r.query("from").unwrap().parse().unwrap())
        .collect();
    assert_eq!(&arrived[..kept as usize], kept_times.as_slice());
    assert!(arrived.windows(2).all(|w| w[0] <= w[1]), "{arrived:?}");
    assert!(
        third.contains(&format!("pushed {} profiles", kept + files)),
        "{third}"
    );
}

/// The `from` seconds of the spooled profiles, oldest first (their header
/// line: `rprof-spool 1 FROM_NS UNTIL_NS RATE_HZ`).
fn spooled_profiles_from(spool: &Path) -> Vec<u64> {
    spooled_files(spool)
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap();
            let header = bytes.split(|&b| b == b'\n').next().unwrap();
            let header = String::from_utf8_lossy(header);
            let from_ns: u64 = header.split(' ').nth(2).unwrap().parse().unwrap();
            from_ns / 1_000_000_000
        })
        .collect()
}

#[test]
fn system_wide_pushes_through_the_push_api_label_each_process_and_its_cgroup() {
    crate::util::require_perf!();
    let _guard = crate::util::serial();
    let _kernel = crate::util::KernelWide::system_wide();
    let receiver = Receiver::start();
    let dir = temp_dir("push-system-wide");
    let run = std::process::Command::new(crate::util::rprof_bin())
        .args(["record", "-a", "-F", "199", "-g", "--rotate", "500ms", "-o"])
        .arg(dir.join("out/"))
        .args(["--push", &receiver.url(), "--push-format", "pyroscope-push"])
        .args(["--label", "service_name=fleet,host=ci", "--label-cgroup"])
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .args(["--", "sh", "-c", "echo pid $$; exec \"$0\" split 1.5"])
        .arg(&crate::util::workloads().work)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = crate::util::text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let stdout = crate::util::text(&run.stdout);
    let workload: i64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pid ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid line: {stdout}"));
    let received = receiver.received();
    assert_eq!(received.len(), summary_files(&stderr), "{stderr}");
    assert!(received.len() >= 3, "{stderr}");
    let mut workload_ns = 0i64;
    let mut pids = std::collections::HashSet::new();
    for got in &received {
        assert_eq!(got.path, PYROSCOPE_PUSH_PATH);
        assert_eq!(
            pairs(&got.series_labels),
            [
                ("__name__", "process_cpu"),
                ("service_name", "fleet"),
                ("host", "ci")
            ]
        );
        let p = decode(&got.profile).unwrap();
        let label = |sample: &proto::Sample, key: &str| {
            sample
                .label
                .iter()
                .find(|l| p.string_table[l.key as usize] == key)
                .cloned()
        };
        for sample in &p.sample {
            let pid = label(sample, "pid").expect("every sample has a pid").num;
            pids.insert(pid);
            if pid == workload {
                let comm = label(sample, "comm").unwrap();
                assert_eq!(p.string_table[comm.str as usize], "work");
                // The cgroup the test runs in, described at the start.
                let cgroup = label(sample, "cgroup").expect("the workload's cgroup path");
                assert!(p.string_table[cgroup.str as usize].starts_with('/'));
                workload_ns += sample.value[1];
            }
        }
    }
    // The workload's samples add up to the CPU time it measured itself.
    let truth: f64 = crate::util::truth(&stdout).iter().map(|(_, ns)| ns).sum();
    let ratio = workload_ns as f64 / truth;
    assert!(
        (0.8..1.25).contains(&ratio),
        "workload {workload_ns} ns sampled, {truth} ns measured"
    );
    // System-wide: other processes (rprof itself, at least) are there too.
    assert!(pids.len() >= 2, "{pids:?}");
}
