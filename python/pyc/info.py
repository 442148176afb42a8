"""`pyc info` and `pyc version`: what pyc runs on and with, gathered from the store, the cgroup
mounts, the kernel and pyc's own parts."""

from __future__ import annotations

import os
import platform

import pyc_core
from pyc.results import Component, Feature, SystemInfo, Version

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyc.engine import Engine


def _kernel() -> tuple[int, int]:
    major, _, rest = os.uname().release.partition(".")
    minor = "".join(c for c in rest.partition(".")[0] if c.isdigit())
    return (int(major), int(minor or 0)) if major.isdigit() else (0, 0)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _freezer(cgroup_root: str, version: int) -> bool:
    return os.path.exists(os.path.join(cgroup_root, "freezer")) if version == 1 else _kernel() >= (5, 2)


def _features(cgroup_root: str, cgroup_version: int) -> list[Feature]:
    """What the kernel offers a container engine, and what pyc makes of it. One probe each:
    a feature pyc comes to use changes its line here."""
    userns = _read("/proc/sys/user/max_user_namespaces").strip()
    lowerdir_add = pyc_core.overlay_method() == "fsconfig"
    probes: list[tuple[str, Callable[[], bool], bool, str]] = [
        ("seccomp", lambda: os.path.exists("/proc/sys/kernel/seccomp/actions_avail"), False, "no syscall filter is applied yet"),
        ("user namespaces", lambda: userns.isdigit() and int(userns) > 0, False, "rootless containers are not supported yet"),
        ("cgroup namespace", lambda: os.path.exists("/proc/self/ns/cgroup"), True, "each container sees its cgroup as /"),
        ("overlay volatile", lambda: _kernel() >= (5, 10), True, "the upper dir of a --rm container is never synced"),
        ("overlay lowerdir+", lambda: lowerdir_add, lowerdir_add, "up to 500 layers through fsconfig" if lowerdir_add else "up to 500 layers through mount(2) by fd numbers"),
        ("idmapped mounts", lambda: _kernel() >= (5, 12), False, "no user namespace to map to yet"),
        ("cgroup freezer", lambda: _freezer(cgroup_root, cgroup_version), True, "pause and unpause"),
    ]
    return [Feature(name=name, kernel=bool(has()), used=used and bool(has()), note=note) for name, has, used, note in probes]


def _filesystem(path: str) -> str:
    """The type of the filesystem `path` is on (the longest mount point above it)."""
    best, fstype = "", "unknown"
    for line in _read("/proc/self/mountinfo").splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount = fields[4].replace("\\040", " ")
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, fstype = mount, line.split(" - ", 1)[1].split()[0]
    return fstype


def _os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"')
    return platform.system()


def _memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def system_info(engine: Engine) -> SystemInfo:
    from pyc.containers import DEFAULT_CGROUP_ROOT
    from pyc.store.placement import spreads_children

    states = [c.current_state() for c in engine.containers.all()]
    cgroup_root = os.environ.get("PYC_CGROUP_ROOT") or DEFAULT_CGROUP_ROOT
    cgroup_version = pyc_core.cgroup_version(cgroup_root)
    features = _features(cgroup_root, cgroup_version)
    paths = engine.paths
    warnings = [f"WARNING: no {f.name} here: {f.note} will fail" for f in features if f.name == "cgroup freezer" and not f.kernel]
    return SystemInfo(
        containers=len(states),
        containers_running=sum(1 for s in states if s.status in ("running", "restarting") and not s.is_paused),
        containers_paused=sum(1 for s in states if s.is_paused),
        containers_stopped=sum(1 for s in states if s.status not in ("running", "restarting")),
        images=len(engine.list_images()),
        version=package_version(),
        root=paths.root,
        backing_filesystem=_filesystem(paths.root),
        store_placement=all(spreads_children(d) for d in (paths.containers, paths.tmp)),
        overlay_mount="fsconfig" if pyc_core.overlay_method() == "fsconfig" else "mount(2)",
        cgroup_root=cgroup_root,
        cgroup_version=cgroup_version,
        features=features,
        security_options=["name=cgroupns"],
        kernel_version=os.uname().release,
        operating_system=_os_name(),
        architecture=platform.machine(),
        cpus=len(os.sched_getaffinity(0)),
        memory=_memory(),
        name=os.uname().nodename,
        warnings=warnings,
    )


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyc")
    except PackageNotFoundError:
        return pyc_core.VERSION


def _program_version(name: str) -> Component:
    """A program of pyc's and the version it says it is (`NAME --version`)."""
    import subprocess

    from pyc.errors import PycError
    from pyc.programs import program

    try:
        path = program(name)
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout.split()
    except (PycError, OSError, subprocess.TimeoutExpired):
        return Component(name=name, version="not found")
    return Component(name=name, version=out[-1] if len(out) == 2 and out[0] == name else "unknown", details={"Path": path})


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def version() -> Version:
    kernel = os.uname().release
    engine = Component(name="Engine", version=package_version(), details={"KernelVersion": kernel, "Os": "linux", "Arch": _arch()})
    core = Component(name="pyc-core", version=pyc_core.VERSION, details={"Language": "Rust"})
    return Version(
        version=package_version(),
        python_version=platform.python_version(),
        os="linux",
        arch=_arch(),
        kernel_version=kernel,
        components=[engine, core, _program_version("pyc-monitor"), _program_version("pyc-init")],
    )
