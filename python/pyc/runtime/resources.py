"""docker's resource flags (--memory 64m, --cpus 1.5, ...) to the OCI spec's `linux.resources`,
checked here so a bad value is one clear line and no container is made."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# resources()'s parameters, which RunOptions carries as attributes of the same names.
LIMIT_FLAGS = ("memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares", "cpuset_cpus", "pids_limit", "blkio_weight", "device_read_bps", "device_write_bps")
MIN_MEMORY = 6 * 1024 * 1024  # docker's floor: less cannot start a process
CPU_PERIOD = 100_000
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(flag: str, value: str) -> int:
    """docker's RAMInBytes: 64m, 64MB, 64MiB, 1.5g, 512 (bytes)."""
    v = value.strip().lower()
    i = 0
    while i < len(v) and (v[i].isdigit() or v[i] == "."):
        i += 1
    num, unit = v[:i], v[i:].strip()
    if unit.endswith("ib"):
        unit = unit[:-2]
    elif unit.endswith("b"):
        unit = unit[:-1]
    try:
        n = float(num)
    except ValueError:
        n = -1.0
    if n < 0 or unit not in _UNITS:
        raise InvalidArgument(f"invalid {flag} {value!r}: use a number with an optional unit b, k, m, g (e.g. 64m)")
    return int(n * _UNITS[unit])


def host_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def parse_cpuset(value: str) -> set[int]:
    cpus: set[int] = set()
    for part in value.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise InvalidArgument(f"invalid --cpuset-cpus {value!r}: use a list like 0-2,4")
        cpus.update(range(int(lo), int(hi if dash else lo) + 1))
    return cpus


def _device(flag: str, value: str) -> dict[str, int]:
    path, sep, rate = value.rpartition(":")
    if not sep or not path:
        raise InvalidArgument(f"invalid {flag} {value!r}: use DEVICE:RATE, e.g. /dev/sda:1mb")
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidArgument(f"invalid {flag} {value!r}: {path}: {e.strerror}") from None
    import stat

    if not stat.S_ISBLK(st.st_mode):
        raise InvalidArgument(f"invalid {flag} {value!r}: {path} is not a block device")
    bps = parse_bytes(flag, rate)
    if bps <= 0:
        raise InvalidArgument(f"invalid {flag} {value!r}: the rate must be positive")
    return {"major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev), "rate": bps}


def resources(
    memory: str | None = None,
    memory_swap: str | None = None,
    memory_reservation: str | None = None,
    cpus: str | None = None,
    cpu_shares: str | None = None,
    cpuset_cpus: str | None = None,
    pids_limit: str | None = None,
    blkio_weight: str | None = None,
    device_read_bps: list[str] | None = None,
    device_write_bps: list[str] | None = None,
) -> dict[str, Any]:
    """The OCI `linux.resources` object for docker's flags; {} when none is given."""
    out: dict[str, Any] = {}
    mem: dict[str, int] = {}
    if memory is not None:
        mem["limit"] = parse_bytes("--memory", memory)
        if mem["limit"] < MIN_MEMORY:
            raise InvalidArgument(f"invalid --memory {memory!r}: the minimum is 6MB")
        # docker's default: as much swap as memory, unless --memory-swap says otherwise.
        mem["swap"] = 2 * mem["limit"]
    if memory_swap is not None:
        if memory is None:
            raise InvalidArgument("--memory-swap needs --memory")
        swap = -1 if memory_swap.strip() == "-1" else parse_bytes("--memory-swap", memory_swap)
        if swap != -1 and swap < mem["limit"]:
            raise InvalidArgument(f"invalid --memory-swap {memory_swap!r}: it is memory plus swap, so at least --memory")
        mem["swap"] = swap
    if memory_reservation is not None:
        mem["reservation"] = parse_bytes("--memory-reservation", memory_reservation)
        if mem["reservation"] <= 0 or ("limit" in mem and mem["reservation"] > mem["limit"]):
            raise InvalidArgument(f"invalid --memory-reservation {memory_reservation!r}: it must be positive and at most --memory")
    if mem:
        out["memory"] = mem
    cpu: dict[str, Any] = {}
    if cpus is not None:
        available = len(host_cpus())
        try:
            n = float(cpus)
        except ValueError:
            raise InvalidArgument(f"invalid --cpus {cpus!r}: use a number like 1.5") from None
        if not 0.01 <= n <= available:
            raise InvalidArgument(f"invalid --cpus {cpus!r}: the range is 0.01 to {available}, as there are {available} CPUs")
        cpu.update(quota=int(n * CPU_PERIOD), period=CPU_PERIOD)
    if cpu_shares is not None:
        if not cpu_shares.isdigit() or not 2 <= int(cpu_shares) <= 262144:
            raise InvalidArgument(f"invalid --cpu-shares {cpu_shares!r}: use 2 to 262144 (1024 is the default weight)")
        cpu["shares"] = int(cpu_shares)
    if cpuset_cpus is not None:
        wanted = parse_cpuset(cpuset_cpus)
        missing = wanted - set(host_cpus())
        if missing:
            have = ",".join(map(str, host_cpus()))
            raise InvalidArgument(f"invalid --cpuset-cpus {cpuset_cpus!r}: CPU {','.join(map(str, sorted(missing)))} is not available (available: {have})")
        cpu["cpus"] = cpuset_cpus
    if cpu:
        out["cpu"] = cpu
    if pids_limit is not None:
        try:
            out["pids"] = {"limit": int(pids_limit)}
        except ValueError:
            raise InvalidArgument(f"invalid --pids-limit {pids_limit!r}: use a whole number (0 or -1: unlimited)") from None
    blkio: dict[str, Any] = {}
    if blkio_weight is not None:
        if not blkio_weight.isdigit() or not 10 <= int(blkio_weight) <= 1000:
            raise InvalidArgument(f"invalid --blkio-weight {blkio_weight!r}: use 10 to 1000")
        blkio["weight"] = int(blkio_weight)
    if device_read_bps:
        blkio["throttleReadBpsDevice"] = [_device("--device-read-bps", d) for d in device_read_bps]
    if device_write_bps:
        blkio["throttleWriteBpsDevice"] = [_device("--device-write-bps", d) for d in device_write_bps]
    if blkio:
        out["blockIO"] = blkio
    return out
