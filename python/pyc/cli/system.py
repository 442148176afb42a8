"""pyc system df, system prune and image prune: what the store holds, and freeing what nothing
uses (docker's prompt, sections and total)."""

from __future__ import annotations

import sys

from pyc.cli.spec import Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.results import PruneReport


def _pct(part: int, whole: int) -> str:
    from pyc.cli.output import size

    return f"{size(part)} ({part * 100 // whole if whole else 0}%)"


def confirm(warning: list[str]) -> bool:
    """docker's prompt: the warning, then whether the answer is yes."""
    print("\n".join(warning) + "\nAre you sure you want to continue? [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def print_reports(reports: list[PruneReport], reclaimed: int) -> None:
    """Each section that removed something (docker's `Deleted Containers:` ...), then the total."""
    from pyc.cli.output import size

    for r in reports:
        if r.deleted:
            print(f"{r.title}:\n" + "\n".join(r.deleted) + "\n")
    print(f"Total reclaimed space: {size(reclaimed)}")


def prune(all: bool, force: bool) -> None:
    """Remove unused images."""
    from pyc.engine import Engine
    from pyc.results import PruneReport

    what = "all images without at least one container associated to them" if all else "all dangling images"
    if not force and not confirm([f"WARNING! This will remove {what}."]):
        return
    lines, freed = Engine().prune_images(all)
    print_reports([PruneReport(title="Deleted Images", deleted=lines, reclaimed=freed)], freed)


def system_prune(all: bool, volumes: bool, force: bool) -> None:
    """Remove what nothing uses: stopped containers, dangling (-a: unused) images, and the
    kinds each pruner of pyc.prune adds."""
    from pyc.engine import Engine
    from pyc.prune import wanted

    if not force:
        lines = [f"  - {p.warning_all if all else p.warning}" for p in wanted({"volumes": volumes})]
        if not confirm(["WARNING! This will remove:", *lines, ""]):
            return
    result = Engine().system_prune(all, volumes)
    print_reports(result.reports, result.reclaimed)


def df(verbose: bool) -> None:
    """Show disk usage of images and containers."""
    from pyc.cli.output import ago, size, table
    from pyc.engine import Engine

    u = Engine().disk_usage()
    running = [c for c in u.containers if c.status == "running"]
    c_size = sum(c.size for c in u.containers)
    v_size = sum(v.size for v in u.volumes)
    if not verbose:
        rows = [
            ["Images", str(len(u.images)), str(sum(1 for i in u.images if i.containers)), size(u.images_size), _pct(u.images_reclaimable, u.images_size)],
            ["Containers", str(len(u.containers)), str(len(running)), size(c_size), _pct(c_size - sum(c.size for c in running), c_size)],
            ["Local Volumes", str(len(u.volumes)), str(sum(1 for v in u.volumes if v.links)), size(v_size), _pct(v_size - sum(v.size for v in u.volumes if v.links), v_size)],
            ["Build Cache", str(u.build_cache), "0", size(u.build_cache_size), _pct(u.build_cache_size, u.build_cache_size)],
            # What interrupted commands left in the store (pyc image prune frees it).
            ["Leftovers", "", "", size(u.leftovers), _pct(u.leftovers, u.leftovers)],
        ]
        print(table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows))
        return
    rows = []
    for i in u.images:
        for ref in i.refs or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            rows.append([repo, tag, i.id[7:19], ago(i.created) or "N/A", size(i.size), size(i.shared), size(i.size - i.shared), str(i.containers)])
    print("Images space usage:\n")
    print(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], rows))
    crows = []
    for c in u.containers:
        cmd = " ".join(c.command)
        crows.append([c.id[:12], c.image, f'"{cmd[:20]}"', "0", size(c.size), ago(c.created), c.status, c.name])
    print("\nContainers space usage:\n")
    print(table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"], crows))
    print("\nLocal Volumes space usage:\n")
    print(table(["VOLUME NAME", "LINKS", "SIZE"], [[v.name, str(v.links), size(v.size)] for v in u.volumes]))
    print(f"\nLeftovers of interrupted commands (pyc image prune frees them): {size(u.leftovers)}")


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
    Command(
        ("system", "prune"),
        "Remove stopped containers and unused images.",
        system_prune,
        flags=(
            Flag(("-a", "--all"), "all", bool, "Remove all images no container uses, not just dangling ones."),
            Flag(("--volumes",), "volumes", bool, "Remove volumes no container uses too."),
            Flag(("-f", "--force"), "force", bool, "Do not prompt for confirmation."),
        ),
    ),
]
