use std::io;
use std::path::PathBuf;

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One variant per kind of failure a caller may want to tell apart; messages are lowercase
/// and carry the path or the step that failed.
#[derive(Debug, Error)]
pub enum Error {
    #[error("invalid config: {0}")]
    InvalidConfig(String),

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{0}")]
    Sys(String),

    /// The container's command does not exist (docker's exit code 127).
    #[error("exec: {0}: executable file not found in $PATH")]
    CommandNotFound(String),

    /// The container's command exists but cannot be run (docker's exit code 126).
    #[error("exec: {0}: permission denied")]
    CommandNotExecutable(String),

    /// The container failed before its command started.
    #[error("container start failed: {0}")]
    Start(String),

    /// `exec` failed before its command started.
    #[error("exec failed: {0}")]
    Exec(String),

    #[error("cgroup {path}: {message}")]
    Cgroup { path: PathBuf, message: String },

    /// The content of a layer or archive is wrong: malformed, truncated, unsafe.
    #[error("{0}")]
    BadArchive(String),
}

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub fn sys(what: impl std::fmt::Display, errno: nix::errno::Errno) -> Self {
        Error::Sys(format!("{what}: {}", errno.desc().to_lowercase()))
    }
}

/// Attach the operation and path to an io::Error.
pub trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
