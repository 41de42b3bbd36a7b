//! The two wire formats, as plain requests and responses (no network here):
//!
//! ```text
//! pyroscope  POST {url}/ingest?name=SERVICE{k=v,...}&from=S&until=S&format=pprof
//!                 &sampleRate=HZ&spyName=rprof
//!            body: the gzipped pprof, raw (application/octet-stream)
//! pyroscope-push
//!            POST {url}/push.v1.PusherService/Push  (Connect, unary, HTTP/1.1)
//!            content-type: application/proto; Connect-Protocol-Version: 1
//!            body: PushRequest{series: [{labels: __name__=process_cpu +
//!                  --label, samples: [pprof.gz]}]}
//!            errors: HTTP status + JSON {"code": "unavailable", "message": ...}
//! parca      POST {url}/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw
//!            content-type: application/grpc-web+proto (gRPC-Web over HTTP/1.1)
//!            body: 0x00, u32 BE length, WriteRawRequest{series: [{labels:
//!                  __name__=process_cpu + --label, samples: [pprof.gz]}]}
//!            status: grpc-status in the headers, or in the 0x80 trailer frame
//! ```
//!
//! Sources: Pyroscope pkg/ingester/pyroscope/ingest_handler.go (query
//! parameters; `format=pprof` takes the body as the profile, multipart is
//! only read without it) and api/model/labelset/labelset.go (`name`: app
//! name, then `{k=v,...}`; the app name becomes `service_name`);
//! pkg/distributor/distributor.go (`Push`: each raw sample is read by
//! `pprof.RawFromBytes`, gzip detected; `service_name` defaults to
//! `unspecified`; the distributor gives each profile its own ID). Parca
//! pkg/server/server.go (grpcweb.WrapServer serves gRPC-Web on the HTTP
//! port; plain gRPC needs HTTP/2) and proto/parca/profilestore/v1alpha1/.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::parca_proto::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
use super::pyroscope_proto;
use super::{IntervalProfile, PushError};

/// Pyroscope's `spyName` (its `pyroscope_spy` label): agents name
/// themselves (`gospy`, `ebpfspy`, `pyroscope-rs`); ours is `rprof`.
pub const SPY_NAME: &str = "rprof";
/// The series name (`__name__`) of a CPU profile in Parca and Pyroscope
/// (what parca-agent and Pyroscope's eBPF agent send).
pub const PROFILE_NAME: &str = "process_cpu";
/// The gRPC-Web path of Parca's WriteRaw.
pub const PARCA_WRITE_RAW_PATH: &str = "/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw";
pub const GRPC_WEB_CONTENT_TYPE: &str = "application/grpc-web+proto";
/// The Connect path of Pyroscope's push API.
pub const PYROSCOPE_PUSH_PATH: &str = "/push.v1.PusherService/Push";
/// Connect's content type of a unary call with a binary protobuf body.
pub const CONNECT_PROTO_CONTENT_TYPE: &str = "application/proto";

/// One HTTP POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub content_type: &'static str,
    /// Headers the protocol needs besides the content type.
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: Vec<u8>,
}

/// An HTTP response; header names lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to do with a profile after a try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// A passing fault (5xx, 408, 429, gRPC UNAVAILABLE...): try again later.
    Retry(String),
    /// The server will never take it (other 4xx, gRPC INVALID_ARGUMENT...).
    Reject(String),
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Pyroscope's `name`: `SERVICE{k=v,...}` with every label but
/// `service_name`, whose value is the app name.
pub fn pyroscope_name(labels: &[(String, String)]) -> Result<String, PushError> {
    let service = labels
        .iter()
        .find(|(n, _)| n == "service_name")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| PushError::Label("Pyroscope needs a `service_name` label".into()))?;
    check_service_name(service)?;
    let rest: Vec<String> = labels
        .iter()
        .filter(|(n, _)| n != "service_name")
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    Ok(format!("{service}{{{}}}", rest.join(",")))
}

/// Pyroscope's rule for the app name (`IsServiceNameRuneAllowed`).
pub fn check_service_name(service: &str) -> Result<(), PushError> {
    match service
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        Some(c) => Err(PushError::Label(format!(
            "service_name `{service}` has `{c}`: Pyroscope allows letters, digits and `_ . - /`"
        ))),
        None => Ok(()),
    }
}

/// The `/ingest` request of one profile.
pub fn pyroscope_request(
    base: &str,
    labels: &[(String, String)],
    profile: &IntervalProfile,
) -> Result<Request, PushError> {
    let name = pyroscope_name(labels)?;
    let mut url = format!("{}/ingest?", base.trim_end_matches('/'));
    let query = [
        ("name", name),
        ("from", unix_seconds(profile.from).to_string()),
        ("until", unix_seconds(profile.until).to_string()),
        ("format", "pprof".to_string()),
        ("sampleRate", profile.sample_rate_hz.to_string()),
        ("spyName", SPY_NAME.to_string()),
    ];
    for (i, (key, value)) in query.iter().enumerate() {
        if i > 0 {
            url.push('&');
        }
        let _ = write!(url, "{key}={}", percent_encode(value));
    }
    Ok(Request {
        url,
        content_type: "application/octet-stream",
        headers: Vec::new(),
        body: profile.pprof_gz.clone(),
    })
}

/// The push API's message for one profile: `__name__=process_cpu` (the
/// series name Pyroscope validates) and the configured labels.
pub fn pyroscope_push(
    labels: &[(String, String)],
    profile: &IntervalProfile,
) -> pyroscope_proto::PushRequest {
    let name = ("__name__".to_string(), PROFILE_NAME.to_string());
    let labels = std::iter::once(&name)
        .chain(labels)
        .map(|(name, value)| pyroscope_proto::LabelPair {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    pyroscope_proto::PushRequest {
        series: vec![pyroscope_proto::RawProfileSeries {
            labels,
            samples: vec![pyroscope_proto::RawSample {
                raw_profile: profile.pprof_gz.clone(),
                // The distributor assigns every profile an ID of its own.
                id: String::new(),
            }],
        }],
    }
}

/// The push API's request of one profile: a Connect unary call, which
/// HTTP/1.1 carries (gRPC would need HTTP/2).
pub fn pyroscope_push_request(
    base: &str,
    labels: &[(String, String)],
    profile: &IntervalProfile,
) -> Request {
    Request {
        url: format!("{}{PYROSCOPE_PUSH_PATH}", base.trim_end_matches('/')),
        content_type: CONNECT_PROTO_CONTENT_TYPE,
        headers: vec![("Connect-Protocol-Version", "1")],
        body: pyroscope_push(labels, profile).encode_to_vec(),
    }
}

/// The WriteRaw request of one profile (addresses are as in the process,
/// not normalized: Parca normalizes them with the mappings).
pub fn parca_write_raw(labels: &[(String, String)], profile: &IntervalProfile) -> WriteRawRequest {
    let mut set = vec![Label {
        name: "__name__".into(),
        value: PROFILE_NAME.into(),
    }];
    set.extend(labels.iter().map(|(name, value)| Label {
        name: name.clone(),
        value: value.clone(),
    }));
    #[allow(deprecated)] // `tenant` is deprecated upstream; left empty.
    WriteRawRequest {
        tenant: String::new(),
        series: vec![RawProfileSeries {
            labels: Some(LabelSet { labels: set }),
            samples: vec![RawSample {
                raw_profile: profile.pprof_gz.clone(),
                executable_info: vec![],
            }],
        }],
        normalized: false,
    }
}

pub fn parca_request(
    base: &str,
    labels: &[(String, String)],
    profile: &IntervalProfile,
) -> Request {
    Request {
        url: format!("{}{PARCA_WRITE_RAW_PATH}", base.trim_end_matches('/')),
        content_type: GRPC_WEB_CONTENT_TYPE,
        headers: vec![("X-Grpc-Web", "1")],
        body: grpc_web_frame(&parca_write_raw(labels, profile).encode_to_vec()),
    }
}

/// A gRPC(-Web) data frame: flag 0 (uncompressed), big-endian length, message.
pub fn grpc_web_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// The frames of a gRPC-Web body: (flag, payload); stops at a torn frame.
pub fn grpc_web_frames(mut body: &[u8]) -> Vec<(u8, &[u8])> {
    let mut frames = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let Some(payload) = body.get(5..5 + len) else {
            break;
        };
        frames.push((body[0], payload));
        body = &body[5 + len..];
    }
    frames
}

/// A server's text, made safe and short for `last_error`.
fn server_message(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(body);
    let text: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX {
        format!("{}...", text.chars().take(MAX).collect::<String>())
    } else {
        text
    }
}

/// The outcome of a plain HTTP answer: 2xx sent; 408, 429, 5xx passing;
/// anything else (other 4xx, a redirect) permanent.
pub fn http_outcome(response: &Response) -> Outcome {
    let status = response.status;
    let message = || {
        let text = server_message(&response.body);
        if text.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {text}")
        }
    };
    match status {
        200..=299 => Outcome::Sent,
        408 | 429 | 500..=599 => Outcome::Retry(message()),
        300..=399 => Outcome::Reject(format!(
            "HTTP {status}: the server redirects (to {}): push to that URL",
            response.header("location").unwrap_or("?")
        )),
        _ => Outcome::Reject(message()),
    }
}

/// The outcome of a gRPC-Web answer: the HTTP status first, then
/// grpc-status from the headers (a trailers-only answer) or the trailer
/// frame.
pub fn parca_outcome(response: &Response) -> Outcome {
    if !(200..=299).contains(&response.status) {
        return http_outcome(response);
    }
    let mut status = response.header("grpc-status").map(str::to_string);
    let mut message = response.header("grpc-message").map(str::to_string);
    if status.is_none() {
        for (flag, payload) in grpc_web_frames(&response.body) {
            if flag & 0x80 == 0 {
                continue;
            }
            for line in String::from_utf8_lossy(payload).split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        "grpc-status" => status = Some(value.trim().to_string()),
                        "grpc-message" => message = Some(value.trim().to_string()),
                        _ => {}
                    }
                }
            }
        }
    }
    let Some(code) = status.and_then(|s| s.parse::<u32>().ok()) else {
        return Outcome::Retry("gRPC-Web answer without grpc-status (not a Parca server?)".into());
    };
    let text = format!(
        "gRPC status {code} ({}): {}",
        grpc_code_name(code),
        server_message(percent_decode(message.as_deref().unwrap_or("")).as_bytes())
    );
    match code {
        0 => Outcome::Sent,
        // DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE.
        4 | 8 | 10 | 13 | 14 => Outcome::Retry(text),
        _ => Outcome::Reject(text),
    }
}

/// The outcome of a Connect answer: 2xx sent; else the error's `code`
/// (Connect's JSON error body) decides as gRPC's codes do for Parca, and
/// without one the HTTP status does.
pub fn connect_outcome(response: &Response) -> Outcome {
    let status = response.status;
    if (200..=299).contains(&status) {
        return Outcome::Sent;
    }
    let Some(code) = json_string_field(&response.body, "code") else {
        return http_outcome(response);
    };
    let message = json_string_field(&response.body, "message").unwrap_or_default();
    let text = format!(
        "HTTP {status}, Connect code {}: {}",
        server_message(code.as_bytes()),
        server_message(message.as_bytes())
    );
    match code.as_str() {
        "deadline_exceeded" | "resource_exhausted" | "aborted" | "internal" | "unavailable" => {
            Outcome::Retry(text)
        }
        _ => Outcome::Reject(text),
    }
}

/// The string value of a top-level `"name": "..."` in a small JSON object
/// (a Connect error), with `\"`, `\\` and `\n`-style escapes undone; enough
/// for an error message, not a JSON parser.
fn json_string_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let key = format!("\"{name}\"");
    let after_key = &text[text.find(&key)? + key.len()..];
    let value = after_key.trim_start().strip_prefix(':')?.trim_start();
    let mut chars = value.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' | 'r' | 't' => out.push(' '),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn grpc_code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("?")
}

/// Percent-encodes all but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes `%XX` (grpc-message is percent-encoded); `+` stays `+`.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn labels(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn profile() -> IntervalProfile {
        let from = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        IntervalProfile {
            pprof_gz: vec![0x1f, 0x8b, 1, 2, 3],
            from,
            until: from + Duration::from_secs(60),
            sample_rate_hz: 99,
        }
    }

    fn query(url: &str) -> Vec<(String, String)> {
        let (_, query) = url.split_once('?').unwrap();
        query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), percent_decode(v))
            })
            .collect()
    }

    #[test]
    fn pyroscope_name_is_the_service_then_the_other_labels() {
        let set = labels(&[("env", "prod"), ("service_name", "api"), ("region", "eu-1")]);
        assert_eq!(pyroscope_name(&set).unwrap(), "api{env=prod,region=eu-1}");
        assert_eq!(
            pyroscope_name(&labels(&[("service_name", "a/b.c")])).unwrap(),
            "a/b.c{}"
        );
        assert!(pyroscope_name(&labels(&[("env", "prod")])).is_err());
        assert!(pyroscope_name(&labels(&[("service_name", "a b")])).is_err());
    }

    #[test]
    fn pyroscope_query_has_every_parameter_and_a_raw_body() {
        let set = labels(&[("service_name", "api"), ("env", "prod")]);
        let request = pyroscope_request("http://h:4040/", &set, &profile()).unwrap();
        assert!(
            request.url.starts_with("http://h:4040/ingest?"),
            "{}",
            request.url
        );
        assert!(
            request.url.contains("name=api%7Benv%3Dprod%7D"),
            "{}",
            request.url
        );
        assert_eq!(
            query(&request.url),
            labels(&[
                ("name", "api{env=prod}"),
                ("from", "1700000000"),
                ("until", "1700000060"),
                ("format", "pprof"),
                ("sampleRate", "99"),
                ("spyName", "rprof"),
            ])
        );
        assert_eq!(request.body, profile().pprof_gz);
        assert_eq!(request.content_type, "application/octet-stream");
    }

    #[test]
    fn parca_request_round_trips_through_the_generated_types() {
        let set = labels(&[("service_name", "api")]);
        let request = parca_request("https://parca:7070", &set, &profile());
        assert_eq!(
            request.url,
            "https://parca:7070/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw"
        );
        assert_eq!(request.headers, [("X-Grpc-Web", "1")]);
        let frames = grpc_web_frames(&request.body);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, 0);
        let decoded = WriteRawRequest::decode(frames[0].1).unwrap();
        assert_eq!(decoded, parca_write_raw(&set, &profile()));
        assert!(!decoded.normalized);
        let series = &decoded.series[0];
        let got: Vec<(&str, &str)> = series
            .labels
            .as_ref()
            .unwrap()
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(got, [("__name__", "process_cpu"), ("service_name", "api")]);
        assert_eq!(series.samples[0].raw_profile, profile().pprof_gz);
    }

    #[test]
    fn pyroscope_push_request_is_a_connect_call_with_process_cpu_and_the_labels() {
        let set = labels(&[("service_name", "api"), ("env", "prod")]);
        let request = pyroscope_push_request("http://h:4040/", &set, &profile());
        assert_eq!(request.url, "http://h:4040/push.v1.PusherService/Push");
        assert_eq!(request.content_type, "application/proto");
        assert_eq!(request.headers, [("Connect-Protocol-Version", "1")]);
        let decoded = pyroscope_proto::PushRequest::decode(request.body.as_slice()).unwrap();
        let [series] = decoded.series.as_slice() else {
            panic!("{decoded:?}")
        };
        let got: Vec<(&str, &str)> = series
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("__name__", "process_cpu"),
                ("service_name", "api"),
                ("env", "prod")
            ]
        );
        assert_eq!(series.samples.len(), 1);
        assert_eq!(series.samples[0].raw_profile, profile().pprof_gz);
    }

    #[test]
    fn connect_errors_split_by_their_code_else_by_the_http_status() {
        let json = |status: u16, body: &str| response(status, &[], body.as_bytes());
        assert_eq!(connect_outcome(&json(200, "{}")), Outcome::Sent);
        assert_eq!(
            connect_outcome(&json(
                400,
                r#"{"code": "invalid_argument", "message": "profile \"x\" is too old"}"#
            )),
            Outcome::Reject(
                "HTTP 400, Connect code invalid_argument: profile \"x\" is too old".into()
            )
        );
        for code in [
            "unavailable",
            "resource_exhausted",
            "deadline_exceeded",
            "internal",
        ] {
            let body = format!(r#"{{"code":"{code}","message":"later"}}"#);
            assert!(
                matches!(connect_outcome(&json(503, &body)), Outcome::Retry(_)),
                "{code}"
            );
        }
        // A 409 aborted is passing though its HTTP status is a 4xx.
        assert!(matches!(
            connect_outcome(&json(409, r#"{"code":"aborted"}"#)),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            connect_outcome(&json(401, r#"{"code":"unauthenticated"}"#)),
            Outcome::Reject(_)
        ));
        // A proxy's page: the status decides.
        assert!(matches!(
            connect_outcome(&json(502, "<html>bad gateway</html>")),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            connect_outcome(&json(404, "404 page not found")),
            Outcome::Reject(_)
        ));
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn http_statuses_split_into_sent_retry_and_reject() {
        assert_eq!(http_outcome(&response(200, &[], b"")), Outcome::Sent);
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(http_outcome(&response(status, &[], b"")), Outcome::Retry(_)),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 413, 422, 301] {
            assert!(
                matches!(
                    http_outcome(&response(status, &[], b"")),
                    Outcome::Reject(_)
                ),
                "{status}"
            );
        }
        let Outcome::Reject(text) = http_outcome(&response(400, &[], b"name: invalid\n")) else {
            panic!()
        };
        assert_eq!(text, "HTTP 400: name: invalid");
    }

    #[test]
    fn grpc_status_is_read_from_headers_or_the_trailer_frame() {
        let ok_body = [grpc_web_frame(&[]), {
            let mut t = grpc_web_frame(b"grpc-status: 0\r\ngrpc-message: \r\n");
            t[0] = 0x80;
            t
        }]
        .concat();
        let ct = ("content-type", GRPC_WEB_CONTENT_TYPE);
        assert_eq!(
            parca_outcome(&response(200, &[ct], &ok_body)),
            Outcome::Sent
        );
        let invalid = response(
            200,
            &[ct, ("grpc-status", "3"), ("grpc-message", "bad%20profile")],
            b"",
        );
        assert_eq!(
            parca_outcome(&invalid),
            Outcome::Reject("gRPC status 3 (INVALID_ARGUMENT): bad profile".into())
        );
        let unavailable = response(200, &[ct, ("grpc-status", "14")], b"");
        assert!(matches!(parca_outcome(&unavailable), Outcome::Retry(_)));
        assert!(matches!(
            parca_outcome(&response(503, &[], b"")),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            parca_outcome(&response(200, &[], b"<html>")),
            Outcome::Retry(_)
        ));
    }

    #[test]
    fn percent_coding_round_trips() {
        let text = "a{b=c,d}/é %";
        assert_eq!(percent_decode(&percent_encode(text)), text);
        assert_eq!(percent_encode("a-b_c.d~"), "a-b_c.d~");
    }
}
