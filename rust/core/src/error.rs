//! The crate's one error type. Each variant has a `Kind` (the same kinds, by the same names, as
//! Python's `pyc.errors.Kind`: the binding passes `kind().as_str()` on) and keeps the errno of
//! a failed call as data. `exit_code()` is docker's exit code for a container start that fails
//! with the error (127, 126, else 125): the monitor records it, and Python's table for `run`
//! gives the same (tests/unit/test_errors.py checks it against `pyc_core.ERROR_KINDS`).

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;
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

    /// A system call failed: what was being done, and its errno.
    #[error("{what}: {}", errno.desc().to_lowercase())]
    Sys { what: String, errno: Errno },

    /// Something that cannot happen went wrong (an unexpected wait status, a thread that
    /// panicked): no errno to keep.
    #[error("{0}")]
    Internal(String),

    /// The container's command does not exist (docker's exit code 127).
    #[error("exec: {0}: executable file not found in $PATH")]
    CommandNotFound(String),

    /// The container's command exists but cannot be run (docker's exit code 126).
    #[error("exec: {0}: permission denied")]
    CommandNotExecutable(String),

    /// The container failed before its command started: the step, and the errno of the call
    /// that failed when there was one.
    #[error("container start failed: {what}{}", with_errno(*errno))]
    Start { what: String, errno: Option<Errno> },

    /// `exec` failed before its command started.
    #[error("exec failed: {what}{}", with_errno(*errno))]
    Exec { what: String, errno: Option<Errno> },

    #[error("cgroup {path}: {message}")]
    Cgroup { path: PathBuf, message: String },

    /// The content of a layer or archive is wrong: malformed, truncated, unsafe.
    #[error("{0}")]
    BadArchive(String),
}

fn with_errno(errno: Option<Errno>) -> String {
    errno.map(|e| format!(": {}", e.desc().to_lowercase())).unwrap_or_default()
}

/// What kind of failure an error is, for whoever turns it into an exit code or an exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A config or spec that cannot be used.
    InvalidArgument,
    /// A tar, layer or archive that is malformed, truncated or unsafe.
    BadInput,
    CommandNotFound,
    CommandNotExecutable,
    /// The container or exec process failed before its command started.
    StartFailed,
    /// A system call, an I/O or a cgroup operation failed.
    System,
}

impl Kind {
    pub const ALL: [Kind; 6] = [Kind::InvalidArgument, Kind::BadInput, Kind::CommandNotFound, Kind::CommandNotExecutable, Kind::StartFailed, Kind::System];

    /// The name Python's `pyc.errors.Kind` knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::InvalidArgument => "invalid argument",
            Kind::BadInput => "bad input",
            Kind::CommandNotFound => "command not found",
            Kind::CommandNotExecutable => "command not executable",
            Kind::StartFailed => "start failed",
            Kind::System => "system",
        }
    }

    /// docker's exit code when a container start (`run`, `start -a`) fails this way.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::CommandNotFound => 127,
            Kind::CommandNotExecutable => 126,
            _ => 125,
        }
    }
}

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub fn sys(what: impl std::fmt::Display, errno: Errno) -> Self {
        Error::Sys { what: what.to_string(), errno }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Error::InvalidConfig(_) => Kind::InvalidArgument,
            Error::BadArchive(_) => Kind::BadInput,
            Error::CommandNotFound(_) => Kind::CommandNotFound,
            Error::CommandNotExecutable(_) => Kind::CommandNotExecutable,
            Error::Start { .. } | Error::Exec { .. } => Kind::StartFailed,
            Error::Io { .. } | Error::Sys { .. } | Error::Internal(_) | Error::Cgroup { .. } => Kind::System,
        }
    }

    /// The errno of the call that failed, where one did.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Sys { errno, .. } => Some(*errno as i32),
            Error::Start { errno, .. } | Error::Exec { errno, .. } => errno.map(|e| e as i32),
            _ => None,
        }
    }

    /// docker's exit code for a container start that fails with this error.
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_exit_codes_are_dockers() {
        assert_eq!(Error::CommandNotFound("x".into()).exit_code(), 127);
        assert_eq!(Error::CommandNotExecutable("x".into()).exit_code(), 126);
        assert_eq!(Error::Start { what: "mount /x".into(), errno: Some(Errno::EPERM) }.exit_code(), 125);
        assert_eq!(Error::BadArchive("x".into()).kind(), Kind::BadInput);
        assert_eq!(Error::InvalidConfig("x".into()).kind().as_str(), "invalid argument");
    }

    #[test]
    fn errno_is_kept_as_data() {
        let e = Error::sys("open /x", Errno::ENOENT);
        assert_eq!((e.errno(), e.kind(), e.to_string().as_str()), (Some(libc::ENOENT), Kind::System, "open /x: no such file or directory"));
        let e = Error::io("read", "/y", io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.errno(), Some(libc::ENOSPC));
        let e = Error::Start { what: "mount /data".into(), errno: Some(Errno::EACCES) };
        assert_eq!((e.errno(), e.to_string().as_str()), (Some(libc::EACCES), "container start failed: mount /data: permission denied"));
        assert_eq!(Error::Exec { what: "no process".into(), errno: None }.to_string(), "exec failed: no process");
    }

    #[test]
    fn every_kind_has_its_own_name() {
        let names: std::collections::HashSet<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
