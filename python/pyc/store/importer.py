"""`pyc import`: a rootfs tarball (plain, gzip, zstd), a directory, or stdin into a one-layer image."""

from __future__ import annotations

import os
import platform

from pyc import progress
from pyc.errors import BadImage, InvalidArgument
from pyc.store.gc import collect_tmp
from pyc.store.images import Image, ImageStore
from pyc.store.layers import adopt_layer, temp_dir
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
    store.ensure_layout()
    collect_tmp(store)  # what an import killed midway left
    with temp_dir(store) as tmp:
        layer_dir = os.path.join(tmp, "layer")
        blob = os.path.join(tmp, "blob")
        os.mkdir(layer_dir)
        if isinstance(source, str) and os.path.isdir(source):
            # A directory is written as the layer tar first, then unpacked from it like any tar.
            pyc_core.tar_directory(source, blob, deterministic)
            diff_id, size = pyc_core.unpack_layer(blob, layer_dir)
        else:
            fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC) if isinstance(source, str) else source
            total = os.fstat(fd).st_size if isinstance(source, str) else None
            try:
                # unpack_layer reads a dup of fd: the bar follows their shared offset.
                with progress.task("Importing", total, progress.offset(fd)):
                    diff_id, size = pyc_core.unpack_layer(fd, layer_dir, blob)
            except pyc_core.ArchiveError as e:
                raise BadImage(f"cannot import {_name(source)}: {e}") from None
            finally:
                if isinstance(source, str):
                    os.close(fd)
        cfg = config if config is not None else default_config()
        cfg["rootfs"] = {"type": "layers", "diff_ids": [diff_id]}
        cfg.setdefault("created", store.now())
        with store.lock():
            adopt_layer(store, blob, diff_id, layer_dir, diff_id)
            return store.add(cfg, [(diff_id, size)], ref)


def _name(source: str | int) -> str:
    return "standard input" if isinstance(source, int) else source
