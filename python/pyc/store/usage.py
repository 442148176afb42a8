"""Disk use for `pyc system df`: images by their layer blobs (a blob shared by several images
counted once), containers by their writable layer."""

from __future__ import annotations

import os

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


class ImageUsage:
    """Per image: SIZE, SHARED SIZE (layers another image has too), UNIQUE SIZE, CONTAINERS."""

    __slots__ = ("image", "size", "shared", "unique", "containers")

    def __init__(self, image: Image, size: int, shared: int, containers: int) -> None:
        self.image = image
        self.size = size
        self.shared = shared
        self.unique = size - shared
        self.containers = containers


def layer_sizes(images: list[Image]) -> dict[str, int]:
    """Each distinct layer blob once, by digest."""
    return {layer["digest"]: int(layer.get("size", 0)) for img in images for layer in img.layers}


def image_usage(images: list[Image], containers: list[Container]) -> list[ImageUsage]:
    users: dict[str, int] = {}
    for c in containers:
        key = str(c.data.get("ImageId"))
        users[key] = users.get(key, 0) + 1
    holders: dict[str, int] = {}
    for img in images:
        for digest in {layer["digest"] for layer in img.layers}:
            holders[digest] = holders.get(digest, 0) + 1
    sizes = layer_sizes(images)
    out = []
    for img in images:
        mine = {layer["digest"] for layer in img.layers}
        out.append(ImageUsage(img, sum(sizes[d] for d in mine), sum(sizes[d] for d in mine if holders[d] > 1), users.get(img.id, 0)))
    return out


def summary(images: list[Image], containers: list[Container], container_sizes: dict[str, int]) -> list[tuple[str, int, int, int, int]]:
    """Rows (TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE) as `docker system df` has them: an image is
    active when a container uses it; what only inactive images hold is reclaimable."""
    used_ids = {str(c.data.get("ImageId")) for c in containers}
    active = [img for img in images if img.id in used_ids]
    all_sizes = layer_sizes(images)
    kept = layer_sizes(active)
    total = sum(all_sizes.values())
    running = [c for c in containers if c.status == "running"]
    c_total = sum(container_sizes.values())
    c_reclaim = sum(n for cid, n in container_sizes.items() if cid not in {c.id for c in running})
    return [
        ("Images", len(images), len(active), total, total - sum(kept.values())),
        ("Containers", len(containers), len(running), c_total, c_reclaim),
        ("Local Volumes", 0, 0, 0, 0),
    ]
