"""A container as `docker inspect` shows it: State, Config, HostConfig, Mounts, NetworkSettings."""

from __future__ import annotations

from pyc.containers import Container

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _mounts(host_config: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for bind in host_config.get("Binds") or []:
        src, _, rest = str(bind).partition(":")
        dst, _, mode = rest.partition(":")
        out.append({"Type": "bind", "Source": src, "Destination": dst, "Mode": mode, "RW": mode != "ro", "Propagation": "rprivate"})
    for tmpfs in host_config.get("Tmpfs") or []:
        out.append({"Type": "tmpfs", "Source": "", "Destination": str(tmpfs).partition(":")[0], "Mode": "", "RW": True, "Propagation": ""})
    return out


def document(c: Container) -> dict[str, Any]:
    st = c.current_state()
    status = str(st["Status"])
    data = dict(c.data)
    data["State"] = {
        "Status": status,
        "Running": status == "running",
        "Paused": False,
        "Restarting": status == "restarting",
        "OOMKilled": bool(st.get("OOMKilled")),
        "Dead": False,
        "Pid": int(st.get("Pid") or 0) if status == "running" else 0,
        "ExitCode": int(st.get("ExitCode") or 0),
        "Error": str(st.get("Error") or ""),
        "StartedAt": str(st.get("StartedAt") or "0001-01-01T00:00:00Z"),
        "FinishedAt": str(st.get("FinishedAt") or "0001-01-01T00:00:00Z"),
        "MonitorPid": st.get("MonitorPid"),
        "MonitorStart": st.get("MonitorStart"),
    }
    data["RestartCount"] = int(st.get("RestartCount") or 0)
    data["LogPath"] = c.path("ctr.log")
    host_config = data.get("HostConfig") or {}
    data["Mounts"] = _mounts(host_config)
    data.setdefault("NetworkSettings", {"Networks": {}, "IPAddress": "", "Ports": {}, "SandboxKey": ""})
    return data
