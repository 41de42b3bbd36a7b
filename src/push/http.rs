//! The network side: one blocking HTTP/1.1 POST per try (ureq, rustls).

use std::io::Read;
use std::time::Duration;

use super::wire::{Request, Response};
use super::Auth;

/// Sends a request; `Err` is a connection-level failure (no HTTP answer).
/// A trait so the sender loop can be tested without sockets.
pub(crate) trait Transport: Send {
    fn post(&self, request: &Request) -> Result<Response, String>;
}

/// The most of a response body kept: enough for an error message.
const MAX_BODY: u64 = 64 * 1024;

pub(crate) struct HttpTransport {
    agent: ureq::Agent,
    authorization: Option<String>,
    grpc_web: bool,
}

impl HttpTransport {
    pub fn new(timeout: Duration, auth: Option<&Auth>, grpc_web: bool) -> HttpTransport {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            // A redirect would carry the Authorization header elsewhere.
            .redirects(0)
            .user_agent(concat!("rprof/", env!("CARGO_PKG_VERSION")))
            .build();
        HttpTransport {
            agent,
            authorization: auth.map(Auth::header_value),
            grpc_web,
        }
    }
}

fn read_response(response: ureq::Response) -> Response {
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|name| {
            let value = response.header(&name)?.to_string();
            Some((name.to_ascii_lowercase(), value))
        })
        .collect();
    let mut body = Vec::new();
    // A body cut short still has the status; what was read is enough.
    let _ = response.into_reader().take(MAX_BODY).read_to_end(&mut body);
    Response {
        status,
        headers,
        body,
    }
}

impl Transport for HttpTransport {
    fn post(&self, request: &Request) -> Result<Response, String> {
        let mut call = self
            .agent
            .post(&request.url)
            .set("Content-Type", request.content_type);
        if self.grpc_web {
            call = call.set("X-Grpc-Web", "1");
        }
        if let Some(value) = &self.authorization {
            call = call.set("Authorization", value);
        }
        match call.send_bytes(&request.body) {
            Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(read_response(response)),
            // ureq's Display of a transport error names the URL; kind and
            // message do not, and the URL carries no credentials anyway.
            Err(ureq::Error::Transport(fault)) => Err(match fault.message() {
                Some(message) => format!("{}: {message}", fault.kind()),
                None => fault.kind().to_string(),
            }),
        }
    }
}
