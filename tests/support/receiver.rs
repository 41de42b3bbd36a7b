//! An HTTP/1.1 server on 127.0.0.1 standing in for the push backends in
//! tests: Grafana Pyroscope's `POST /ingest?...` (raw or multipart
//! `profile` body) and its push API (`POST /push.v1.PusherService/Push`,
//! Connect), and Parca's gRPC-Web
//! `POST /parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw`.
//! It can be down (answering 503, or closing connections unanswered), can
//! answer any status, to test retries and rejections, and can speak TLS
//! with a certificate from a CA made for the run.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prost::Message;
use rprof::push::parca_proto::WriteRawRequest;
use rprof::push::pyroscope_proto::PushRequest;
use rustls::pki_types::PrivatePkcs8KeyDer;

pub const PARCA_PATH: &str = "/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw";
pub const PYROSCOPE_PUSH_PATH: &str = "/push.v1.PusherService/Push";

/// One accepted profile.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub path: String,
    /// Percent-decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-case.
    pub headers: Vec<(String, String)>,
    /// The profile as sent (a gzipped pprof).
    pub profile: Vec<u8>,
    /// The series labels of Parca's WriteRaw or Pyroscope's push API
    /// (empty for `/ingest`).
    pub series_labels: Vec<(String, String)>,
}

impl Received {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    /// Answer 503 to everything.
    down: bool,
    /// Close each connection without answering.
    refuse: bool,
    /// Hold each request unanswered until this is cleared.
    stall: bool,
    /// Answer this status (and record nothing) when set.
    status: Option<u16>,
    received: Vec<Received>,
    /// Requests seen, answered or not.
    attempts: usize,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Receiver {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on 127.0.0.1 at a free port.
    pub fn start() -> Receiver {
        Receiver::listen(None)
    }

    /// Speaks TLS only, with a certificate for 127.0.0.1 issued by a CA
    /// made for this receiver; returns the CA's certificate (PEM), which a
    /// client must trust.
    pub fn start_tls() -> (Receiver, String) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "rprof test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &*ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![server.der().clone()],
                PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
            )
            .unwrap();
        (Receiver::listen(Some(Arc::new(config))), ca.pem())
    }

    fn listen(tls: Option<Arc<rustls::ServerConfig>>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let serves_tls = tls.is_some();
        let thread = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let shared = Arc::clone(&shared);
                    let tls = tls.clone();
                    std::thread::spawn(move || match tls {
                        Some(config) => {
                            let Ok(connection) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            let _ = serve(rustls::StreamOwned::new(connection, stream), &shared);
                        }
                        None => {
                            let _ = serve(stream, &shared);
                        }
                    });
                }
            })
        };
        Receiver {
            addr,
            tls: serves_tls,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS receiver).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Down: every request gets 503 Service Unavailable.
    pub fn set_down(&self, down: bool) {
        self.shared.lock().down = down;
    }

    /// Refusing: every connection is closed without an answer.
    pub fn set_refuse(&self, refuse: bool) {
        self.shared.lock().refuse = refuse;
    }

    /// Stalled: requests are read but left unanswered until un-stalled
    /// (a server that hangs).
    pub fn set_stall(&self, stall: bool) {
        self.shared.lock().stall = stall;
    }

    /// Answer `status` to every request (200: back to normal).
    pub fn set_status(&self, status: u16) {
        self.shared.lock().status = (status != 200).then_some(status);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    pub fn attempts(&self) -> usize {
        self.shared.lock().attempts
    }

    /// Waits until `n` profiles have arrived; panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.received.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the receiver got {} profiles in {timeout:?}, not {n}",
                state.received.len()
            );
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
        state.received.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Request {
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &mut impl Read) -> std::io::Result<Request> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| bad("no request line"))?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let path = path.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = Request {
        path,
        query,
        headers,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .ok_or_else(|| bad("no content-length"))?
        .parse()
        .map_err(|_| bad("bad content-length"))?;
    request.body.resize(length, 0);
    reader.read_exact(&mut request.body)?;
    Ok(request)
}

fn respond(
    stream: &mut impl Write,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Test\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn serve(mut stream: impl Read + Write, shared: &Shared) -> std::io::Result<()> {
    if shared.lock().refuse {
        shared.lock().attempts += 1;
        return Ok(()); // Dropped unanswered.
    }
    let request = read_request(&mut stream)?;
    shared.lock().attempts += 1;
    let hung = Instant::now();
    while shared.lock().stall && hung.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (down, status) = {
        let state = shared.lock();
        (state.down, state.status)
    };
    if down {
        return respond(&mut stream, 503, &[], b"test receiver is down");
    }
    if let Some(status) = status {
        return respond(
            &mut stream,
            status,
            &[],
            format!("test receiver says {status}").as_bytes(),
        );
    }
    let received = match request.path.as_str() {
        "/ingest" => match ingest_profile(&request) {
            Ok(profile) => Received {
                profile,
                ..Received::default()
            },
            Err(why) => return respond(&mut stream, 400, &[], why.as_bytes()),
        },
        PYROSCOPE_PUSH_PATH => match push(&request) {
            Ok((series_labels, profile)) => Received {
                profile,
                series_labels,
                ..Received::default()
            },
            Err(why) => {
                let body = format!(r#"{{"code":"invalid_argument","message":"{why}"}}"#);
                let ct = ("Content-Type", "application/json");
                return respond(&mut stream, 400, &[ct], body.as_bytes());
            }
        },
        PARCA_PATH => match write_raw(&request) {
            Ok((series_labels, profile)) => Received {
                profile,
                series_labels,
                ..Received::default()
            },
            Err(why) => {
                let message = why.replace(' ', "%20");
                let ct = ("Content-Type", "application/grpc-web+proto");
                return respond(
                    &mut stream,
                    200,
                    &[ct, ("grpc-status", "3"), ("grpc-message", &message)],
                    b"",
                );
            }
        },
        _ => return respond(&mut stream, 404, &[], b"not found"),
    };
    let is_parca = request.path == PARCA_PATH;
    let received = Received {
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        ..received
    };
    {
        let mut state = shared.lock();
        state.received.push(received);
        shared.changed.notify_all();
    }
    if is_parca {
        // An empty WriteRawResponse, then the trailer frame.
        let trailer = b"grpc-status:0\r\ngrpc-message:\r\n";
        let mut body = vec![0, 0, 0, 0, 0, 0x80];
        body.extend_from_slice(&(trailer.len() as u32).to_be_bytes());
        body.extend_from_slice(trailer);
        respond(
            &mut stream,
            200,
            &[("Content-Type", "application/grpc-web+proto")],
            &body,
        )
    } else if request.path == PYROSCOPE_PUSH_PATH {
        // An empty PushResponse.
        respond(
            &mut stream,
            200,
            &[("Content-Type", "application/proto")],
            b"",
        )
    } else {
        respond(&mut stream, 200, &[], b"")
    }
}

/// Pyroscope's rule: with `format=pprof` the body is the profile;
/// otherwise a multipart form's `profile` part.
fn ingest_profile(request: &Request) -> Result<Vec<u8>, String> {
    let content_type = request.header("content-type").unwrap_or("");
    let format = request
        .query
        .iter()
        .find(|(n, _)| n == "format")
        .map(|(_, v)| v.as_str());
    if format == Some("pprof") || !content_type.starts_with("multipart/form-data") {
        return Ok(request.body.clone());
    }
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .ok_or("multipart without a boundary")?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    for part in split(&request.body, delimiter.as_bytes())
        .into_iter()
        .skip(1)
    {
        let Some(end) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..end]);
        if head.contains("name=\"profile\"") {
            let content = &part[end + 4..];
            return Ok(content.strip_suffix(b"\r\n").unwrap_or(content).to_vec());
        }
    }
    Err("no `profile` part in the form".into())
}

/// Series labels and the raw profile of a WriteRawRequest.
type WriteRaw = (Vec<(String, String)>, Vec<u8>);

/// Decodes the gRPC-Web frame and WriteRawRequest.
fn write_raw(request: &Request) -> Result<WriteRaw, String> {
    let content_type = request.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/grpc-web") {
        return Err(format!("content-type {content_type}"));
    }
    let body = &request.body;
    if body.len() < 5 || body[0] != 0 {
        return Err("no uncompressed data frame".into());
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let message = body.get(5..5 + len).ok_or("torn frame")?;
    let write = WriteRawRequest::decode(message).map_err(|e| e.to_string())?;
    let [series] = write.series.as_slice() else {
        return Err("not one series".into());
    };
    let labels = series
        .labels
        .as_ref()
        .map(|set| {
            set.labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    let [sample] = series.samples.as_slice() else {
        return Err("not one sample".into());
    };
    Ok((labels, sample.raw_profile.clone()))
}

/// Decodes a Connect unary PushRequest: one series with one profile.
fn push(request: &Request) -> Result<WriteRaw, String> {
    let content_type = request.header("content-type").unwrap_or("");
    if content_type != "application/proto" {
        return Err(format!("content-type {content_type}"));
    }
    let push = PushRequest::decode(request.body.as_slice()).map_err(|e| e.to_string())?;
    let [series] = push.series.as_slice() else {
        return Err("not one series".into());
    };
    let labels = series
        .labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    let [sample] = series.samples.as_slice() else {
        return Err("not one sample".into());
    };
    Ok((labels, sample.raw_profile.clone()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut data: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = find(data, delimiter) {
        parts.push(&data[..at]);
        data = &data[at + delimiter.len()..];
    }
    parts.push(data);
    parts
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
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
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
