"""pyc system df and pyc image prune: what the store holds, and freeing what nothing uses."""

from __future__ import annotations

import sys

from pyc.cli.spec import Command, Flag


def _pct(part: int, whole: int) -> str:
    from pyc.cli.output import size

    return f"{size(part)} ({part * 100 // whole if whole else 0}%)"


def prune(all: bool, force: bool) -> None:
    """Remove unused images."""
    from pyc.cli.output import size
    from pyc.engine import Engine

    if not force:
        what = "all images without at least one container associated to them" if all else "all dangling images"
        print(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ", end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return
    lines, freed = Engine().prune_images(all)
    if lines:
        print("Deleted Images:\n" + "\n".join(lines) + "\n")
    print(f"Total reclaimed space: {size(freed)}")


def df(verbose: bool) -> None:
    """Show disk usage of images and containers."""
    from pyc.cli.output import ago, size, table
    from pyc.engine import Engine
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


COMMANDS = [
    Command(
        ("image", "prune"),
        "Remove unused images.",
        prune,
        flags=(
            Flag(("-a", "--all"), "all", bool, "Remove all images no container uses, not just dangling ones."),
            Flag(("-f", "--force"), "force", bool, "Do not prompt for confirmation."),
        ),
    ),
    Command(("system", "df"), "Show disk usage of images and containers.", df, flags=(Flag(("-v", "--verbose"), "verbose", bool, "Show per-image and per-container use."),)),
]
