//! The registry transport (pyc-registry) for Python: a client per registry host, the blobs it
//! serves as sources for `unpack_layers`, and layer uploads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use pyc_registry::{Client, ClientConfig, Compression, Download};

use crate::errors::RegistryError;

fn into_py(e: pyc_registry::Error) -> PyErr {
    let status = match &e {
        pyc_registry::Error::Status { status, .. } => Some(*status),
        _ => None,
    };
    let err = match e {
        pyc_registry::Error::Io { ref source, .. } => match source.raw_os_error() {
            Some(errno) => return pyo3::exceptions::PyOSError::new_err((errno, e.to_string())),
            None => RegistryError::new_err(e.to_string()),
        },
        _ => RegistryError::new_err(e.to_string()),
    };
    Python::attach(|py| {
        let value = err.value(py);
        let _ = value.setattr("kind", "registry");
        let _ = value.setattr("errno", py.None());
        let _ = value.setattr("status", status);
    });
    err
}

/// An HTTP(S) client for one registry host: its CAs and client certificate (certs.d), whether
/// it checks certificates, its proxy. Requests are retried on 429, 5xx and lost connections.
#[pyclass(frozen, module = "pyc_core")]
pub struct RegistryClient {
    inner: Arc<Client>,
}

/// (status, headers with lowercase names, body).
type PyReply<'py> = (u16, Vec<(String, String)>, Bound<'py, PyBytes>);

#[pymethods]
impl RegistryClient {
    #[new]
    #[pyo3(signature = (ca_files=Vec::new(), cert=None, key=None, verify=true, proxy=None, user_agent="pyc".to_string(), read_timeout=60.0))]
    fn new(
        ca_files: Vec<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        verify: bool,
        proxy: Option<String>,
        user_agent: String,
        read_timeout: f64,
    ) -> PyResult<Self> {
        let config =
            ClientConfig { ca_files, client_cert: cert.zip(key), verify, proxy, user_agent, read_timeout: Duration::from_secs_f64(read_timeout.max(0.1)) };
        Ok(RegistryClient { inner: Arc::new(Client::new(&config).map_err(into_py)?) })
    }

    /// Send a request and read its answer (a body over `max_body` bytes is an error).
    #[pyo3(signature = (method, url, headers=Vec::new(), body=None, max_body=4 << 20))]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
        max_body: u64,
    ) -> PyResult<PyReply<'py>> {
        let client = self.inner.clone();
        let reply = py.detach(|| client.request(method, url, &headers, body.as_deref(), max_body)).map_err(into_py)?;
        Ok((reply.status, reply.headers, PyBytes::new(py, &reply.body)))
    }

    /// Upload the layer at `path` (a tar, or a compressed one, decompressed on the way)
    /// compressed ("gzip" or "zstd" at `level`), or as it is ("as-is"), through an upload
    /// session started at `start`; `scratch` is a file path for a registry that wants the blob
    /// whole. Returns (digest, size) of the blob sent. `progress` (a RemoteProgress) counts the
    /// file's bytes read.
    #[pyo3(signature = (start, headers, path, compression, level, scratch, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn upload(
        &self,
        py: Python<'_>,
        start: &str,
        headers: Vec<(String, String)>,
        path: PathBuf,
        compression: &str,
        level: i32,
        scratch: PathBuf,
        progress: Option<PyRef<'_, RemoteProgress>>,
    ) -> PyResult<(String, u64)> {
        let c = match compression {
            "gzip" => Compression::Gzip(level.clamp(0, 9) as u32),
            "zstd" => Compression::Zstd(level),
            "as-is" => Compression::AsIs,
            other => return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown compression {other:?}: gzip, zstd or as-is"))),
        };
        let counter = progress.map(|p| p.0.clone()).unwrap_or_default();
        let client = self.inner.clone();
        let done = py.detach(|| pyc_registry::upload(&client, start, &headers, &path, c, &scratch, counter)).map_err(into_py)?;
        Ok((done.digest, done.size))
    }
}

/// A byte counter Rust advances and Python reads (a progress bar's poll).
#[pyclass(frozen, module = "pyc_core")]
pub struct RemoteProgress(Arc<AtomicU64>);

#[pymethods]
impl RemoteProgress {
    #[new]
    fn new() -> Self {
        RemoteProgress(Arc::default())
    }

    #[getter]
    fn value(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A blob on a registry, to unpack as it downloads: a source for `unpack_layers`, read once.
/// `size` is its descriptor's; `received` counts the bytes read so far.
#[pyclass(frozen, module = "pyc_core")]
pub struct RemoteBlob {
    client: Arc<Client>,
    url: String,
    headers: Vec<(String, String)>,
    size: u64,
    received: Arc<AtomicU64>,
    taken: AtomicBool,
}

#[pymethods]
impl RemoteBlob {
    #[new]
    fn new(client: PyRef<'_, RegistryClient>, url: String, headers: Vec<(String, String)>, size: u64) -> Self {
        RemoteBlob { client: client.inner.clone(), url, headers, size, received: Arc::default(), taken: AtomicBool::new(false) }
    }

    #[getter]
    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    #[getter]
    fn size(&self) -> u64 {
        self.size
    }
}

impl RemoteBlob {
    /// The body as a stream; an error the second time (a body is read once).
    pub fn reader(&self) -> PyResult<Download> {
        if self.taken.swap(true, Ordering::SeqCst) {
            return Err(pyo3::exceptions::PyValueError::new_err(format!("{}: a RemoteBlob is read once", self.url)));
        }
        Ok(Download::new(self.client.clone(), self.url.clone(), self.headers.clone(), self.size, self.received.clone()))
    }
}
