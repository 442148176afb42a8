"""Container verbs that show or copy out: ps, inspect, top, export."""

from __future__ import annotations

import sys

from pyc.cli.spec import Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.records import ContainerState


def _status(state: ContainerState) -> str:
    from pyc.cli.output import ago

    if state.status == "running":
        return f"Up {ago(state.started_at).removesuffix(' ago')}{' (Paused)' if state.paused else ''}"
    if state.status == "restarting":
        return f"Restarting ({state.exit_code}) {ago(state.finished_at)}".rstrip()
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {ago(state.finished_at)}".rstrip()
    return "Created"


def ps(all: bool, quiet: bool, filter: list[str], format: str | None) -> None:
    from pyc.cli.output import ago, table
    from pyc.cli.ps_filter import matches, parse_filters
    from pyc.engine import Engine

    filters = parse_filters(filter)
    # A status filter asks about stopped containers too, as in docker.
    containers = [c for c in Engine().list_containers(all or "status" in filters) if matches(c, filters)]
    if quiet:
        for c in containers:
            print(c.id[:12])
        return
    rows = []
    for c in containers:
        cmd = " ".join(c.record.config.cmd)
        created = c.record.created
        state = c.current_state()
        row = {"ID": c.id[:12], "Image": c.record.image, "Command": cmd, "CreatedAt": created, "RunningFor": ago(created), "Status": _status(state), "State": state.shown_status}
        rows.append(row | {"Names": c.name})
    if format is not None:
        from pyc.cli.template import print_each

        print_each(rows, format)
        return
    short = [[r["ID"], r["Image"], f'"{r["Command"][:20]}…"' if len(r["Command"]) > 20 else f'"{r["Command"]}"', r["RunningFor"], r["Status"], r["Names"]] for r in rows]
    print(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], short))


def show(documents: list[dict[str, object]], format: str | None) -> None:
    """inspect's output: JSON, or each document through a Go template."""
    import json

    if format is not None:
        from pyc.cli.template import render

        print("\n".join(render(format, d) for d in documents))
        return
    json.dump(documents, sys.stdout, indent=4)
    print()


def inspect(containers: list[str], format: str | None) -> None:
    from pyc.engine import Engine
    from pyc.inspect import document

    show([document(c.record, c.state, c.path("ctr.log")) for c in map(Engine().container, containers)], format)


def inspect_any(names: list[str], format: str | None, type: str | None) -> None:
    """docker's top-level inspect: each name a container, else an image (--type: only that)."""
    from pyc.engine import Engine
    from pyc.errors import ContainerNotFound, ImageNotFound, InvalidArgument, Kind, PycError
    from pyc.inspect import document, image_document

    if type not in (None, "container", "image"):
        raise InvalidArgument(f"invalid --type {type!r}: container or image")
    engine = Engine()
    out = []
    for name in names:
        if type != "image":
            try:
                c = engine.container(name)
                out.append(document(c.record, c.state, c.path("ctr.log")))
                continue
            except ContainerNotFound:
                if type == "container":
                    raise
        try:
            out.append(image_document(engine.image(name)))
        except ImageNotFound:
            if type == "image":
                raise
            raise PycError(f"no such object: {name}", Kind.NOT_FOUND) from None
    show(out, format)


def top(container: str, ps_args: list[str]) -> None:
    """docker's top: its columns as ps titles them, each at least 20 wide (docker's tabwriter)."""
    from pyc.engine import Engine

    t = Engine().top(container, ps_args)
    rows = [t.titles, *t.processes]
    widths = [max(20, *(len(r[i]) + 3 for r in rows)) for i in range(len(t.titles) - 1)]
    for row in rows:
        print("".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + row[-1])


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
    Command(("container", "inspect"), "Show containers as JSON.", inspect, (Arg("containers", "CONTAINER", many=True),), (FORMAT,)),
    Command(
        ("inspect",),
        "Show containers or images as JSON.",
        inspect_any,
        (Arg("names", "NAME", "Container or image names or IDs.", many=True),),
        (FORMAT, Flag(("--type",), "type", help="Only this kind of object: container or image.")),
    ),
    Command(
        ("container", "top"),
        "Show the processes of a running container (ps OPTIONS as the host's ps takes them; default -ef).",
        top,
        (Arg("container", "CONTAINER"), Arg("ps_args", "[ps OPTIONS]", "Options for ps.", required=False, many=True)),
        aliases=(("top",),),
        interspersed=False,
    ),
    Command(
        ("container", "export"),
        "Write a container's filesystem as a tar.",
        export,
        (Arg("container", "CONTAINER"),),
        (Flag(("-o", "--output"), "output", help="Write to a file, not stdout."),),
        aliases=(("export",),),
    ),
]
