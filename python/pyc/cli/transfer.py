"""import, load, save (also under `image`): images from and to archives and directories."""

from __future__ import annotations

import os
import sys

from pyc import progress
from pyc.cli.spec import Arg, Command, Flag
from pyc.errors import InvalidArgument


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


def save(refs: list[str], output: str | None, format: str | None, delta_from: list[str]) -> int:
    from pyc.engine import Engine

    if delta_from and format is not None:
        raise InvalidArgument("--format does not apply to a delta bundle (--delta-from)")
    out: str | int
    if output is None or output == "-":
        if sys.stdout.isatty():
            raise InvalidArgument("refusing to write an archive to a terminal: use -o FILE or redirect")
        sys.stdout.flush()
        out = sys.stdout.fileno()
    else:
        out = output
    with progress.bars():
        if delta_from:
            Engine().save_delta(refs, delta_from, out)
        else:
            Engine().save(refs, out, format or "docker-archive")
    return 0


COMMANDS = [
    Command(
        ("image", "import"),
        "Import a rootfs tarball or directory as a one-layer image.",
        import_,
        (Arg("source", "SOURCE", "A rootfs tar (plain, gzip or zstd), a directory, or - for stdin."), Arg("ref", "NAME[:TAG]", "Name of the new image.", required=False)),
        (Flag(("-c", "--change"), "change", list, "Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER."),),
        aliases=(("import",),),
    ),
    Command(
        ("image", "load"),
        "Load images from an archive or an OCI directory, or apply a delta bundle.",
        load,
        flags=(
            Flag(("-i", "--input"), "input", help="Archive (docker-archive, oci-archive; plain, gzip or zstd), OCI directory or delta bundle; - for stdin."),
            Flag(("-q", "--quiet"), "quiet", bool, "Print nothing."),
        ),
        aliases=(("load",),),
    ),
    Command(
        ("image", "save"),
        "Save images to a tar archive (docker-archive, oci-archive) or an OCI directory.",
        save,
        (Arg("refs", "IMAGE", "Images to save: NAME[:TAG] or ID.", many=True),),
        (
            Flag(("-o", "--output"), "output", help="File (or directory, for oci-dir) to write; - or none for stdout."),
            Flag(("--format",), "format", help="docker-archive (the default), oci-archive or oci-dir."),
            Flag(("--delta-from",), "delta_from", list, "An image the target machine has: write a delta bundle carrying only what differs from it (repeatable).", metavar="IMAGE"),
        ),
        aliases=(("save",),),
    ),
]
