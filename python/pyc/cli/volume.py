"""`pyc volume create|ls|inspect|rm|prune|export|import`: docker's local volumes, and moving
their files between machines as tars."""

from __future__ import annotations

import os
import sys

from pyc.cli.spec import Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.engine import Engine
    from pyc.records import VolumeRecord


def _pairs(given: list[str], what: str) -> dict[str, str]:
    from pyc.errors import InvalidArgument

    out = {}
    for item in given:
        key, eq, value = item.partition("=")
        if not key or (what == "--opt" and not eq):
            raise InvalidArgument(f"invalid {what} {item!r}: use KEY=VALUE")
        out[key] = value
    return out


def create(name: str | None, driver: str, label: list[str], opt: list[str]) -> None:
    from pyc.engine import Engine
    from pyc.errors import InvalidArgument

    if driver != "local":
        raise InvalidArgument(f'volume driver "{driver}" is not supported: pyc has the local driver only')
    print(Engine().create_volume(name, _pairs(label, "--label"), _pairs(opt, "--opt")).name)


def document(engine: Engine, v: VolumeRecord) -> dict[str, object]:
    """docker volume inspect's document."""
    return {
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": v.labels or None,
        "Mountpoint": os.path.join(engine.paths.volume(v.name), "_data"),
        "Name": v.name,
        "Options": v.options or None,
        "Scope": "local",
    }


def _filters(given: list[str]) -> dict[str, list[str]]:
    """docker's volume filters: dangling=true|false, name= (a substring), label=K or K=V,
    driver=; filters of one key are or-ed, keys and-ed."""
    from pyc.errors import InvalidArgument

    out: dict[str, list[str]] = {}
    for f in given:
        key, eq, value = f.partition("=")
        if not (key == "dangling" and value in ("true", "false", "1", "0") or key in ("name", "label", "driver") and eq):
            raise InvalidArgument(f"invalid filter {f!r}: use dangling=true|false, name=, label=K[=V] or driver=")
        out.setdefault(key, []).append(value)
    return out


def _matches(v: VolumeRecord, users: list[str], filters: dict[str, list[str]]) -> bool:
    def one(key: str, value: str) -> bool:
        if key == "dangling":
            return (not users) == (value in ("true", "1"))
        if key == "name":
            return value in v.name
        if key == "label":
            k, has_value, want = value.partition("=")
            return k in v.labels and (not has_value or v.labels[k] == want)
        return v.driver == value

    return all(any(one(key, value) for value in values) for key, values in filters.items())


def ls(quiet: bool, filter: list[str], format: str | None) -> None:
    from pyc.cli.output import table
    from pyc.engine import Engine

    filters = _filters(filter)
    volumes = [(v, users) for v, users in Engine().list_volumes() if _matches(v, users, filters)]
    if quiet:
        for v, _ in volumes:
            print(v.name)
        return
    if format is not None:
        import json

        from pyc.cli.template import render

        for v, _ in volumes:
            row = {"Driver": v.driver, "Name": v.name, "Labels": ",".join(f"{k}={val}" for k, val in v.labels.items()), "Scope": "local"}
            print(json.dumps(row) if format == "json" else render(format, row))
        return
    print(table(["DRIVER", "VOLUME NAME"], [[v.driver, v.name] for v, _ in volumes]))


def inspect(volumes: list[str], format: str | None) -> None:
    from pyc.cli.containers import show
    from pyc.engine import Engine

    engine = Engine()
    show([document(engine, engine.volume(name)) for name in volumes], format)


def rm(volumes: list[str], force: bool) -> None:
    from pyc.cli.lifecycle import _each
    from pyc.engine import Engine
    from pyc.errors import VolumeNotFound

    engine = Engine()

    def one(name: str) -> str:
        try:
            engine.remove_volume(name)
        except VolumeNotFound:
            if not force:  # docker: -f is quiet about a volume that is not there
                raise
        return name

    _each(volumes, one)


def prune(all: bool, force: bool) -> None:
    from pyc.cli.output import size
    from pyc.engine import Engine

    if not force:
        what = "all local volumes not used by at least one container" if all else "anonymous local volumes not used by at least one container"
        print(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ", end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return
    names, freed = Engine().prune_volumes(all)
    if names:
        print("Deleted Volumes:\n" + "\n".join(names) + "\n")
    print(f"Total reclaimed space: {size(freed)}")


def export(volume: str, output: str | None) -> None:
    from pyc.cli.output import write_out
    from pyc.engine import Engine

    engine = Engine()
    write_out(output, lambda fd: engine.export_volume(volume, fd))


def import_(volume: str, source: str, force: bool) -> None:
    from pyc.engine import Engine

    Engine().import_volume(volume, 0 if source == "-" else os.path.expanduser(source), force)


COMMANDS = [
    Command(
        ("volume", "create"),
        "Create a volume.",
        create,
        (Arg("name", "VOLUME", "Its name (default: a random one).", required=False),),
        (
            Flag(("-d", "--driver"), "driver", help="Volume driver: local, the only one.", default="local"),
            Flag(("-l", "--label"), "label", list, "Set a label: KEY=VALUE."),
            Flag(("-o", "--opt"), "opt", list, "Driver option: type=tmpfs|none, o=size=64m|bind, device=PATH."),
        ),
    ),
    Command(
        ("volume", "ls"),
        "List volumes.",
        ls,
        flags=(
            Flag(("-q", "--quiet"), "quiet", bool, "Only show names."),
            Flag(("-f", "--filter"), "filter", list, "dangling=true|false, name=, label=K[=V], driver= (repeatable)."),
            Flag(("--format",), "format", help="json, or a Go template such as '{{.Name}}'."),
        ),
        aliases=(("volume", "list"),),
    ),
    Command(("volume", "inspect"), "Show volumes as JSON.", inspect, (Arg("volumes", "VOLUME", many=True),), (Flag(("-f", "--format"), "format", help="A Go template."),)),
    Command(
        ("volume", "rm"),
        "Remove volumes no container uses.",
        rm,
        (Arg("volumes", "VOLUME", many=True),),
        (Flag(("-f", "--force"), "force", bool, "No error for a volume that is not there."),),
        aliases=(("volume", "remove"),),
    ),
    Command(
        ("volume", "prune"),
        "Remove anonymous volumes no container uses (-a: every unused volume).",
        prune,
        flags=(Flag(("-a", "--all"), "all", bool, "Named volumes too."), Flag(("-f", "--force"), "force", bool, "Do not prompt for confirmation.")),
    ),
    Command(
        ("volume", "export"),
        "Write a volume's files as a tar (owners, modes, xattrs, hardlinks kept).",
        export,
        (Arg("volume", "VOLUME"),),
        (Flag(("-o", "--output"), "output", help="Write to a file, not stdout."),),
    ),
    Command(
        ("volume", "import"),
        "Unpack a tar (plain, gzip or zstd) into a new or empty volume.",
        import_,
        (Arg("volume", "VOLUME"), Arg("source", "FILE", "A tar, or - for stdin.")),
        (Flag(("--force",), "force", bool, "Into a volume that has files (the tar's replace them)."),),
    ),
]
