"""Disk use for `pyc system df`: images by their layer blobs (a blob shared by several images
counted once), containers by their writable layer."""

from __future__ import annotations

import os

from pyc.results import ContainerUsage, DiskUsage, ImageUsage, VolumeUsage
from pyc.store.gc import leftovers
from pyc.store.images import Image

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.containers import Container


def tree_size(path: str) -> int:
    """Bytes of the regular files under `path`, a file with several links counted once."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def layer_sizes(images: list[Image]) -> dict[str, int]:
    """Each distinct layer blob once, by digest."""
    return {layer["digest"]: int(layer.get("size", 0)) for img in images for layer in img.layers}


def disk_usage(images: list[Image], containers: list[Container], tmp: str, volumes: list[VolumeUsage]) -> DiskUsage:
    """Images by their layer blobs (SIZE, SHARED SIZE: layers another image has too), what
    only images no container uses hold (reclaimable), containers by their writable layer,
    `volumes` as measured, and what interrupted commands left in `tmp` (an import or load
    killed midway)."""
    users: dict[str, int] = {}
    for c in containers:
        users[c.record.image_id] = users.get(c.record.image_id, 0) + 1
    holders: dict[str, int] = {}
    for img in images:
        for digest in {layer["digest"] for layer in img.layers}:
            holders[digest] = holders.get(digest, 0) + 1
    sizes = layer_sizes(images)
    rows = []
    for img in images:
        mine = {layer["digest"] for layer in img.layers}
        created = img.config.get("created")
        size, shared = sum(sizes[d] for d in mine), sum(sizes[d] for d in mine if holders[d] > 1)
        rows.append(ImageUsage(id=img.id, refs=list(img.refs), created=str(created) if created else None, size=size, shared=shared, containers=users.get(img.id, 0)))
    kept = layer_sizes([img for img in images if img.id in users])
    total = sum(sizes.values())
    return DiskUsage(
        images=rows,
        images_size=total,
        images_reclaimable=total - sum(kept.values()),
        containers=[
            ContainerUsage(id=c.id, name=c.name, image=c.record.image, command=c.record.config.cmd, created=c.record.created, status=c.status, size=tree_size(c.path("upper"))) for c in containers
        ],
        leftovers=sum(tree_size(path) for path in leftovers(tmp)),
        volumes=volumes,
    )
