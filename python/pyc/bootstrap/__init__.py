"""Built-in images, made on this machine from Debian's packages: no registry needed."""

from __future__ import annotations

from pyc.errors import InvalidArgument
from pyc.store.images import Image, ImageStore

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any


def bootstrap(store: ImageStore, name: str, **kwargs: Any) -> Image:
    if name == "busybox":
        from pyc.bootstrap.busybox import make_busybox

        return make_busybox(store, **kwargs)
    if name == "debian":
        from pyc.bootstrap.debian import make_debian

        return make_debian(store, **kwargs)
    raise InvalidArgument(f"unknown built-in image {name!r} (known: busybox, debian)")
