"""Container verbs that show or copy out: ps, inspect, export."""

from __future__ import annotations

import sys

from pyc.cli.spec import Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _status(state: dict[str, Any], status: str) -> str:
    from pyc.cli.output import ago

    if status == "running":
        return f"Up {ago(str(state.get('StartedAt'))).removesuffix(' ago')}"
    if status == "restarting":
        return f"Restarting ({state.get('ExitCode')}) {ago(str(state.get('FinishedAt') or ''))}".rstrip()
    if status == "exited":
        return f"Exited ({state.get('ExitCode')}) {ago(str(state.get('FinishedAt') or ''))}".rstrip()
    return "Created"


def ps(all: bool, quiet: bool, filter: list[str], format: str | None) -> None:
    import json

    from pyc.cli.output import ago, table
    from pyc.cli.ps_filter import matches, parse_filters
    from pyc.engine import Engine

    filters = parse_filters(filter)
    # A status filter asks about stopped containers too, as in docker.
    containers = [c for c in Engine().list_containers(all or "status" in filters) if matches(c, filters)]
    if quiet:
        print("\n".join(c.id[:12] for c in containers))
        return
    rows = []
    for c in containers:
        cmd = " ".join(c.data.get("Config", {}).get("Cmd") or [])
        created = str(c.data.get("Created"))
        status = _status(c.current_state(), c.status)
        rows.append({"ID": c.id[:12], "Image": str(c.data.get("Image")), "Command": cmd, "CreatedAt": created, "RunningFor": ago(created), "Status": status, "State": c.status, "Names": c.name})
    if format is not None:
        from pyc.cli.template import render

        for row in rows:
            print(json.dumps(row) if format == "json" else render(format, row))
        return
    short = [[r["ID"], r["Image"], f'"{r["Command"][:20]}…"' if len(r["Command"]) > 20 else f'"{r["Command"]}"', r["RunningFor"], r["Status"], r["Names"]] for r in rows]
    print(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], short))


def inspect(containers: list[str], format: str | None) -> None:
    import json

    from pyc.engine import Engine
    from pyc.inspect import document

    engine = Engine()
    out = [document(engine.container(ref)) for ref in containers]
    if format is not None:
        from pyc.cli.template import render

        print("\n".join(render(format, d) for d in out))
        return
    json.dump(out, sys.stdout, indent=4)
    print()


def export(container: str, output: str | None) -> None:
    import os

    from pyc.engine import Engine
    from pyc.errors import InvalidArgument

    if output is None:
        if sys.stdout.isatty():
            raise InvalidArgument("refusing to write a tar to a terminal: use -o FILE or a redirect")
        Engine().export(container, 1)
        return
    tmp = f"{output}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        Engine().export(container, fd)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, output)


FORMAT = Flag(("-f", "--format"), "format", help="A Go template, e.g. '{{.State.Status}}'.")

COMMANDS = [
    Command(
        ("container", "ls"),
        "List containers.",
        ps,
        flags=(
            Flag(("-a", "--all"), "all", bool, "Show stopped containers too."),
            Flag(("-q", "--quiet"), "quiet", bool, "Only show IDs."),
            Flag(("-f", "--filter"), "filter", list, "status=..., name=..., ancestor=... (repeatable)."),
            Flag(("--format",), "format", help="json, or a Go template such as '{{.Names}}'."),
        ),
        aliases=(("ps",), ("container", "ps"), ("container", "list")),
    ),
    Command(("container", "inspect"), "Show containers as JSON.", inspect, (Arg("containers", "CONTAINER", many=True),), (FORMAT,), aliases=(("inspect",),)),
    Command(
        ("container", "export"),
        "Write a container's filesystem as a tar.",
        export,
        (Arg("container", "CONTAINER"),),
        (Flag(("-o", "--output"), "output", help="Write to a file, not stdout."),),
        aliases=(("export",),),
    ),
]
