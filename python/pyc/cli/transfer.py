"""import, load, save: the bodies the typer commands run, and a parser that runs them without
importing typer (100 ms of a 0.5 s import otherwise), as verbs.py does for stop and rm.
tests/unit/test_cli_verbs.py keeps the flags equal to typer's."""

from __future__ import annotations

import os
import sys

from pyc import progress
from pyc.cli.verbs import split_flags
from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# verb -> flag -> (parameter, takes a value: False, True, or "many" for a repeatable option)
FLAGS: dict[str, dict[str, tuple[str, bool | str]]] = {
    "import": {"-c": ("change", "many"), "--change": ("change", "many")},
    "load": {"-i": ("input", True), "--input": ("input", True), "-q": ("quiet", False), "--quiet": ("quiet", False)},
    "save": {"-o": ("output", True), "--output": ("output", True), "--format": ("format", True)},
}
# verb -> (fewest, most) positional arguments
ARGS = {"import": (1, 2), "load": (0, 0), "save": (1, None)}


def import_(source: str, ref: str | None, change: list[str]) -> int:
    from pyc.engine import Engine
    from pyc.store.changes import parse_changes

    with progress.bars():
        img = Engine().import_image(0 if source == "-" else source, ref, parse_changes(change))
    print(img.id)
    return 0


def load(input: str | None, quiet: bool) -> int:
    from pyc.engine import Engine

    if input is None or input == "-":
        if input is None and sys.stdin.isatty():
            raise InvalidArgument("no input: use -i FILE, or pipe an archive to stdin")
        with progress.bars():
            names = Engine().load(sys.stdin.fileno())
    else:
        with progress.bars():
            names = Engine().load(os.path.expanduser(input))
    if not quiet:
        for n in names:
            print(f"Loaded image ID: {n}" if n.startswith("sha256:") else f"Loaded image: {n}")
    return 0


def save(refs: list[str], output: str | None, format: str) -> int:
    from pyc.engine import Engine

    if output is None or output == "-":
        if sys.stdout.isatty():
            raise InvalidArgument("refusing to write an archive to a terminal: use -o FILE or redirect")
        sys.stdout.flush()
        with progress.bars():
            Engine().save(refs, sys.stdout.fileno(), format)
    else:
        with progress.bars():
            Engine().save(refs, output, format)
    return 0


def fast_parse(verb: str, args: list[str]) -> dict[str, object] | None:
    """The command's keyword arguments, or None for anything typer should answer (help, errors)."""
    parsed = split_flags(FLAGS[verb], args)
    if parsed is None:
        return None
    positional, opts = parsed
    fewest, most = ARGS[verb]
    if len(positional) < fewest or (most is not None and len(positional) > most):
        return None
    if verb == "import":
        return {"source": positional[0], "ref": positional[1] if len(positional) > 1 else None, "change": opts.get("change", [])}
    if verb == "load":
        return {"input": opts.get("input"), "quiet": bool(opts.get("quiet"))}
    return {"refs": positional, "output": opts.get("output"), "format": opts.get("format", "docker-archive")}


def run_fast(verb: str, kwargs: dict[str, object]) -> int:
    bodies: dict[str, Callable[..., int]] = {"import": import_, "load": load, "save": save}
    return bodies[verb](**kwargs)
