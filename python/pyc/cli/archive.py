"""Archive verbs: save, load (and `image save`, `image load`)."""

import os
import sys

import typer

from pyc import progress
from pyc.engine import Engine
from pyc.errors import InvalidArgument


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    def save(
        refs: list[str] = typer.Argument(..., help="Images to save: NAME[:TAG] or ID."),
        output: str | None = typer.Option(None, "-o", "--output", help="File (or directory, for oci-dir) to write; - or none for stdout."),
        format: str = typer.Option("docker-archive", "--format", help="docker-archive, oci-archive or oci-dir."),
    ) -> None:
        """Save images to a tar archive (docker-archive, oci-archive) or an OCI directory."""
        if output is None or output == "-":
            if sys.stdout.isatty():
                raise InvalidArgument("refusing to write an archive to a terminal: use -o FILE or redirect")
            sys.stdout.flush()
            with progress.bars():
                Engine().save(refs, sys.stdout.fileno(), format)
        else:
            with progress.bars():
                Engine().save(refs, output, format)

    def load(
        input: str | None = typer.Option(None, "-i", "--input", help="Archive (docker-archive, oci-archive; plain, gzip or zstd) or OCI directory; - for stdin."),
        quiet: bool = typer.Option(False, "-q", "--quiet", help="Print nothing."),
    ) -> None:
        """Load images from an archive or an OCI directory."""
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

    for group in (app, image_app):
        group.command("save", help="Save images to a tar archive or an OCI directory.")(save)
        group.command("load", help="Load images from a tar archive or an OCI directory.")(load)
