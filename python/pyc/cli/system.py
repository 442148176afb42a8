"""pyc system df and pyc image prune: what the store holds, and freeing what nothing uses."""

import sys

import typer

from pyc.cli.output import ago, size, table
from pyc.engine import Engine


def _pct(part: int, whole: int) -> str:
    return f"{size(part)} ({part * 100 // whole if whole else 0}%)"


def register(app: typer.Typer, image_app: typer.Typer, system_app: typer.Typer) -> None:
    def prune(
        all: bool = typer.Option(False, "-a", "--all", help="Remove all images no container uses, not just dangling ones."),
        force: bool = typer.Option(False, "-f", "--force", help="Do not prompt for confirmation."),
    ) -> None:
        """Remove unused images."""
        if not force:
            what = "all images without at least one container associated to them" if all else "all dangling images"
            print(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ", end="", flush=True)
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                return
        lines, freed = Engine().prune_images(all)
        if lines:
            print("Deleted Images:\n" + "\n".join(lines) + "\n")
        print(f"Total reclaimed space: {size(freed)}")

    def df(verbose: bool = typer.Option(False, "-v", "--verbose", help="Show per-image and per-container use.")) -> None:
        """Show disk usage of images and containers."""
        from pyc.store.usage import image_usage, summary, tree_size

        engine = Engine()
        images = list(engine.images.all())
        containers = engine.containers.all()
        c_sizes = {c.id: tree_size(c.path("upper")) for c in containers}
        if not verbose:
            rows = [[t, str(n), str(a), size(s), _pct(r, s)] for t, n, a, s, r in summary(images, containers, c_sizes)]
            print(table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows))
            return
        rows = []
        for u in image_usage(images, containers):
            for ref in u.image.refs or ["<none>:<none>"]:
                repo, _, tag = ref.rpartition(":")
                created = ago(u.image.config.get("created")) or "N/A"
                rows.append([repo, tag, u.image.id[7:19], created, size(u.size), size(u.shared), size(u.unique), str(u.containers)])
        print("Images space usage:\n")
        print(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], rows))
        crows = []
        for c in containers:
            cmd = " ".join(c.data.get("Config", {}).get("Cmd") or [])
            crows.append([c.id[:12], str(c.data.get("Image")), f'"{cmd[:20]}"', "0", size(c_sizes[c.id]), ago(str(c.data.get("Created"))), c.status, c.name])
        print("\nContainers space usage:\n")
        print(table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"], crows))
        print("\nLocal Volumes space usage:\n")
        print(table(["VOLUME NAME", "LINKS", "SIZE"], []))

    image_app.command("prune", help="Remove unused images.")(prune)
    system_app.command("df", help="Show disk usage of images and containers.")(df)
