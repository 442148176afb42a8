"""Image verbs: images, import, tag, rmi, image inspect, image bootstrap."""

import json
import sys

import typer

from pyc.cli import transfer
from pyc.cli.output import ago, size, table
from pyc.engine import Engine


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    def images(quiet: bool = typer.Option(False, "-q", "--quiet", help="Only show image IDs.")) -> None:
        """List images."""
        rows = []
        for img in Engine().images.all():
            for ref in img.refs or ["<none>:<none>"]:
                repo, _, tag = ref.rpartition(":")
                rows.append([repo, tag, img.id[7:19], ago(img.config.get("created")) or "N/A", size(img.size)])
        if quiet:
            for image_id in dict.fromkeys(r[2] for r in rows):
                print(image_id)
        else:
            print(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows))

    def import_(
        source: str = typer.Argument(..., help="A rootfs tar (plain, gzip or zstd), a directory, or - for stdin."),
        ref: str | None = typer.Argument(None, help="NAME[:TAG] for the new image."),
        change: list[str] = typer.Option([], "-c", "--change", help="Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER."),
    ) -> None:
        """Import a rootfs tarball or directory as a one-layer image."""
        transfer.import_(source, ref, change)

    def tag(source: str = typer.Argument(...), target: str = typer.Argument(...)) -> None:
        """Give an image another name."""
        Engine().tag(source, target)

    def rmi(refs: list[str] = typer.Argument(...), force: bool = typer.Option(False, "-f", "--force")) -> None:
        """Remove images."""
        engine = Engine()
        for ref in refs:
            print("\n".join(engine.remove_image(ref, force)))

    def inspect(refs: list[str] = typer.Argument(...)) -> None:
        """Show images as JSON."""
        engine = Engine()
        out = []
        for ref in refs:
            img = engine.image(ref)
            out.append(
                {
                    "Id": img.id,
                    "RepoTags": img.refs,
                    "ManifestDigest": img.manifest_digest,
                    "Created": img.config.get("created"),
                    "Architecture": img.config.get("architecture"),
                    "Os": img.config.get("os"),
                    "Config": img.run_config,
                    "RootFS": {"Type": "layers", "Layers": img.diff_ids},
                    "Size": img.size,
                    "History": img.config.get("history", []),
                }
            )
        json.dump(out, sys.stdout, indent=4)
        print()

    def bootstrap(name: str = typer.Argument(..., help="busybox or debian.")) -> None:
        """Make a built-in image from this machine's Debian packages."""
        img = Engine().bootstrap(name)
        print(f"{img.refs[0] if img.refs else name}: {img.id}")

    app.command("images", help="List images.")(images)
    image_app.command("ls", help="List images.")(images)
    app.command("import", help="Import a rootfs tarball or directory as an image.")(import_)
    image_app.command("import", help="Import a rootfs tarball or directory as an image.")(import_)
    app.command("tag", help="Give an image another name.")(tag)
    image_app.command("tag", help="Give an image another name.")(tag)
    app.command("rmi", help="Remove images.")(rmi)
    image_app.command("rm", help="Remove images.")(rmi)
    image_app.command("inspect", help="Show images as JSON.")(inspect)
    image_app.command("bootstrap", help="Make a built-in image (busybox, debian).")(bootstrap)
