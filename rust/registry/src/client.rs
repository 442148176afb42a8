//! One registry host's HTTP client: its TLS trust, its proxy, a pool of kept-alive
//! connections; requests retried with back-off on 429, 5xx and lost connections.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use ureq::config::RedirectAuthHeaders;
use ureq::http::Response;
use ureq::{Agent, Body, Proxy};

use crate::error::{Error, Result};
use crate::tls;

/// Tries of a request that fails transiently, and the pause before each retry.
const BACKOFF: [Duration; 3] = [Duration::from_millis(200), Duration::from_millis(700), Duration::from_millis(2000)];
/// The longest Retry-After honoured; a longer one fails now, with the registry's words.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

pub struct ClientConfig {
    /// CAs trusted besides the system's (a certs.d directory's `*.crt`).
    pub ca_files: Vec<PathBuf>,
    /// A client certificate and its key (a certs.d directory's `*.cert` and `*.key`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// false: any certificate is accepted (`--tls-verify=false`, an `insecure` registry).
    pub verify: bool,
    /// The proxy to reach this host through (HTTP(S)_PROXY, unless NO_PROXY names the host).
    pub proxy: Option<String>,
    pub user_agent: String,
    /// No byte received for this long ends a request (the connection is taken as lost).
    pub read_timeout: Duration,
}

pub struct Client {
    agent: Agent,
}

/// A response, its body read (up to the caller's limit).
pub struct Reply {
    pub status: u16,
    /// Header names lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Client {
    pub fn new(c: &ClientConfig) -> Result<Self> {
        let client_cert = c.client_cert.as_ref().map(|(a, b)| (a.as_path(), b.as_path()));
        let tls = tls::config(&c.ca_files, client_cert, c.verify)?;
        let proxy = match &c.proxy {
            Some(p) => Some(Proxy::new(p).map_err(|e| Error::Config(format!("proxy {p}: {e}")))?),
            None => None,
        };
        let config = Agent::config_builder()
            .tls_config(tls)
            .proxy(proxy)
            .http_status_as_error(false)
            .user_agent(c.user_agent.as_str())
            // A blob's bytes are hashed as they come: never a transparent decoding.
            .accept_encoding("identity")
            .redirect_auth_headers(RedirectAuthHeaders::SameHost)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(c.read_timeout))
            .max_idle_connections_per_host(8)
            .build();
        Ok(Client { agent: config.into() })
    }

    /// Send a request, retried while it fails transiently; the body read up to `max_body`
    /// bytes (more is an error: a manifest or token is small). `body` is sent as it is, with
    /// its length.
    pub fn request(&self, method: &str, url: &str, headers: &[(String, String)], body: Option<&[u8]>, max_body: u64) -> Result<Reply> {
        retrying(|| {
            let mut resp = self.send(method, url, headers, body)?;
            let status = resp.status().as_u16();
            let headers = header_list(&resp);
            if status == 429 || status >= 500 {
                let wait = retry_after(&headers);
                return Err((Error::Status { url: url.to_string(), status, message: reason(status).into() }, wait));
            }
            let mut data = Vec::new();
            if method != "HEAD" {
                let mut r = resp.body_mut().with_config().limit(max_body).reader();
                r.read_to_end(&mut data).map_err(|e| (Error::lost(url, &e), None))?;
            }
            Ok(Reply { status, headers, body: data })
        })
    }

    /// Send a request once and hand back the response with its body unread.
    pub fn send(&self, method: &str, url: &str, headers: &[(String, String)], body: Option<&[u8]>) -> Result<Response<Body>, (Error, Option<Duration>)> {
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let bad = |e: ureq::http::Error| (Error::Config(format!("{method} {url}: {e}")), None);
        let sent = match body {
            Some(b) => self.agent.run(req.body(b.to_vec()).map_err(bad)?),
            None => self.agent.run(req.body(()).map_err(bad)?),
        };
        sent.map_err(|e| (Error::transport(url, e), None))
    }

    pub(crate) fn agent(&self) -> &Agent {
        &self.agent
    }
}

/// Run `attempt` until it succeeds, fails for good, or the back-off is spent. An error may
/// come with how long the server asked to wait (Retry-After).
pub(crate) fn retrying<T>(mut attempt: impl FnMut() -> Result<T, (Error, Option<Duration>)>) -> Result<T> {
    let mut tries = 0;
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err((e, asked)) => {
                if !e.is_transient() || tries == BACKOFF.len() || asked.is_some_and(|d| d > MAX_RETRY_AFTER) {
                    return Err(e);
                }
                std::thread::sleep(asked.unwrap_or(BACKOFF[tries]).max(BACKOFF[tries]));
                tries += 1;
            }
        }
    }
}

pub(crate) fn header_list(resp: &Response<Body>) -> Vec<(String, String)> {
    resp.headers().iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let v = headers.iter().find(|(k, _)| k == "retry-after")?;
    v.1.trim().parse::<u64>().ok().map(Duration::from_secs)
}

pub(crate) fn reason(status: u16) -> &'static str {
    ureq::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}
