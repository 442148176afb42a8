"""Resource verbs: stats (what containers use) and update (change a running one's limits)."""

from __future__ import annotations

from pyc.cli.run import LIMIT_FLAGS
from pyc.cli.spec import Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyc.engine import Engine
    from pyc.results import Stats


def _mib(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n}B"


def _human(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n}B"


def _host_memory() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


def _sample(engine: Engine, refs: list[str]) -> dict[str, Stats]:
    from pyc.errors import PycError

    out = {}
    for ref in refs:
        try:
            out[ref] = engine.stats(ref)
        except PycError:
            continue  # it ended between the samples
    return out


def _rows(before: dict[str, Stats], after: dict[str, Stats], seconds: float) -> list[dict[str, object]]:
    host_mem = _host_memory()
    rows = []
    for ref, s in after.items():
        prev = before.get(ref, s)
        cpu = (s.cpu_usage_ns - prev.cpu_usage_ns) / (seconds * 1e9) * 100
        limit = s.memory_limit if s.memory_limit is not None else host_mem
        rows.append(
            {
                "ID": s.id[:12],
                "Name": s.name,
                "CPUPerc": f"{cpu:.2f}%",
                "MemUsage": f"{_mib(s.memory_usage)} / {_mib(limit)}",
                "MemPerc": f"{s.memory_usage / limit * 100:.2f}%",
                "BlockIO": f"{_human(s.io_read_bytes)} / {_human(s.io_write_bytes)}",
                "PIDs": str(s.pids),
                "CPUPercent": round(cpu, 2),
                "MemUsageBytes": s.memory_usage,
                "MemLimitBytes": limit,
                "PidsLimit": s.pids_limit,
            }
        )
    return rows


def stats(containers: list[str], no_stream: bool, format: str | None) -> None:
    """Show what running containers use: CPU, memory, block I/O, pids."""
    import json
    import sys
    import time

    from pyc.cli.output import table
    from pyc.engine import Engine
    from pyc.errors import InvalidArgument

    if format not in (None, "json", "table"):
        raise InvalidArgument(f"invalid --format {format!r}: only 'json' and 'table' are supported")
    engine = Engine()
    names = containers or [c.id for c in engine.list_containers()]
    for ref in containers:
        engine.stats(ref)  # an unknown or stopped container is an error up front
    interval = 0.5 if no_stream else 1.0
    before, t0 = _sample(engine, names), time.monotonic()
    while True:
        time.sleep(interval)
        after, t1 = _sample(engine, names), time.monotonic()
        rows = _rows(before, after, t1 - t0)
        if format == "json":
            out = "\n".join(json.dumps(r) for r in rows)
        else:
            headers = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "BLOCK I/O", "PIDS"]
            out = table(headers, [[str(r[k]) for k in ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "BlockIO", "PIDs")] for r in rows])
        if not no_stream and sys.stdout.isatty():
            sys.stdout.write("\033[2J\033[H")
        print(out, flush=True)
        if no_stream or not after:
            return
        before, t0 = after, t1


def update(containers: list[str], **limits: Any) -> None:
    """Change the limits of running containers."""
    from pyc.engine import Engine
    from pyc.runtime.spec import RunOptions

    opts = RunOptions(**limits)
    engine = Engine()
    for ref in containers:
        engine.update(ref, opts)
        print(ref)


COMMANDS = [
    Command(
        ("container", "stats"),
        "Show what running containers use: CPU, memory, block I/O, pids.",
        stats,
        (Arg("containers", "CONTAINER", "Containers (default: all running).", required=False, many=True),),
        (Flag(("--no-stream",), "no_stream", bool, "Print once, then exit."), Flag(("--format",), "format", help="json: one JSON object per line.")),
        aliases=(("stats",),),
    ),
    Command(("container", "update"), "Change the limits of running containers.", update, (Arg("containers", "CONTAINER", "Running containers.", many=True),), LIMIT_FLAGS, aliases=(("update",),)),
]
