"""`pyc build` (also `image build`) and `pyc builder prune`."""

from __future__ import annotations

import os
import sys

from pyc.cli.spec import Arg, Command, Flag


def _pairs(items: list[str], what: str, from_env: bool) -> dict[str, str]:
    """K=V words to a dict; `K` alone takes pyc's environment's value (build args, as docker)."""
    from pyc.errors import InvalidArgument

    out: dict[str, str] = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid {what} {item!r}: use KEY=VALUE")
        if eq:
            out[k] = v
        elif from_env and k in os.environ:
            out[k] = os.environ[k]
        elif not from_env:
            out[k] = ""
    return out


def _secrets(items: list[str]) -> dict[str, str]:
    """--secret id=ID,src=FILE (docker's; `source=` too), each file checked now."""
    from pyc.errors import InvalidArgument

    out: dict[str, str] = {}
    for item in items:
        fields = dict(kv.partition("=")[::2] for kv in item.split(","))
        sid, src = fields.get("id", ""), fields.get("src") or fields.get("source") or ""
        if not sid or not src or set(fields) - {"id", "src", "source", "type"}:
            raise InvalidArgument(f"invalid --secret {item!r}: use id=ID,src=FILE")
        if not os.path.isfile(src):
            raise InvalidArgument(f"--secret {item!r}: {src} is not a file")
        out[sid] = os.path.abspath(src)
    return out


def _epoch(timestamp: str | None) -> int | None:
    from pyc.errors import InvalidArgument

    value = timestamp if timestamp is not None else os.environ.get("SOURCE_DATE_EPOCH") or None
    if value is None:
        return None
    if not value.isdigit():
        raise InvalidArgument(f"invalid {'--timestamp' if timestamp is not None else 'SOURCE_DATE_EPOCH'} {value!r}: seconds since 1970")
    return int(value)


def build(
    context: str,
    file: str | None,
    tags: list[str],
    build_args: list[str],
    target: str | None,
    no_cache: bool,
    quiet: bool,
    iidfile: str | None,
    labels: list[str],
    timestamp: str | None,
    pull: bool,
    outputs: list[str],
    secrets: list[str],
    progress: str,
    network: str | None,
    allow: list[str],
) -> None:
    from pyc.build import output
    from pyc.build.builder import BuildOptions
    from pyc.engine import Engine
    from pyc.errors import InvalidArgument

    if progress not in ("auto", "plain", "tty", "quiet"):
        raise InvalidArgument(f"invalid --progress {progress!r}: auto, plain, tty or quiet")
    quiet = quiet or progress == "quiet"
    outs = [output.parse(o) for o in outputs]
    to_stdout = ("tar", "-") in outs  # standard output is the tar's: no steps, no ID there
    for a in allow:
        if a not in ("network.host",):
            raise InvalidArgument(f"invalid --allow {a!r}: pyc knows network.host")
    opts = BuildOptions(tags, _pairs(build_args, "--build-arg", True), target, no_cache, quiet or to_stdout, _pairs(labels, "--label", False), _epoch(timestamp), pull, outs, _secrets(secrets))
    opts.network = None if network in (None, "default") else network
    opts.allow = allow
    opts.progress = progress
    text = None
    if file == "-":
        if context == "-":
            raise InvalidArgument("the Dockerfile and the context cannot both come from standard input")
        text = sys.stdin.read()
    img = Engine().build(0 if context == "-" else context, opts, None if file == "-" else file, text)
    if iidfile:
        from pyc.store import atomic

        atomic.write_file(iidfile, img.id.encode(), durable=False)
    if to_stdout:
        return
    if not quiet:
        for tag in img.refs:
            print(f"Successfully tagged {tag}")
    print(img.id)


def prune(all: bool, force: bool) -> None:
    from pyc.cli.output import size
    from pyc.engine import Engine

    dropped, freed = Engine().prune_build_cache()
    if dropped:
        print("Deleted build cache objects:\n" + "\n".join(k[:25] for k in dropped) + "\n")
    print(f"Total reclaimed space: {size(freed)}")


COMMANDS = [
    Command(
        ("image", "build"),
        "Build an image from a Dockerfile (or Containerfile) and a context directory.",
        build,
        (Arg("context", "CONTEXT", "The build context: a directory, a tar (plain, gzip, zstd), or - for a tar or a Dockerfile on standard input."),),
        (
            Flag(("-f", "--file"), "file", help="The Dockerfile (default: CONTEXT/Dockerfile or CONTEXT/Containerfile; - for standard input)."),
            Flag(("-t", "--tag"), "tags", list, "Name the image NAME[:TAG] (repeatable)."),
            Flag(("--build-arg",), "build_args", list, "Set a build argument K=V (K alone: pyc's environment's value)."),
            Flag(("--target",), "target", help="Build this stage and the stages it needs, no more."),
            Flag(("--no-cache",), "no_cache", bool, "Run every step, whatever the cache holds."),
            Flag(("-o", "--output"), "outputs", list, "Also write the image's files: type=local,dest=DIR (or DIR), type=tar,dest=FILE (dest=-: standard output)."),
            Flag(("--secret",), "secrets", list, "A file RUN --mount=type=secret,id=ID mounts: id=ID,src=FILE (never in the image or the cache key)."),
            Flag(
                ("--progress",),
                "progress",
                help="plain: each step on a line as it starts, its output as it comes, its time; tty: the steps redrawn with their state and time (auto: tty on a terminal); quiet: as -q.",
                default="auto",
            ),
            Flag(("--network",), "network", help="The network of RUN steps: none, host or a network's name (default: pyc run's default, bridge)."),
            Flag(("--allow",), "allow", list, "An entitlement: network.host (a Dockerfile's RUN --network=host)."),
            Flag(("--pull",), "pull", bool, "Ask the registry for a newer FROM image even when the store has one."),
            Flag(("-q", "--quiet"), "quiet", bool, "Print only the image ID."),
            Flag(("--iidfile",), "iidfile", help="Write the image ID to this file."),
            Flag(("--label",), "labels", list, "Add a label K=V to the image."),
            Flag(("--timestamp",), "timestamp", help="Seconds since 1970: every time in the image (as SOURCE_DATE_EPOCH)."),
        ),
        aliases=(("build",),),
    ),
    Command(
        ("builder", "prune"),
        "Remove the build cache.",
        prune,
        flags=(Flag(("-a", "--all"), "all", bool, "Remove all of it (the only way yet)."), Flag(("-f", "--force"), "force", bool, "Do not prompt for confirmation.")),
    ),
]
