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
use pyc_core::net;

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
        return dup_fd(fd);
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
    let job = layer::Job { input: Box::new(open_source(source)?), dest, blob: blob.map(layer::Keep::Tar), lowers };
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

/// (source, dest, blob, lowers, keep_input), as Python passes one unpack job.
type JobArgs<'py> = (Bound<'py, PyAny>, PathBuf, Option<PathBuf>, Vec<PathBuf>, bool);

/// Unpack several layers at once, on threads, the GIL released. `jobs` are (source, dest,
/// blob, lowers, keep_input) as for unpack_layer, but that `blob` keeps the source as it came
/// (compressed or not) rather than the tar when `keep_input`; a source may also be (path,
/// offset, length), and lowers may name the dests of earlier jobs. Returns, per job, (diff_id, size, digest of the source
/// bytes as they came), or the exception it raised.
#[pyfunction]
fn unpack_layers(py: Python<'_>, jobs: Vec<JobArgs<'_>>) -> PyResult<Vec<Py<PyAny>>> {
    let jobs = jobs
        .into_iter()
        .map(|(source, dest, blob, lowers, keep_input)| {
            Ok(layer::Job { input: job_input(&source)?, dest, blob: blob.map(if keep_input { layer::Keep::Input } else { layer::Keep::Tar }), lowers })
        })
        .collect::<PyResult<Vec<_>>>()?;
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
    let file = dup_fd(out)?;
    blocking(py, || layer::export_overlay(lowers, mountpoint, file))
}

/// A descriptor of the caller's, duplicated: the copy is ours to close.
fn dup_fd(fd: RawFd) -> PyResult<File> {
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(unsafe { File::from_raw_fd(dup) })
}

/// `pyc cp` (a msgpack copy config: where the container's files are, the paths, -a, -L);
/// `stream` is the fd of the tar for `-` (stdin in, stdout out).
#[pyfunction]
#[pyo3(signature = (config, stream=None))]
fn copy(py: Python<'_>, config: &[u8], stream: Option<RawFd>) -> PyResult<()> {
    let cfg = pyc_core::copy::CopyConfig::from_msgpack(config).map_err(into_py)?;
    let stream = stream.map(dup_fd).transpose()?;
    blocking(py, || pyc_core::copy::copy(&cfg, stream))
}

fn view_of(view: &[u8]) -> PyResult<pyc_core::copy::View> {
    rmp_serde::from_slice(view).map_err(|e| into_py(pyc_core::Error::InvalidConfig(e.to_string())))
}

/// A volume's copy-up: what the image (a msgpack view, {"image": {lower, mountpoint}}) holds
/// at `path`, unpacked into the empty directory `stage`. False when it holds no directory there.
#[pyfunction]
fn copy_up(py: Python<'_>, view: &[u8], path: String, stage: PathBuf) -> PyResult<bool> {
    let view = view_of(view)?;
    blocking(py, || pyc_core::copy::copy_up(&view, &path, &stage))
}

/// Move what `stage` holds into `dest`, which takes `stage`'s owner and mode; `keep`: a name
/// `dest` has already stays as it is (else files are replaced, directories merged).
#[pyfunction]
fn merge_into(py: Python<'_>, stage: PathBuf, dest: PathBuf, keep: bool) -> PyResult<()> {
    let policy = if keep { pyc_core::copy::Policy::Keep } else { pyc_core::copy::Policy::Replace };
    blocking(py, || pyc_core::copy::merge_into(&stage, &dest, policy))
}

/// Write what the directory `dir` holds (owners, modes, times, xattrs, hardlinks) as a tar to
/// the fd `out`.
#[pyfunction]
fn tar_tree(py: Python<'_>, dir: PathBuf, out: RawFd) -> PyResult<()> {
    let out = dup_fd(out)?;
    blocking(py, || pyc_core::copy::tar_tree(&dir, out))
}

/// Unpack a tar (plain, gzip or zstd; a path or fd) into the directory `dir` with the layer
/// unpacker, staged and moved in: files replaced, directories merged, `dir` taking the owner
/// and mode of the tar's `./`.
#[pyfunction]
fn untar_into(py: Python<'_>, source: &Bound<'_, PyAny>, dir: PathBuf) -> PyResult<()> {
    let input = open_source(source)?;
    blocking(py, || pyc_core::copy::untar_into(&dir, input, pyc_core::copy::Policy::Replace))
}

/// (digest, size) of a file, streamed.
#[pyfunction]
fn sha256_file(py: Python<'_>, path: PathBuf) -> PyResult<(String, u64)> {
    blocking(py, || layer::sha256_file(&path))
}

/// Write the tar of the layer file `src` (gzip, zstd or plain) to `dst`, synced: (its digest,
/// size), for the caller to check against the layer's diff id.
#[pyfunction]
fn decompress_layer(py: Python<'_>, src: PathBuf, dst: PathBuf) -> PyResult<(String, u64)> {
    blocking(py, || layer::decompress_file(&src, &dst))
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

/// Compile a docker-format seccomp `profile` (None: docker's default) for a container with
/// `caps` (CAP_* names), through the cache in `cache`; the number of BPF instructions.
#[pyfunction]
#[pyo3(signature = (profile, caps, cache=None))]
fn seccomp_filter(py: Python<'_>, profile: Option<String>, caps: Vec<String>, cache: Option<PathBuf>) -> PyResult<usize> {
    blocking(py, || pyc_core::seccomp::filter(profile.as_deref(), &caps, cache.as_deref()).map(|f| f.program.len()))
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

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> PyResult<T> {
    rmp_serde::from_slice(bytes).map_err(|e| into_py(pyc_core::Error::InvalidConfig(format!("{what}: {e}"))))
}

/// Make a network's host side where it is missing: its bridge with the gateway's address, its
/// nftables rules (msgpack: bridge, subnet, prefix, gateway, mac, internal).
#[pyfunction]
fn network_ensure(py: Python<'_>, config: &[u8]) -> PyResult<()> {
    let n: net::Network = decode("network", config)?;
    blocking(py, || net::ensure_network(&n))
}

/// Whether the bridge `name` exists (in this network namespace).
#[pyfunction]
fn bridge_exists(name: String) -> bool {
    net::bridge_exists(&name)
}

/// Remove a network's bridge and nftables rules.
#[pyfunction]
fn network_remove(py: Python<'_>, bridge: String) -> PyResult<()> {
    blocking(py, || net::remove_network(&bridge))
}

/// Give the network namespace of `pid` the interfaces of `config` (msgpack list, as a run
/// config's network.interfaces).
#[pyfunction]
fn network_attach(py: Python<'_>, pid: i32, config: &[u8]) -> PyResult<()> {
    let ifaces: Vec<net::Interface> = decode("interfaces", config)?;
    blocking(py, || net::attach(pid, &ifaces))
}

/// Remove the interface `name` from the network namespace of `pid`.
#[pyfunction]
fn network_detach(py: Python<'_>, pid: i32, name: String) -> PyResult<()> {
    blocking(py, || net::detach(pid, &name))
}

/// DNAT published ports (msgpack list of run config ports) to their containers.
#[pyfunction]
fn ports_publish(py: Python<'_>, config: &[u8]) -> PyResult<()> {
    let ports: Vec<net::Port> = decode("ports", config)?;
    blocking(py, || net::publish(&ports))
}

/// Undo ports_publish.
#[pyfunction]
fn ports_unpublish(py: Python<'_>, config: &[u8]) -> PyResult<()> {
    let ports: Vec<net::Port> = decode("ports", config)?;
    blocking(py, || net::unpublish(&ports))
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
    m.add_function(wrap_pyfunction!(decompress_layer, m)?)?;
    m.add_function(wrap_pyfunction!(copy_file_to, m)?)?;
    m.add_function(wrap_pyfunction!(cgroup_version, m)?)?;
    m.add_function(wrap_pyfunction!(remove_cgroup, m)?)?;
    m.add_function(wrap_pyfunction!(remove_tree, m)?)?;
    m.add_function(wrap_pyfunction!(diff_upper, m)?)?;
    m.add_function(wrap_pyfunction!(tar_upper, m)?)?;
    m.add_function(wrap_pyfunction!(copy, m)?)?;
    m.add_function(wrap_pyfunction!(copy_up, m)?)?;
    m.add_function(wrap_pyfunction!(merge_into, m)?)?;
    m.add_function(wrap_pyfunction!(tar_tree, m)?)?;
    m.add_function(wrap_pyfunction!(untar_into, m)?)?;
    m.add_function(wrap_pyfunction!(seccomp_filter, m)?)?;
    m.add_function(wrap_pyfunction!(network_ensure, m)?)?;
    m.add_function(wrap_pyfunction!(bridge_exists, m)?)?;
    m.add_function(wrap_pyfunction!(network_remove, m)?)?;
    m.add_function(wrap_pyfunction!(network_attach, m)?)?;
    m.add_function(wrap_pyfunction!(network_detach, m)?)?;
    m.add_function(wrap_pyfunction!(ports_publish, m)?)?;
    m.add_function(wrap_pyfunction!(ports_unpublish, m)?)?;
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
