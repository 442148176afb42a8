"""Images of many tiny layers on top of busybox, as docker-archives made here with tarfile (the
many-layer tests and benches/layers.py use them).

Layer k (1..n) adds /many/fk and writes /many/top (so the top-most layer's content wins); every
7th layer whites out the file layer k-3 added; the middle layer makes /opq opaque, hiding the file
layer 1 put there."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path


def _tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    """A layer tar: (name, content) pairs, None for a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def layer(k: int, n: int) -> bytes:
    entries: list[tuple[str, bytes | None]] = [("many", None), (f"many/f{k}", f"{k}\n".encode()), ("many/top", f"{k}\n".encode())]
    if k % 7 == 0:
        entries.append((f"many/.wh.f{k - 3}", b""))
    if k == 1:
        entries += [("opq", None), ("opq/old", b"old\n")]
    if k == n // 2:
        entries += [("opq", None), ("opq/.wh..wh..opq", b""), ("opq/new", b"new\n")]
    return _tar(entries)


def expected_many(n: int) -> list[str]:
    """The names in /many of a container of the n-layer image, sorted as `ls` sorts them."""
    hidden = {f"f{k - 3}" for k in range(7, n + 1, 7)}
    return sorted({f"f{k}" for k in range(1, n + 1)} - hidden | {"top"})


def make_archive(base: Path, out: Path, n: int, tag: str) -> None:
    """A docker-archive of the busybox image in the docker-archive `base` plus n layers, as `tag`."""
    with tarfile.open(base) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(t.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        busybox = t.extractfile(manifest["Layers"][0]).read()  # type: ignore[union-attr]
    layers = [busybox] + [layer(k, n) for k in range(1, n + 1)]
    config["rootfs"]["diff_ids"] = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
    config["history"] = config.get("history", [])[:1] + [{"created_by": f"layer {k} of {n}"} for k in range(1, n + 1)]
    cfg = json.dumps(config).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    names = [f"{d[7:]}/layer.tar" for d in config["rootfs"]["diff_ids"]]
    files = [(cfg_name, cfg), *zip(names, layers, strict=True)]
    files.append(("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": names}]).encode()))
    with tarfile.open(out, "w") as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
