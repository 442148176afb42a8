use std::io;
use std::path::PathBuf;

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Messages are lowercase and name the URL or file they are about.
#[derive(Debug, Error)]
pub enum Error {
    /// No answer: the connection, TLS, a timeout, a malformed response; `transient` when it
    /// was lost (reset, cut short, timed out), which trying again may mend.
    #[error("{url}: {message}")]
    Transport { url: String, message: String, transient: bool },

    /// An answer that is not what the protocol step needs.
    #[error("{url}: {status} {message}")]
    Status { url: String, status: u16, message: String },

    /// A CA, certificate or key that cannot be used; a bad URL or header.
    #[error("{0}")]
    Config(String),

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// A ureq error: transient when the connection was lost, not when it could not be made
    /// (nothing listens, no TLS there, a certificate refused), which would only fail again.
    pub(crate) fn transport(url: &str, e: ureq::Error) -> Self {
        let transient = match &e {
            ureq::Error::Io(io) => lost(io.kind()),
            ureq::Error::Timeout(_) => true,
            _ => false,
        };
        Error::Transport { url: url.to_string(), message: words(&e.to_string()), transient }
    }

    /// An I/O error of a body being read or sent.
    pub(crate) fn lost(url: &str, e: &io::Error) -> Self {
        Error::Transport { url: url.to_string(), message: words(&e.to_string()), transient: lost(e.kind()) }
    }

    /// Whether trying again may help: a lost connection, or a 429 or 5xx answer.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { transient, .. } => *transient,
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

fn lost(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(kind, ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | TimedOut | Interrupted)
}

/// ureq's words, lowercase at the start like the rest of pyc's messages.
fn words(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
