"""`pyc system prune`: a list of pruners run in turn, each removing one kind of unused thing and
reporting what it removed and the bytes reclaimed, as `pyc system df` counts them (so what df
called reclaimable is what prune says it reclaimed). Another kind (volumes, networks, build
cache) is one more `Pruner` in PRUNERS, at its place in docker's order: containers, networks,
volumes, images, build cache."""

from __future__ import annotations

from pyc.results import PruneReport, SystemPrune

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyc.engine import Engine


class Pruner:
    """One kind of thing `system prune` removes. `warning` (and `warning_all`, for -a) is its
    line in docker's prompt; `flag` the option of `system prune` it needs (None: always runs);
    `prune(engine, all)` removes and reports."""

    __slots__ = ("name", "warning", "warning_all", "flag", "prune")

    def __init__(self, name: str, warning: str, prune: Callable[[Engine, bool], PruneReport], warning_all: str | None = None, flag: str | None = None) -> None:
        self.name = name
        self.warning = warning
        self.warning_all = warning_all or warning
        self.flag = flag
        self.prune = prune


def prune_containers(engine: Engine) -> PruneReport:
    """Every container that is not running (created or exited, not paused): docker's container prune."""
    from pyc.errors import Conflict, ContainerNotFound
    from pyc.store.usage import tree_size

    removed, reclaimed = [], 0
    for c in engine.containers.all():
        if c.status not in ("exited", "created"):
            continue
        size = tree_size(c.path("upper"))
        try:
            engine.remove_container(c.id)
        except (Conflict, ContainerNotFound):
            continue  # it started meanwhile, or another removed it
        removed.append(c.id)
        reclaimed += size
    engine.containers.journal.log("container", "prune", "", {"reclaimed": str(reclaimed)})
    return PruneReport(title="Deleted Containers", deleted=removed, reclaimed=reclaimed)


def _images(engine: Engine, all: bool) -> PruneReport:
    lines, reclaimed = engine.prune_images(all)
    return PruneReport(title="Deleted Images", deleted=lines, reclaimed=reclaimed)


def _volumes(engine: Engine, all: bool) -> PruneReport:
    """docker's: anonymous volumes only, -a or not (-a is about images)."""
    names, reclaimed = engine.prune_volumes(False)
    return PruneReport(title="Deleted Volumes", deleted=names, reclaimed=reclaimed)


def _build_cache(engine: Engine, all: bool) -> PruneReport:
    dropped, reclaimed = engine.prune_build_cache()
    return PruneReport(title="Deleted build cache objects", deleted=[k[:25] for k in dropped], reclaimed=reclaimed)


PRUNERS: list[Pruner] = [
    Pruner("containers", "all stopped containers", lambda engine, all: prune_containers(engine)),
    Pruner("volumes", "all anonymous volumes not used by at least one container", _volumes, flag="volumes"),
    Pruner("images", "all dangling images", _images, warning_all="all images without at least one container associated to them"),
    Pruner("build cache", "unused build cache", _build_cache, warning_all="all build cache"),
]


def wanted(flags: dict[str, bool]) -> list[Pruner]:
    """The pruners `system prune` runs with these options (`volumes`, ...)."""
    return [p for p in PRUNERS if p.flag is None or flags.get(p.flag)]


def system_prune(engine: Engine, all: bool, volumes: bool) -> SystemPrune:
    reports = [p.prune(engine, all) for p in wanted({"volumes": volumes})]
    return SystemPrune(reports=reports, reclaimed=sum(r.reclaimed for r in reports))
