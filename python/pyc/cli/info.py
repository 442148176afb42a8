"""pyc info (system info) and pyc version: docker's text, or --format (json, or a Go template
over docker's JSON document: .Containers, .CgroupVersion, .Server.Version, ...)."""

from __future__ import annotations

from pyc.cli.spec import Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.results import SystemInfo, Version


def info_document(i: SystemInfo) -> dict[str, object]:
    """docker info's JSON keys for what pyc has (and Features, pyc's own: the kernel's
    features and whether pyc uses them)."""
    driver_status = [
        ["Backing Filesystem", i.backing_filesystem],
        ["Overlay Mount", "fsconfig (lowerdir+)" if i.overlay_mount == "fsconfig" else "mount(2) (layers by fd)"],
        ["Store Placement", "chattr +T on containers/ and tmp/" if i.store_placement else "not in effect"],
    ]
    return {
        "Containers": i.containers,
        "ContainersRunning": i.containers_running,
        "ContainersPaused": i.containers_paused,
        "ContainersStopped": i.containers_stopped,
        "Images": i.images,
        "Driver": "overlay",
        "DriverStatus": driver_status,
        "LoggingDriver": "k8s-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": str(i.cgroup_version),
        "DefaultRuntime": "pyc-core",
        "InitBinary": "pyc-init",
        "SecurityOptions": i.security_options,
        "KernelVersion": i.kernel_version,
        "OperatingSystem": i.operating_system,
        "OSType": "linux",
        "Architecture": i.architecture,
        "NCPU": i.cpus,
        "MemTotal": i.memory,
        "DockerRootDir": i.root,
        "Name": i.name,
        "ServerVersion": i.version,
        "Warnings": i.warnings,
        "Features": {f.name: {"Kernel": f.kernel, "Used": f.used, "Note": f.note} for f in i.features},
    }


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.2f}GiB"


def info_text(i: SystemInfo) -> str:
    lines = [
        "Server:",
        f" Containers: {i.containers}",
        f"  Running: {i.containers_running}",
        f"  Paused: {i.containers_paused}",
        f"  Stopped: {i.containers_stopped}",
        f" Images: {i.images}",
        f" Server Version: {i.version}",
        " Storage Driver: overlay",
    ]
    doc = info_document(i)
    driver_status = doc["DriverStatus"]
    assert isinstance(driver_status, list)
    lines += [f"  {k}: {v}" for k, v in driver_status]
    lines += [
        " Logging Driver: k8s-file",
        " Cgroup Driver: cgroupfs",
        f" Cgroup Version: {i.cgroup_version}" + ("" if i.cgroup_root == "/sys/fs/cgroup" else f" ({i.cgroup_root})"),
        " Runtimes: pyc-core",
        " Default Runtime: pyc-core",
        " Init Binary: pyc-init",
        " Security Options:",
        *(f"  {opt.removeprefix('name=')}" for opt in i.security_options),
        " Kernel Features:",
        *(f"  {f.name}: {'yes' if f.kernel else 'no'}, {'used' if f.used else 'not used'} ({f.note})" for f in i.features),
        f" Kernel Version: {i.kernel_version}",
        f" Operating System: {i.operating_system}",
        " OSType: linux",
        f" Architecture: {i.architecture}",
        f" CPUs: {i.cpus}",
        f" Total Memory: {_gib(i.memory)}",
        f" Name: {i.name}",
        f" Pyc Root Dir: {i.root}",
        " Debug Mode: false",
    ]
    return "\n".join(lines + i.warnings)


def _print(document: dict[str, object], format: str) -> None:
    import json

    from pyc.cli.template import render

    print(json.dumps(document) if format == "json" else render(format, document))


def info(format: str | None) -> None:
    from pyc.engine import Engine

    i = Engine().info()
    if format is None:
        print(info_text(i))
    else:
        _print(info_document(i), format)


def version_document(v: Version) -> dict[str, object]:
    """docker version's JSON keys for what pyc has (PythonVersion in place of GoVersion)."""
    client = {"Platform": {"Name": "pyc"}, "Version": v.version, "PythonVersion": v.python_version, "Os": v.os, "Arch": v.arch}
    components = [{"Name": c.name, "Version": c.version, "Details": c.details} for c in v.components]
    server = {"Platform": {"Name": "pyc (daemonless)"}, "Components": components, "Version": v.version, "Os": v.os, "Arch": v.arch, "KernelVersion": v.kernel_version}
    return {"Client": client, "Server": server}


def version_text(v: Version) -> str:
    def line(indent: int, label: str, value: str) -> str:
        return (" " * indent + label + ":").ljust(20) + value

    def label(key: str) -> str:  # KernelVersion: Kernel version
        return "".join(f" {ch.lower()}" if ch.isupper() and i else ch for i, ch in enumerate(key))

    lines = ["Client:", line(1, "Version", v.version), line(1, "Python version", v.python_version), line(1, "OS/Arch", f"{v.os}/{v.arch}"), "", "Server:"]
    for c in v.components:
        lines += [f" {c.name}:", line(2, "Version", c.version)]
        lines += [line(2, label(k), val) for k, val in c.details.items() if k not in ("Os", "Arch")]
        if "Os" in c.details:
            lines.append(line(2, "OS/Arch", f"{c.details['Os']}/{c.details.get('Arch', '')}"))
    return "\n".join(lines)


def version(format: str | None) -> None:
    from pyc.info import version as versions  # pyc's own parts: no store to ask

    v = versions()
    if format is None:
        print(version_text(v))
    else:
        _print(version_document(v), format)


FORMAT = Flag(("-f", "--format"), "format", help="json, or a Go template such as '{{.ServerVersion}}'.")

COMMANDS = [
    Command(("system", "info"), "Show what pyc runs on: store, cgroups, kernel features, counts.", info, flags=(FORMAT,), aliases=(("info",),)),
    Command(("version",), "Show the versions of pyc and its parts.", version, flags=(FORMAT,)),
]
