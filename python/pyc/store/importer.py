"""`pyc import`: a rootfs tarball (plain, gzip, zstd), a directory, or stdin into a one-layer image."""

from __future__ import annotations

import os
import platform

from pyc import progress
from pyc.errors import InvalidArgument
from pyc.store.images import Image, ImageStore
from pyc.store.ingest import Ingest
from pyc.store.refs import normalize

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any


def default_config(run_config: dict[str, Any] | None = None, created_by: str = "pyc import") -> dict[str, Any]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "architecture": arch,
        "os": "linux",
        "config": run_config or {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created_by": created_by}],
    }


def import_rootfs(store: ImageStore, source: str | int, ref: str | None, config: dict[str, Any] | None = None, deterministic: bool = False) -> Image:
    """Import `source` (a path to a tar or a directory, or an fd to read a tar from) as a new
    image named `ref`. Nothing lands in the store unless all of it checks out."""
    import pyc_core

    if ref is not None:
        ref = normalize(ref)
    if isinstance(source, str) and not os.path.exists(source):
        raise InvalidArgument(f"{source}: no such file or directory")
    with Ingest(store) as ingest:
        if isinstance(source, str) and os.path.isdir(source):
            # A directory is written as the layer tar first, then unpacked from it like any tar.
            tar = os.path.join(ingest.tmp, "layer.tar")
            pyc_core.tar_directory(source, tar, deterministic)
            layer = ingest.add(tar, source, tar=tar)
            ingest.run()
        else:
            fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC) if isinstance(source, str) else source
            try:
                layer = ingest.add(fd, _name(source))
                # unpack_layers reads a dup of fd: the bar follows their shared offset.
                layer.what, layer.label = f"cannot import {_name(source)}", "Importing"
                layer.total, layer.poll = os.fstat(fd).st_size if isinstance(source, str) else None, progress.offset(fd)
                ingest.run()
            finally:
                if isinstance(source, str):
                    os.close(fd)
        cfg = config if config is not None else default_config()
        cfg["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id]}
        cfg.setdefault("created", store.now())
        return ingest.commit([(cfg, [layer], [ref])])[0]


def _name(source: str | int) -> str:
    return "standard input" if isinstance(source, int) else source
