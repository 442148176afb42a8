//! Delta bundles for Python: create one, read one (its header, then its carried layers as
//! unpack jobs, then its trailer), inspect one.

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{blocking, into_py};
use crate::open_source;
use pyc_core::bundle::{self, Bundle, BundleImage, LayerReader, NewLayer};

/// A count another thread adds to, for a progress bar to poll.
#[pyclass(frozen, module = "pyc_core")]
#[derive(Default)]
pub struct Counter(Arc<AtomicU64>);

#[pymethods]
impl Counter {
    #[new]
    fn new() -> Self {
        Counter::default()
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// (names, manifest digest, manifest, config, diff ids) of an image to rebuild.
type ImageArgs = (Vec<String>, String, String, String, Vec<String>);

/// Write a bundle to the fd `out` that rebuilds `images` (their layers `layers`: diff id, tar)
/// from the old images `old_images` (IDs; `old_names` for messages) whose layers are
/// `old_layers`. Returns (the bundle's digest, [(diff id, bytes carried)]).
#[pyfunction]
#[pyo3(signature = (out, images, old_images, old_names, old_layers, layers, done=None))]
#[allow(clippy::too_many_arguments)]
pub fn bundle_create(
    py: Python<'_>,
    out: RawFd,
    images: Vec<ImageArgs>,
    old_images: Vec<String>,
    old_names: Vec<String>,
    old_layers: Vec<(String, PathBuf)>,
    layers: Vec<(String, PathBuf)>,
    done: Option<Bound<'_, Counter>>,
) -> PyResult<(String, Vec<(String, u64)>)> {
    let images = images
        .into_iter()
        .map(|(names, manifest_digest, manifest, config, diff_ids)| BundleImage { names, manifest_digest, manifest, config, diff_ids })
        .collect();
    let layers = layers.into_iter().map(|(diff_id, blob)| NewLayer { diff_id, blob }).collect();
    let counter = done.map(|c| c.get().0.clone());
    // The caller keeps `out` open for the whole call.
    let file = std::mem::ManuallyDrop::new(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(out) });
    let w = std::io::BufWriter::with_capacity(1 << 20, &*file);
    let c = blocking(py, move || {
        let mut tell = |n: u64| {
            if let Some(c) = &counter {
                c.store(n, Ordering::Relaxed)
            }
        };
        bundle::create(images, old_images, old_names, old_layers, layers, w, &mut tell)
    })?;
    Ok((c.digest, c.carried))
}

/// A bundle being read.
#[pyclass(module = "pyc_core")]
pub struct BundleReader(Mutex<Option<Bundle>>);

/// One carried layer of a bundle: an unpack job's source (unpack_layers), read once.
#[pyclass(frozen, module = "pyc_core")]
pub struct BundleLayer(pub Mutex<Option<LayerReader>>);

fn gone() -> PyErr {
    PyValueError::new_err("the bundle was finished")
}

#[pymethods]
impl BundleReader {
    /// Open a bundle from a path or an fd (which stays the caller's), whose first bytes `head`
    /// were read from it already; reads its header.
    #[new]
    #[pyo3(signature = (source, head=Vec::new()))]
    fn open(py: Python<'_>, source: &Bound<'_, PyAny>, head: Vec<u8>) -> PyResult<Self> {
        use std::io::Read;
        let input = std::io::Cursor::new(head).chain(open_source(source)?);
        let b = blocking(py, || Bundle::open(Box::new(std::io::BufReader::with_capacity(1 << 20, input))))?;
        Ok(BundleReader(Mutex::new(Some(b))))
    }

    /// The header, msgpack-encoded (format.rs's Header, by field name).
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let b = g.as_ref().ok_or_else(gone)?;
        let bytes = rmp_serde::to_vec_named(b.header()).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The tars of the required old layers on this machine, in the header's order.
    fn set_sources(&self, paths: Vec<PathBuf>) -> PyResult<()> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.as_mut().ok_or_else(gone)?.set_sources(paths).map_err(into_py)
    }

    /// The next carried layer: (diff id, its tar as an unpack source), or None after the last.
    fn next_layer(&self) -> PyResult<Option<(String, BundleLayer)>> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let next = g.as_mut().ok_or_else(gone)?.next_layer().map_err(into_py)?;
        Ok(next.map(|(d, r)| (d, BundleLayer(Mutex::new(Some(r))))))
    }

    /// Read a carried layer through without unpacking it (the store has it already): its digest,
    /// for the caller to check against its diff id.
    fn digest_layer(&self, py: Python<'_>, layer: &BundleLayer) -> PyResult<String> {
        let mut reader = layer.0.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(|| PyValueError::new_err("a bundle layer is read once"))?;
        blocking(py, move || {
            let mut h = pyc_core::layer::HashingReader::new(&mut reader);
            std::io::copy(&mut h, &mut std::io::sink()).map_err(|e| pyc_core::Error::BadArchive(e.to_string()))?;
            Ok(h.finish().1)
        })
    }

    /// After the last layer: the trailer, checked; the bundle's digest.
    fn finish(&self, py: Python<'_>) -> PyResult<String> {
        let b = self.0.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(gone)?;
        blocking(py, move || b.finish())
    }
}

/// (header as msgpack, [(diff id, bytes carried)], size, digest).
type Inspected<'py> = (Bound<'py, PyBytes>, Vec<(String, u64)>, u64, String);

/// Read a bundle whole (path or fd) and check it: (header as msgpack, [(diff id, bytes carried)],
/// its size, its digest).
#[pyfunction]
pub fn bundle_inspect<'py>(py: Python<'py>, source: &Bound<'py, PyAny>) -> PyResult<Inspected<'py>> {
    let input = open_source(source)?;
    let seen = blocking(py, || bundle::inspect(Box::new(std::io::BufReader::with_capacity(1 << 20, input))))?;
    let header = rmp_serde::to_vec_named(&seen.header).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((PyBytes::new(py, &header), seen.carried, seen.size, seen.digest))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Counter>()?;
    m.add_class::<BundleReader>()?;
    m.add_class::<BundleLayer>()?;
    m.add_function(wrap_pyfunction!(bundle_create, m)?)?;
    m.add_function(wrap_pyfunction!(bundle_inspect, m)?)?;
    Ok(())
}
