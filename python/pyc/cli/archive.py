"""Archive verbs: save, load (and `image save`, `image load`)."""

import typer

from pyc.cli import transfer


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    def save(
        refs: list[str] = typer.Argument(..., help="Images to save: NAME[:TAG] or ID."),
        output: str | None = typer.Option(None, "-o", "--output", help="File (or directory, for oci-dir) to write; - or none for stdout."),
        format: str = typer.Option("docker-archive", "--format", help="docker-archive, oci-archive or oci-dir."),
    ) -> None:
        """Save images to a tar archive (docker-archive, oci-archive) or an OCI directory."""
        transfer.save(refs, output, format)

    def load(
        input: str | None = typer.Option(None, "-i", "--input", help="Archive (docker-archive, oci-archive; plain, gzip or zstd) or OCI directory; - for stdin."),
        quiet: bool = typer.Option(False, "-q", "--quiet", help="Print nothing."),
    ) -> None:
        """Load images from an archive or an OCI directory."""
        transfer.load(input, quiet)

    for group in (app, image_app):
        group.command("save", help="Save images to a tar archive or an OCI directory.")(save)
        group.command("load", help="Load images from a tar archive or an OCI directory.")(load)
