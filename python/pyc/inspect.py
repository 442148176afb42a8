"""Containers and images as `docker inspect` shows them (State, Config, HostConfig, Mounts,
RootFS, ...), made from their typed records: the one place docker's names and shape are
produced."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.records import ContainerRecord, ContainerState, HostConfig
    from pyc.results import Event
    from pyc.store.images import Image

ZERO_TIME = "0001-01-01T00:00:00Z"


def _mounts(host: HostConfig) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for bind in host.binds:
        src, _, rest = bind.partition(":")
        dst, _, mode = rest.partition(":")
        out.append({"Type": "bind", "Source": src, "Destination": dst, "Mode": mode, "RW": mode != "ro", "Propagation": "rprivate"})
    for tmpfs in host.tmpfs:
        out.append({"Type": "tmpfs", "Source": "", "Destination": tmpfs.partition(":")[0], "Mode": "", "RW": True, "Propagation": ""})
    return out


def _host_config(host: HostConfig) -> dict[str, object]:
    out: dict[str, object] = {
        "AutoRemove": host.auto_remove,
        "Init": host.init,
        "ReadonlyRootfs": host.readonly_rootfs,
        "Binds": host.binds,
        "Tmpfs": host.tmpfs,
        "CgroupParent": host.cgroup_parent,
        "Memory": host.memory,
        "MemorySwap": host.memory_swap,
        "MemoryReservation": host.memory_reservation,
        "NanoCpus": host.nano_cpus,
        "CpuShares": host.cpu_shares,
        "CpusetCpus": host.cpuset_cpus,
        "PidsLimit": host.pids_limit,
        "BlkioWeight": host.blkio_weight,
        "RestartPolicy": {"Name": host.restart.policy, "MaximumRetryCount": host.restart.max},
    }
    if host.log is not None:
        out["LogConfig"] = {"Type": "k8s-file", "Config": {"max-size": str(host.log.max_size), "max-file": str(host.log.max_files)}}
    return out


def document(record: ContainerRecord, state: ContainerState, log_path: str) -> dict[str, object]:
    """docker inspect's document of a container, with its current `state`."""
    c = record.config
    config: dict[str, object] = {"Cmd": c.cmd, "Env": c.env, "WorkingDir": c.working_dir, "Hostname": c.hostname, "Image": record.image, "Tty": c.tty}
    if c.stop_signal:
        config["StopSignal"] = c.stop_signal
    return {
        "Id": record.id,
        "Name": record.name,
        "Created": record.created,
        "Image": record.image,
        "ImageId": record.image_id,
        "Layers": record.layers,
        "Config": config,
        "HostConfig": _host_config(record.host_config),
        "CgroupRoot": record.cgroup_root,
        "State": {
            "Status": state.shown_status,
            "Running": state.status == "running",
            "Paused": state.is_paused,
            "Restarting": state.status == "restarting",
            "OOMKilled": state.oom_killed,
            "Dead": False,
            "Pid": state.pid if state.status == "running" else 0,
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": state.started_at or ZERO_TIME,
            "FinishedAt": state.finished_at or ZERO_TIME,
            "MonitorPid": state.monitor_pid,
            "MonitorStart": state.monitor_start,
        },
        "RestartCount": state.restart_count,
        "LogPath": log_path,
        "Mounts": _mounts(record.host_config),
        "NetworkSettings": {"Networks": {}, "IPAddress": "", "Ports": {}, "SandboxKey": ""},
    }


def image_document(img: Image) -> dict[str, object]:
    """docker image inspect's document of an image."""
    from pyc.store.refs import familiar_ref

    return {
        "Id": img.id,
        "RepoTags": [familiar_ref(r) for r in img.refs],
        "RepoDigests": [familiar_ref(d) for d in img.digests],
        "ManifestDigest": img.manifest_digest,
        "Created": img.config.get("created"),
        "Architecture": img.config.get("architecture"),
        "Os": img.config.get("os"),
        "Config": img.run_config,
        "RootFS": {"Type": "layers", "Layers": img.diff_ids},
        "Size": img.size,
        "History": img.config.get("history", []),
    }


def event_document(e: Event) -> dict[str, object]:
    """docker's events.Message of an event, as `docker events --format '{{json .}}'` prints it
    (and as the journal holds it): status, id and from are the deprecated fields docker still
    fills for containers and images."""
    doc: dict[str, object] = {}
    if e.type in ("container", "image"):
        doc["status"], doc["id"] = e.action, e.id
        if e.type == "container" and "image" in e.attributes:
            doc["from"] = e.attributes["image"]
    doc |= {"Type": e.type, "Action": e.action, "Actor": {"ID": e.id, "Attributes": e.attributes}, "scope": e.scope, "time": e.time_nano // 1_000_000_000, "timeNano": e.time_nano}
    return doc
