//! The network side: one blocking HTTP/1.1 POST per try (ureq, rustls).

use std::io::Read;
use std::sync::Arc;
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
}

impl HttpTransport {
    /// `tls`: a client config with extra CA roots; `None` keeps ureq's own
    /// (Mozilla's roots).
    pub fn new(
        timeout: Duration,
        auth: Option<&Auth>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> HttpTransport {
        let mut builder = ureq::AgentBuilder::new()
            .timeout(timeout)
            // A redirect would carry the Authorization header elsewhere.
            .redirects(0)
            .user_agent(concat!("rprof/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls {
            builder = builder.tls_config(tls);
        }
        HttpTransport {
            agent: builder.build(),
            authorization: auth.map(Auth::header_value),
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
        for (name, value) in &request.headers {
            call = call.set(name, value);
        }
        if let Some(value) = &self.authorization {
            call = call.set("Authorization", value);
        }
        match call.send_bytes(&request.body) {
            Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(read_response(response)),
            // ureq's Display of a transport error names the URL (the caller
            // does); kind, message and cause do not. The cause is what says
            // why: "invalid peer certificate: UnknownIssuer", "Connection
            // refused".
            Err(ureq::Error::Transport(fault)) => {
                let mut text = match fault.message() {
                    Some(message) => format!("{}: {message}", fault.kind()),
                    None => fault.kind().to_string(),
                };
                if let Some(cause) = std::error::Error::source(&fault) {
                    text.push_str(&format!(": {cause}"));
                }
                Err(text)
            }
        }
    }
}
