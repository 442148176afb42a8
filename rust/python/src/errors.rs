//! One Python exception class per kind of pyc_core::Error, and the helper every blocking call
//! uses. Every exception carries `kind` (the error's `Kind::as_str`, a name Python's
//! `pyc.errors.Kind` knows) and `errno` (the errno of the call that failed, or None); I/O
//! errors are OSError (FileNotFoundError, PermissionError, ...) with their errno.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError};
use pyo3::prelude::*;

use pyc_core::error::Kind;
use pyc_core::Error;

create_exception!(pyc_core, PycCoreError, PyException, "Base of every error pyc_core raises.");
create_exception!(pyc_core, ConfigError, PycCoreError, "The run config or spec is invalid.");
create_exception!(pyc_core, StartError, PycCoreError, "The container failed before its command started.");
create_exception!(pyc_core, CommandNotFound, StartError, "The command does not exist in the container (exit code 127).");
create_exception!(pyc_core, CommandNotExecutable, StartError, "The command cannot be executed (exit code 126).");
create_exception!(pyc_core, ArchiveError, PycCoreError, "A tar or layer is malformed, truncated or unsafe.");
create_exception!(pyc_core, CgroupError, PycCoreError, "A cgroup could not be set up or removed.");
create_exception!(
    pyc_core,
    RegistryError,
    PycCoreError,
    "A registry could not be reached, or answered what the step cannot use (`status`: its HTTP status, or None)."
);

pub fn into_py(e: Error) -> PyErr {
    let msg = e.to_string();
    let (kind, errno) = (e.kind().as_str(), e.errno());
    let err = match e {
        Error::InvalidConfig(_) => ConfigError::new_err(msg),
        Error::CommandNotFound(_) => CommandNotFound::new_err(msg),
        Error::CommandNotExecutable(_) => CommandNotExecutable::new_err(msg),
        Error::Start { .. } | Error::Exec { .. } => StartError::new_err(msg),
        Error::BadArchive(_) => ArchiveError::new_err(msg),
        Error::Cgroup { .. } => CgroupError::new_err(msg),
        // Keep errno so Python sees FileNotFoundError, PermissionError, OSError(ENOSPC), ...
        Error::Io { ref source, .. } => match source.raw_os_error() {
            Some(errno) => PyOSError::new_err((errno, msg)),
            None => PyOSError::new_err(msg),
        },
        Error::Sys { .. } | Error::Internal(_) => PycCoreError::new_err(msg),
    };
    Python::attach(|py| {
        let value = err.value(py);
        // Setting an attribute of a new exception object does not fail.
        let _ = value.setattr("kind", kind);
        let _ = value.setattr("errno", errno);
    });
    err
}

/// Run `f` with the GIL released; map its error.
pub fn blocking<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    py.detach(f).map_err(into_py)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PycCoreError", py.get_type::<PycCoreError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("StartError", py.get_type::<StartError>())?;
    m.add("CommandNotFound", py.get_type::<CommandNotFound>())?;
    m.add("CommandNotExecutable", py.get_type::<CommandNotExecutable>())?;
    m.add("ArchiveError", py.get_type::<ArchiveError>())?;
    m.add("CgroupError", py.get_type::<CgroupError>())?;
    m.add("RegistryError", py.get_type::<RegistryError>())?;
    // The defaults, which every raised exception overrides.
    let base = py.get_type::<PycCoreError>();
    base.setattr("kind", Kind::System.as_str())?;
    base.setattr("errno", py.None())?;
    py.get_type::<RegistryError>().setattr("status", py.None())?;
    // Every kind an exception may carry, with docker's exit code for a run that fails so.
    let kinds = pyo3::types::PyDict::new(py);
    for k in Kind::ALL {
        kinds.set_item(k.as_str(), k.exit_code())?;
    }
    m.add("ERROR_KINDS", kinds)?;
    Ok(())
}
