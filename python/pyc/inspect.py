"""Containers and images as `docker inspect` shows them (State, Config, HostConfig, Mounts,
RootFS, ...), made from their typed records: the one place docker's names and shape are
produced."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.records import ContainerRecord, ContainerState, Endpoint, HostConfig, PortBinding
    from pyc.results import Event
    from pyc.store.images import Image

ZERO_TIME = "0001-01-01T00:00:00Z"


def _mounts(record: ContainerRecord) -> list[dict[str, object]]:
    """docker's `Mounts`: a container's volumes, binds and tmpfs as they were resolved. A record
    of a pyc before volumes has only its -v and --tmpfs strings: those, read as they were."""
    if not record.mounts:
        return _old_mounts(record.host_config)
    out: list[dict[str, object]] = []
    for m in record.mounts:
        if m.type == "volume":
            out.append({"Type": "volume", "Name": m.name, "Source": m.source, "Destination": m.destination, "Driver": "local", "Mode": m.mode, "RW": m.rw, "Propagation": ""})
        elif m.type == "bind":
            out.append({"Type": "bind", "Source": m.source, "Destination": m.destination, "Mode": m.mode, "RW": m.rw, "Propagation": m.propagation})
        else:
            out.append({"Type": "tmpfs", "Source": "", "Destination": m.destination, "Mode": "", "RW": m.rw, "Propagation": ""})
    return out


def _old_mounts(host: HostConfig) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for bind in host.binds:
        src, _, rest = bind.partition(":")
        dst, _, mode = rest.partition(":")
        out.append({"Type": "bind", "Source": src, "Destination": dst, "Mode": mode, "RW": mode != "ro", "Propagation": "rprivate"})
    for tmpfs in host.tmpfs:
        out.append({"Type": "tmpfs", "Source": "", "Destination": tmpfs.partition(":")[0], "Mode": "", "RW": True, "Propagation": ""})
    return out


def _mount_spec(spec: str) -> dict[str, object]:
    """One --mount as docker's HostConfig.Mounts shows it."""
    fields = dict(f.partition("=")[::2] for f in spec.split(","))
    target = fields.get("target", fields.get("dst", fields.get("destination", "")))
    out: dict[str, object] = {"Type": fields.get("type", "volume"), "Source": fields.get("source", fields.get("src", "")), "Target": target}
    if "readonly" in fields or "ro" in fields:
        out["ReadOnly"] = fields.get("readonly", fields.get("ro")) in ("", "1", "true")
    return out


def _host_config(host: HostConfig) -> dict[str, object]:
    out: dict[str, object] = {
        "AutoRemove": host.auto_remove,
        "Init": host.init,
        "ReadonlyRootfs": host.readonly_rootfs,
        "Binds": host.binds,
        "Tmpfs": host.tmpfs,
        "Mounts": [_mount_spec(m) for m in host.mounts],
        "VolumesFrom": host.volumes_from,
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
        # docker's null for a list not given
        "CapAdd": host.cap_add or None,
        "CapDrop": host.cap_drop or None,
        "Privileged": host.privileged,
        "SecurityOpt": host.security_opt or None,
        "Devices": [{"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container, "CgroupPermissions": d.cgroup_permissions} for d in host.devices],
        "DeviceCgroupRules": host.device_cgroup_rules or None,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in host.ulimits] or None,
        "OomScoreAdj": host.oom_score_adj,
        "GroupAdd": host.group_add or None,
    }
    if host.sysctls:
        out["Sysctls"] = dict(host.sysctls)
    out["NetworkMode"] = host.network_mode or "none"
    out["PortBindings"] = _ports(host.port_bindings, configured=True)
    out["PublishAllPorts"] = host.publish_all
    out["Dns"], out["DnsSearch"], out["DnsOptions"], out["ExtraHosts"] = host.dns, host.dns_search, host.dns_options, host.extra_hosts
    if host.log is not None:
        out["LogConfig"] = {"Type": "k8s-file", "Config": {"max-size": str(host.log.max_size), "max-file": str(host.log.max_files)}}
    return out


def _ports(bindings: list[PortBinding], configured: bool = False) -> dict[str, object]:
    """docker's {"80/tcp": [{"HostIp": ..., "HostPort": ...}]}."""
    out: dict[str, list[dict[str, str]]] = {}
    for b in bindings:
        host_ip = b.host_ip if configured else b.host_ip or "0.0.0.0"
        out.setdefault(f"{b.container_port}/{b.proto}", []).append({"HostIp": host_ip, "HostPort": str(b.host_port) if b.host_port else ""})
    return {k: out[k] for k in sorted(out)}  # as docker's JSON of a Go map


def _network_settings(endpoints: list[tuple[str, Endpoint]]) -> dict[str, object]:
    """NetworkSettings of a container's live endpoints, (network name, endpoint) each."""
    networks = {
        name: {"NetworkID": e.network, "IPAddress": e.ip, "IPPrefixLen": e.prefix, "Gateway": e.gateway, "MacAddress": e.mac, "Aliases": e.aliases}
        for name, e in endpoints
    }
    first = endpoints[0][1] if endpoints else None
    ports = [b for _, e in endpoints for b in e.ports]
    return {
        "Networks": networks,
        "IPAddress": first.ip if first else "",
        "IPPrefixLen": first.prefix if first else 0,
        "Gateway": first.gateway if first else "",
        "MacAddress": first.mac if first else "",
        "Ports": _ports(ports),
        "SandboxKey": "",
    }


def document(record: ContainerRecord, state: ContainerState, log_path: str, endpoints: list[tuple[str, Endpoint]] | None = None) -> dict[str, object]:
    """docker inspect's document of a container, with its current `state` and, while it runs,
    its `endpoints` (network name, endpoint)."""
    c = record.config
    config: dict[str, object] = {"Cmd": c.cmd, "Env": c.env, "WorkingDir": c.working_dir, "Hostname": c.hostname, "Domainname": c.domainname, "Image": record.image, "Tty": c.tty, "User": c.user}
    if c.exposed_ports:
        config["ExposedPorts"] = {p: {} for p in c.exposed_ports}
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
        "Mounts": _mounts(record),
        "NetworkSettings": _network_settings(endpoints or []),
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
