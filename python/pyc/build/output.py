"""`pyc build --output`: the built image's files written out, as a directory (`type=local`,
or a bare path) or a tar (`type=tar`, `dest=-` for standard output), besides the image."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.store.images import Image, ImageStore


def parse(spec: str) -> tuple[str, str]:
    """`type=local,dest=DIR`, `type=tar,dest=FILE` or `DIR`: (type, dest)."""
    if "=" not in spec and "," not in spec:
        if not spec:
            raise InvalidArgument("invalid --output '': give type=local,dest=DIR, type=tar,dest=FILE or a directory")
        return "local", spec
    fields: dict[str, str] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        if not eq or key not in ("type", "dest"):
            raise InvalidArgument(f"invalid --output {spec!r}: use type=local,dest=DIR or type=tar,dest=FILE")
        fields[key] = value
    kind, dest = fields.get("type", ""), fields.get("dest", "")
    if kind not in ("local", "tar") or not dest or (kind == "local" and dest == "-"):
        raise InvalidArgument(f"invalid --output {spec!r}: use type=local,dest=DIR or type=tar,dest=FILE (or dest=- for standard output)")
    return kind, dest


def write(store: ImageStore, image: Image, kind: str, dest: str) -> None:
    """The image's files, merged from its layers, to `dest`."""
    import shutil
    import sys

    import pyc_core
    from pyc.store.ingest import temp_dir
    from pyc.store.layers import lower_dirs

    lowers = lower_dirs(store, image)
    with temp_dir(store) as tmp:
        tar = os.path.join(tmp, "files.tar")
        mountpoint = os.path.join(tmp, "mnt")
        os.mkdir(mountpoint)
        with open(tar, "wb") as f:
            if lowers:
                pyc_core.export_overlay(lowers, mountpoint, f.fileno())
            else:
                f.write(b"\0" * 1024)  # an empty tar: FROM scratch and nothing copied
        if kind == "tar" and dest == "-":
            sys.stdout.flush()
            pyc_core.copy_file_to(tar, sys.stdout.fileno())
        elif kind == "tar":
            partial = f"{dest}.tmp-{os.getpid()}"
            try:
                shutil.copyfile(tar, partial)
                os.replace(partial, dest)
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)
        else:
            os.makedirs(dest, exist_ok=True)
            if lowers:
                pyc_core.unpack_layer(tar, dest)
