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


def build(engine: Engine, context: str, opts: BuildOptions, dockerfile: str | None = None, text: str | None = None) -> Image:
    from pyc.build.builder import Builder
    from pyc.build.context import Context
    from pyc.build.dockerfile import parse
    from pyc.store.refs import normalize

    for tag in opts.tags:
        normalize(tag)  # a bad name fails before anything runs
    ctx = Context(context)
    name = dockerfile or "-"
    if text is None:
        if dockerfile is None:
            found = [os.path.join(ctx.root, f) for f in DEFAULT_FILES if os.path.isfile(os.path.join(ctx.root, f))]
            if not found:
                raise InvalidArgument(f"no Dockerfile or Containerfile in {context}: name one with -f")
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


def prune_cache(engine: Engine) -> tuple[int, int]:
    from pyc.store import buildcache
    from pyc.store.gc import collect

    store = engine.images
    with store.lock():
        dropped = buildcache.drop_all(store)
    in_containers = {layer for c in engine.containers.all() for layer in c.record.layers}
    return dropped, collect(store, in_containers)
