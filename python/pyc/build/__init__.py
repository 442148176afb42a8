"""`pyc build`: Dockerfiles (dockerfile.py, words.py) built on the build context (context.py)
by the builder (builder.py), COPY and ADD laid out by copy.py, an image's files read through
its layers by rootfs.py, the cache in pyc.store.buildcache."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.build.builder import BuildOptions
    from pyc.engine import Engine
    from pyc.store.images import Image

DEFAULT_FILES = ("Dockerfile", "Containerfile")


def build(engine: Engine, context: str | int, opts: BuildOptions, dockerfile: str | None = None, text: str | None = None) -> Image:
    """`context`: a directory, a tar file (plain, gzip or zstd), or an fd to read a tar or a
    Dockerfile (then with an empty context) from, as docker's `build -`."""
    from pyc.store.ingest import temp_dir
    from pyc.store.refs import normalize

    for tag in opts.tags:
        normalize(tag)  # a bad name fails before anything runs
    if isinstance(context, str) and os.path.isdir(context):
        return _build(engine, context, context, opts, dockerfile, text)
    if isinstance(context, str) and not os.path.exists(context):
        raise InvalidArgument(f"the build context {context!r} is not a directory")
    engine.images.ensure_layout()
    with temp_dir(engine.images) as tmp:
        root = os.path.join(tmp, "context")
        os.mkdir(root)
        text = _unpack_context(context, root, tmp, text)
        # A Dockerfile named with -f is a path inside an archived context, as in docker.
        inside = os.path.join(root, os.path.normpath("/" + dockerfile).lstrip("/")) if dockerfile else None
        return _build(engine, root, "the archive" if isinstance(context, str) else "standard input", opts, inside, text)


def _unpack_context(source: str | int, root: str, tmp: str, text: str | None) -> str | None:
    """Unpack a tar context into `root`; returns the Dockerfile text when `source` (an fd) held
    a Dockerfile rather than a tar."""
    import shutil

    import pyc_core

    path = source
    if isinstance(source, int):
        path = os.path.join(tmp, "stdin")
        with open(path, "wb") as out, open(source, "rb", closefd=False) as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
    assert isinstance(path, str)
    with open(path, "rb") as f:
        head = f.read(512)
    is_tar = head[:2] == b"\x1f\x8b" or head[:4] == b"\x28\xb5\x2f\xfd" or head[257:262] == b"ustar"
    if not is_tar:
        if isinstance(source, str):
            raise InvalidArgument(f"the build context {source!r} is neither a directory nor a tar archive")
        if text is not None:
            raise InvalidArgument("standard input holds neither a tar nor the Dockerfile: -f - already reads the Dockerfile from it")
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except UnicodeDecodeError:
            raise InvalidArgument("standard input is neither a tar archive nor a Dockerfile") from None
    try:
        pyc_core.unpack_layer(path, root)
    except pyc_core.ArchiveError as e:
        raise InvalidArgument(f"the build context: {e}") from None
    return text


def _build(engine: Engine, root: str, shown: str, opts: BuildOptions, dockerfile: str | None, text: str | None) -> Image:
    from pyc.build.builder import Builder
    from pyc.build.context import Context
    from pyc.build.dockerfile import parse

    ctx = Context(root)
    name = os.path.basename(dockerfile) if dockerfile else "<stdin>"
    if text is None:
        if dockerfile is None:
            found = [os.path.join(ctx.root, f) for f in DEFAULT_FILES if os.path.isfile(os.path.join(ctx.root, f))]
            if not found:
                raise InvalidArgument(f"no Dockerfile or Containerfile in {shown}: name one with -f")
            dockerfile = found[0]
            name = os.path.basename(dockerfile)
        try:
            with open(dockerfile, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"{dockerfile}: {getattr(e, 'strerror', None) or e}") from None
    df = parse(text, name)
    engine.images.ensure_layout()
    return Builder(engine, df, ctx, opts).build()


def prune_cache(engine: Engine) -> tuple[list[str], int]:
    from pyc.store import buildcache
    from pyc.store.gc import collect

    store = engine.images
    with store.lock():
        dropped = buildcache.drop_all(store)
    in_containers = {layer for c in engine.containers.all() for layer in c.record.layers}
    freed, _ = collect(store, in_containers)
    return dropped, freed
