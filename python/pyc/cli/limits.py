"""Resource verbs: stats (what containers use) and update (change a running one's limits)."""

import json
import sys
import time

import typer

from pyc.cli.output import table
from pyc.engine import Engine
from pyc.errors import PycError
from pyc.runtime.spec import RunOptions


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


def _sample(engine: Engine, refs: list[str]) -> dict[str, dict[str, object]]:
    out = {}
    for ref in refs:
        try:
            out[ref] = engine.stats(ref)
        except PycError:
            continue  # it ended between the samples
    return out


def _rows(before: dict[str, dict[str, object]], after: dict[str, dict[str, object]], seconds: float) -> list[dict[str, object]]:
    host_mem = _host_memory()
    rows = []
    for ref, s in after.items():
        prev = before.get(ref, s)
        cpu = (int(str(s["cpu_usage_ns"])) - int(str(prev["cpu_usage_ns"]))) / (seconds * 1e9) * 100
        usage = int(str(s["memory_usage"]))
        limit = int(str(s["memory_limit"])) if s["memory_limit"] is not None else host_mem
        rows.append(
            {
                "ID": str(s["id"])[:12],
                "Name": s["name"],
                "CPUPerc": f"{cpu:.2f}%",
                "MemUsage": f"{_mib(usage)} / {_mib(limit)}",
                "MemPerc": f"{usage / limit * 100:.2f}%",
                "BlockIO": f"{_human(int(str(s['io_read_bytes'])))} / {_human(int(str(s['io_write_bytes'])))}",
                "PIDs": str(s["pids"]),
                "CPUPercent": round(cpu, 2),
                "MemUsageBytes": usage,
                "MemLimitBytes": limit,
                "PidsLimit": s["pids_limit"],
            }
        )
    return rows


def register(app: typer.Typer, container_app: typer.Typer) -> None:
    def stats(
        refs: list[str] = typer.Argument(None, help="Containers (default: all running)."),
        no_stream: bool = typer.Option(False, "--no-stream", help="Print once, then exit."),
        format: str | None = typer.Option(None, "--format", help="json: one JSON object per line."),
    ) -> None:
        """Show what running containers use: CPU, memory, block I/O, pids."""
        if format not in (None, "json", "table"):
            raise typer.BadParameter("only 'json' and 'table' are supported", param_hint="--format")
        engine = Engine()
        names = refs or [c.id for c in engine.list_containers()]
        for ref in refs or []:
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

    def update(
        refs: list[str] = typer.Argument(..., help="Running containers."),
        memory: str | None = typer.Option(None, "-m", "--memory", help="Memory limit (e.g. 64m, 1g)."),
        memory_swap: str | None = typer.Option(None, "--memory-swap", help="Memory plus swap limit; -1: unlimited swap."),
        memory_reservation: str | None = typer.Option(None, "--memory-reservation", help="Soft memory limit."),
        cpus: str | None = typer.Option(None, "--cpus", help="Number of CPUs (e.g. 1.5)."),
        cpu_shares: str | None = typer.Option(None, "-c", "--cpu-shares", help="Relative CPU weight."),
        cpuset_cpus: str | None = typer.Option(None, "--cpuset-cpus", help="CPUs to run on (e.g. 0-2,4)."),
        pids_limit: str | None = typer.Option(None, "--pids-limit", help="Most processes at once (-1: unlimited)."),
        blkio_weight: str | None = typer.Option(None, "--blkio-weight", help="Relative block I/O weight, 10 to 1000."),
    ) -> None:
        """Change the limits of running containers."""
        opts = RunOptions(
            memory=memory, memory_swap=memory_swap, memory_reservation=memory_reservation, cpus=cpus, cpu_shares=cpu_shares, cpuset_cpus=cpuset_cpus, pids_limit=pids_limit, blkio_weight=blkio_weight
        )
        engine = Engine()
        for ref in refs:
            engine.update(ref, opts)
            print(ref)

    app.command("stats", help="Show what running containers use: CPU, memory, block I/O, pids.")(stats)
    container_app.command("stats", help="Show what running containers use.")(stats)
    app.command("update", help="Change the limits of running containers.")(update)
    container_app.command("update", help="Change the limits of running containers.")(update)
