//! The `pyc_core` Python module: thin wrappers over the pyc-core crate. Every blocking call goes
//! through `blocking`, which releases the GIL; every error becomes one Python exception class.

mod bundle;
mod errors;
mod registry;
mod wire;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use errors::{blocking, into_py};
use pyc_core::cgroup::{Cgroup, Limits};
use pyc_core::container::{self, ExecConfig, Output, RunConfig, Stdio};
use pyc_core::journal::{self, Event};
use pyc_core::layer;

/// What a container left when it ended.
#[pyclass(frozen, get_all, module = "pyc_core")]
struct RunResult {
    pid: i32,
    /// The exit code as a shell shows it: the code, or 128 + the signal that killed it.
    status: i32,
    signal: Option<i32>,
    stdout: Option<Py<PyBytes>>,
    stderr: Option<Py<PyBytes>>,
    oom_killed: bool,
}

impl RunResult {
    fn new(py: Python<'_>, out: container::Outcome) -> Self {
        let bytes = |b: Vec<u8>| PyBytes::new(py, &b).unbind();
        RunResult {
            pid: out.pid,
            status: out.status,
            signal: out.signal,
            stdout: out.stdout.map(bytes),
            stderr: out.stderr.map(bytes),
            oom_killed: out.oom_killed,
        }
    }
}

#[pymethods]
impl RunResult {
    fn __repr__(&self) -> String {
        format!("RunResult(pid={}, status={}, signal={:?})", self.pid, self.status, self.signal)
    }
}

fn output(fd: Option<RawFd>) -> Output {
    fd.map(Output::Fd).unwrap_or(Output::Capture)
}

/// Start a container from a msgpack run config and wait for it. `stdin` None is /dev/null;
/// `stdout` / `stderr` None are captured and returned.
#[pyfunction]
#[pyo3(signature = (config, stdin=None, stdout=None, stderr=None))]
fn run(py: Python<'_>, config: &[u8], stdin: Option<RawFd>, stdout: Option<RawFd>, stderr: Option<RawFd>) -> PyResult<RunResult> {
    let cfg = RunConfig::from_msgpack(config).map_err(into_py)?;
    let stdio = Stdio { stdin, stdout: output(stdout), stderr: output(stderr) };
    let out = blocking(py, || container::run(&cfg, stdio))?;
    Ok(RunResult::new(py, out))
}

/// Run a command in a running container (a msgpack exec config: the process and the
/// container's cgroup) and wait for it, unless the config says detach. Stdio as for `run`.
#[pyfunction]
#[pyo3(signature = (config, stdin=None, stdout=None, stderr=None))]
fn exec_in(py: Python<'_>, config: &[u8], stdin: Option<RawFd>, stdout: Option<RawFd>, stderr: Option<RawFd>) -> PyResult<RunResult> {
    let cfg = ExecConfig::from_msgpack(config).map_err(into_py)?;
    let stdio = Stdio { stdin, stdout: output(stdout), stderr: output(stderr) };
    let out = blocking(py, || container::exec_in(&cfg, stdio))?;
    Ok(RunResult::new(py, out))
}

/// Open a source given as a path or as a file descriptor (which stays the caller's).
pub(crate) fn open_source(source: &Bound<'_, PyAny>) -> PyResult<File> {
    if let Ok(fd) = source.extract::<RawFd>() {
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        return Ok(unsafe { File::from_raw_fd(dup) });
    }
    let path: PathBuf = source.extract()?;
    File::open(&path).map_err(|e| into_py(pyc_core::Error::io("open", path, e)))
}

/// Unpack a layer tar (plain, gzip or zstd) from a path or fd into the empty directory `dest`;
/// with `blob`, keep the uncompressed tar there. A hardlink to a file the layer does not hold
/// is a copy of it from `lowers`, the dirs of the layers below, top-most first. Returns
/// (diff_id, size of the tar).
#[pyfunction]
#[pyo3(signature = (source, dest, blob=None, lowers=Vec::new()))]
fn unpack_layer(py: Python<'_>, source: &Bound<'_, PyAny>, dest: PathBuf, blob: Option<PathBuf>, lowers: Vec<PathBuf>) -> PyResult<(String, u64)> {
    let job = layer::Job { input: Box::new(open_source(source)?), dest, blob, lowers };
    // A batch of one: unpack_all also makes the hardlinks into the layers below.
    let u = blocking(py, || layer::unpack_all(vec![job]).pop().expect("one job, one result"))?;
    Ok((u.diff_id, u.size))
}

/// A job's input: a path or fd as for unpack_layer, (path, offset, length), the bytes of an
/// archive member read in place, or a RemoteBlob, a registry's blob read as it downloads.
fn job_input(source: &Bound<'_, PyAny>) -> PyResult<Box<dyn std::io::Read + Send>> {
    use std::io::{Read, Seek, SeekFrom};
    if let Ok(blob) = source.cast::<registry::RemoteBlob>() {
        return Ok(Box::new(blob.get().reader()?));
    }
    if let Ok(layer) = source.cast::<bundle::BundleLayer>() {
        let reader = layer.get().0.lock().unwrap_or_else(|e| e.into_inner()).take();
        return reader.map(|r| Box::new(r) as Box<dyn Read + Send>).ok_or_else(|| pyo3::exceptions::PyValueError::new_err("a bundle layer is read once"));
    }
    if let Ok((path, offset, length)) = source.extract::<(PathBuf, u64, u64)>() {
        let mut f = File::open(&path).map_err(|e| into_py(pyc_core::Error::io("open", &path, e)))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| into_py(pyc_core::Error::io("seek", &path, e)))?;
        return Ok(Box::new(f.take(length)));
    }
    Ok(Box::new(open_source(source)?))
}

/// (source, dest, blob, lowers), as Python passes one unpack job.
type JobArgs<'py> = (Bound<'py, PyAny>, PathBuf, Option<PathBuf>, Vec<PathBuf>);

/// Unpack several layers at once, on threads, the GIL released. `jobs` are (source, dest,
/// blob, lowers) as for unpack_layer; a source may also be (path, offset, length), and lowers
/// may name the dests of earlier jobs. Returns, per job, (diff_id, size, digest of the source
/// bytes as they came), or the exception it raised.
#[pyfunction]
fn unpack_layers(py: Python<'_>, jobs: Vec<JobArgs<'_>>) -> PyResult<Vec<Py<PyAny>>> {
    let jobs =
        jobs.into_iter().map(|(source, dest, blob, lowers)| Ok(layer::Job { input: job_input(&source)?, dest, blob, lowers })).collect::<PyResult<Vec<_>>>()?;
    let results = py.detach(|| layer::unpack_all(jobs));
    results
        .into_iter()
        .map(|r| match r {
            Ok(u) => Ok((u.diff_id, u.size, u.digest).into_pyobject(py)?.into_any().unbind()),
            Err(e) => Ok(into_py(e).into_value(py).into_any()),
        })
        .collect()
}

/// Write the directory `src` as a tar file `out`. Returns (digest, size).
#[pyfunction]
#[pyo3(signature = (src, out, deterministic=false))]
fn tar_directory(py: Python<'_>, src: PathBuf, out: PathBuf, deterministic: bool) -> PyResult<(String, u64)> {
    blocking(py, || {
        let f = File::create(&out).map_err(|e| pyc_core::Error::io("create", &out, e))?;
        let r = layer::tar_directory(&src, &f, deterministic)?;
        f.sync_all().map_err(|e| pyc_core::Error::io("sync", &out, e))?;
        Ok(r)
    })
}

/// A container's changes from its upper dir, against its image's layer dirs (top-most first):
/// [(kind, path)], kind "A", "C" or "D", sorted by path.
#[pyfunction]
fn diff_upper(py: Python<'_>, upper: PathBuf, lowers: Vec<PathBuf>) -> PyResult<Vec<(String, String)>> {
    let changes = blocking(py, || layer::changes(&upper, &lowers))?;
    Ok(changes.into_iter().map(|(k, p)| (k.to_string(), p.to_string_lossy().into_owned())).collect())
}

/// Write an overlayfs upper dir as an OCI layer tar file `out`, synced. Returns (digest, size).
#[pyfunction]
fn tar_upper(py: Python<'_>, upper: PathBuf, out: PathBuf) -> PyResult<(String, u64)> {
    blocking(py, || {
        let f = File::create(&out).map_err(|e| pyc_core::Error::io("create", &out, e))?;
        let r = layer::upper_to_layer(&upper, &f)?;
        f.sync_all().map_err(|e| pyc_core::Error::io("sync", &out, e))?;
        Ok(r)
    })
}

/// Write the merged view of `lowers` (top-most first) as a tar to the fd `out`, mounting it on
/// `mountpoint` in a mount namespace that lives only as long as the call.
#[pyfunction]
fn export_overlay(py: Python<'_>, lowers: Vec<PathBuf>, mountpoint: PathBuf, out: RawFd) -> PyResult<()> {
    let dup = unsafe { libc::fcntl(out, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let file = unsafe { File::from_raw_fd(dup) };
    blocking(py, || layer::export_overlay(lowers, mountpoint, file))
}

/// (digest, size) of a file, streamed.
#[pyfunction]
fn sha256_file(py: Python<'_>, path: PathBuf) -> PyResult<(String, u64)> {
    blocking(py, || layer::sha256_file(&path))
}

/// Append the file `src` to the open file or pipe `out` (at its offset), in the kernel.
#[pyfunction]
fn copy_file_to(py: Python<'_>, src: PathBuf, out: RawFd) -> PyResult<u64> {
    // The caller keeps `out` open for the whole call.
    let out = unsafe { std::os::fd::BorrowedFd::borrow_raw(out) };
    blocking(py, || pyc_core::blobcopy::copy_file_to(&src, out))
}

/// 2 on a pure cgroup v2 host, 1 on v1 and hybrid hosts.
#[pyfunction]
#[pyo3(signature = (root=PathBuf::from("/sys/fs/cgroup")))]
fn cgroup_version(root: PathBuf) -> PyResult<u8> {
    let layout = pyc_core::cgroup::Layout::detect(&root).map_err(into_py)?;
    Ok(if layout.is_v2() { 2 } else { 1 })
}

/// Remove a container's cgroup (`path` under every hierarchy), killing what is left in it.
#[pyfunction]
#[pyo3(signature = (path, root=PathBuf::from("/sys/fs/cgroup")))]
fn remove_cgroup(py: Python<'_>, path: String, root: PathBuf) -> PyResult<()> {
    blocking(py, || Cgroup::open(&root, &path)?.remove())
}

/// What a container's cgroup has used: cpu time, memory, pids, block I/O, OOM kills.
#[pyfunction]
#[pyo3(signature = (path, root=PathBuf::from("/sys/fs/cgroup")))]
fn cgroup_stats(py: Python<'_>, path: String, root: PathBuf) -> PyResult<CgroupStats> {
    let s = blocking(py, || Cgroup::open(&root, &path)?.stats())?;
    Ok(CgroupStats {
        cpu_usage_ns: s.cpu_usage_ns,
        memory_usage: s.memory_usage,
        memory_limit: s.memory_limit,
        pids: s.pids,
        pids_limit: s.pids_limit,
        io_read_bytes: s.io_read_bytes,
        io_write_bytes: s.io_write_bytes,
        oom_kills: s.oom_kills,
    })
}

/// Change the limits of a running container: `resources` is the OCI `linux.resources` object,
/// msgpack-encoded.
#[pyfunction]
#[pyo3(signature = (path, resources, root=PathBuf::from("/sys/fs/cgroup")))]
fn update_cgroup(py: Python<'_>, path: String, resources: &[u8], root: PathBuf) -> PyResult<()> {
    let r: oci_spec::runtime::LinuxResources = rmp_serde::from_slice(resources).map_err(|e| into_py(pyc_core::Error::InvalidConfig(e.to_string())))?;
    blocking(py, || {
        let cg = Cgroup::open(&root, &path)?;
        if !cg.dirs().any(|d| d.is_dir()) {
            return Err(pyc_core::Error::Cgroup { path: root.join(&path), message: "no such cgroup (is the container running?)".into() });
        }
        cg.apply(&Limits::from_oci(&r))
    })
}

#[pyclass(frozen, get_all, module = "pyc_core")]
struct CgroupStats {
    cpu_usage_ns: u64,
    memory_usage: u64,
    memory_limit: Option<u64>,
    pids: u64,
    pids_limit: Option<u64>,
    io_read_bytes: u64,
    io_write_bytes: u64,
    oom_kills: u64,
}

/// Freeze every process of a container's cgroup (`pyc pause`); returns once all are frozen.
#[pyfunction]
#[pyo3(signature = (path, root=PathBuf::from("/sys/fs/cgroup")))]
fn freeze_cgroup(py: Python<'_>, path: String, root: PathBuf) -> PyResult<()> {
    blocking(py, || Cgroup::open(&root, &path)?.freeze())
}

/// Thaw a container's cgroup (`pyc unpause`).
#[pyfunction]
#[pyo3(signature = (path, root=PathBuf::from("/sys/fs/cgroup")))]
fn thaw_cgroup(py: Python<'_>, path: String, root: PathBuf) -> PyResult<()> {
    blocking(py, || Cgroup::open(&root, &path)?.thaw())
}

/// The pids of a container's cgroup.
#[pyfunction]
#[pyo3(signature = (path, root=PathBuf::from("/sys/fs/cgroup")))]
fn cgroup_pids(py: Python<'_>, path: String, root: PathBuf) -> PyResult<Vec<i32>> {
    blocking(py, || Cgroup::open(&root, &path)?.pids())
}

/// Append events to the events journal at `path` in one write: each (type, action, actor id,
/// attributes), in docker's shape (pyc_core::journal).
#[pyfunction]
fn log_events(py: Python<'_>, path: PathBuf, events: Vec<(String, String, String, BTreeMap<String, String>)>) -> PyResult<()> {
    blocking(py, || {
        let events: Vec<Event> = events
            .iter()
            .map(|(kind, action, id, attributes)| Event { kind, action, id, attributes: attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect() })
            .collect();
        journal::append(&path, &events, journal::max_size())
    })
}

/// How overlay mounts are made here: "fsconfig" (lowerdir+, Linux 6.8) or "legacy" (mount(2)).
#[pyfunction]
fn overlay_method() -> PyResult<&'static str> {
    Ok(match pyc_core::overlay::Method::for_this_kernel().map_err(into_py)? {
        pyc_core::overlay::Method::Fsconfig => "fsconfig",
        pyc_core::overlay::Method::Legacy => "legacy",
    })
}

/// Remove a directory tree (a container's files, a layer), each depth's directories in
/// parallel; a missing path is not an error.
#[pyfunction]
fn remove_tree(py: Python<'_>, path: PathBuf) -> PyResult<()> {
    blocking(py, || pyc_core::remove::remove_tree(&path))
}

#[pymodule]
fn _pyc_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<RunResult>()?;
    m.add_class::<CgroupStats>()?;
    m.add_class::<registry::RegistryClient>()?;
    m.add_class::<registry::RemoteBlob>()?;
    m.add_class::<registry::RemoteProgress>()?;
    m.add_function(wrap_pyfunction!(cgroup_stats, m)?)?;
    m.add_function(wrap_pyfunction!(update_cgroup, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(exec_in, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_layer, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_layers, m)?)?;
    bundle::register(m)?;
    m.add_function(wrap_pyfunction!(tar_directory, m)?)?;
    m.add_function(wrap_pyfunction!(export_overlay, m)?)?;
    m.add_function(wrap_pyfunction!(sha256_file, m)?)?;
    m.add_function(wrap_pyfunction!(copy_file_to, m)?)?;
    m.add_function(wrap_pyfunction!(cgroup_version, m)?)?;
    m.add_function(wrap_pyfunction!(remove_cgroup, m)?)?;
    m.add_function(wrap_pyfunction!(remove_tree, m)?)?;
    m.add_function(wrap_pyfunction!(diff_upper, m)?)?;
    m.add_function(wrap_pyfunction!(tar_upper, m)?)?;
    m.add_function(wrap_pyfunction!(wire::packb, m)?)?;
    m.add_function(wrap_pyfunction!(wire::unpackb, m)?)?;
    m.add_function(wrap_pyfunction!(freeze_cgroup, m)?)?;
    m.add_function(wrap_pyfunction!(thaw_cgroup, m)?)?;
    m.add_function(wrap_pyfunction!(cgroup_pids, m)?)?;
    m.add_function(wrap_pyfunction!(log_events, m)?)?;
    m.add_function(wrap_pyfunction!(overlay_method, m)?)?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
