"""`pyc images --filter`, docker's: dangling=true|false, reference=PATTERN (a name or name:tag,
`*` not crossing a `/`; only the matching names of an image are listed), before=IMAGE and
since=IMAGE (made before or after that image), label=KEY or label=KEY=VALUE. Values of one key
are or-ed (label: and-ed, as docker), keys and-ed."""

from __future__ import annotations

import re

from pyc.errors import InvalidArgument
from pyc.store.images import Image, ImageStore

KEYS = ("dangling", "reference", "before", "since", "label")


def parse(given: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in given:
        key, eq, value = f.partition("=")
        if not eq or key not in KEYS:
            raise InvalidArgument(f"invalid filter {f!r}: use {'=, '.join(KEYS)}=")
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={value}': true or false")
        out.setdefault(key, []).append(value)
    return out


def _pattern(p: str) -> re.Pattern[str]:
    """Go's path.Match: `*` and `?` within a path segment, [classes]."""
    out, i = "", 0
    while i < len(p):
        c = p[i]
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[" and "]" in p[i + 1 :]:
            end = p.index("]", i + 1)
            body = p[i + 1 : end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body).replace("\\", "\\\\") + "]"
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out)


def _created(img: Image) -> int:
    """When the image was made, ns since the epoch (0 when its config does not say)."""
    from pyc.times import parse_time

    try:
        return parse_time(str(img.config.get("created") or ""), "created")
    except InvalidArgument:
        return 0


def _labels(img: Image) -> dict[str, object]:
    labels = (img.config.get("config") or {}).get("Labels") or {}
    return labels if isinstance(labels, dict) else {}


def apply(store: ImageStore, images: list[Image], filters: dict[str, list[str]]) -> list[Image]:
    """The images that pass; under a reference filter each with only its matching names."""
    if not filters:
        return images
    dangling = filters.get("dangling")
    patterns = [_pattern(p) for p in filters.get("reference", [])]
    before = [_created(store.lookup(ref)) for ref in filters.get("before", [])]
    since = [_created(store.lookup(ref)) for ref in filters.get("since", [])]
    out = []
    for img in images:
        if dangling is not None and (dangling[-1].lower() in ("true", "1")) != (not img.refs):
            continue
        if before and not any(_created(img) < t for t in before):
            continue
        if since and not any(_created(img) > t for t in since):
            continue
        labels = _labels(img)
        if not all((k in labels and (not eq or str(labels[k]) == v)) for k, eq, v in (label.partition("=") for label in filters.get("label", []))):
            continue
        if patterns:
            refs = [r for r in img.refs if any(p.fullmatch(r) or p.fullmatch(r.rpartition(":")[0]) for p in patterns)]
            if not refs:
                continue
            img = Image(img.manifest_digest, img.manifest, img.config, refs, img.chain_ids)
        out.append(img)
    return out
