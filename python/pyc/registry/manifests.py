"""Image manifests as registries serve them: OCI and Docker schema 2, single or a list/index of
platforms (one picked for this machine, or `--platform`). Schema 1 is refused: it has no
config blob, so no image ID, and docker stopped pulling it. Every manifest is checked against
its digest before it is read."""

from __future__ import annotations

import os

from pyc.errors import BadImage, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEXES = (OCI_INDEX, DOCKER_LIST)
IMAGES = (OCI_MANIFEST, DOCKER_MANIFEST)
# What pyc asks for, best first (distribution 2.8 sends OCI manifests only when they are asked for).
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

# Layers pyc unpacks (gzip and zstd are told by their first bytes, whatever the type says).
LAYERS = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
)
# Foreign and non-distributable layers are fetched from their `urls` by tools that fetch them
# (Windows base images): pyc does not reach beyond the registry.
FOREIGN = ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")


def digest_of(data: bytes) -> str:
    import hashlib  # not on a re-pull's path, which reads no manifest

    return "sha256:" + hashlib.sha256(data).hexdigest()


class Manifest:
    """A manifest as received: its bytes, digest and media type, and the parsed document."""

    __slots__ = ("data", "digest", "media_type", "doc")

    def __init__(self, data: bytes, content_type: str | None, want: str | None, what: str) -> None:
        """`want`: the digest it must have (pulled by digest, or named by an index, or as the
        registry's Docker-Content-Digest says)."""
        import json

        self.data, self.digest = data, digest_of(data)
        if want is not None and want != self.digest:
            raise BadImage(f"{what}: the manifest does not match its digest {want} (got {self.digest})")
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise BadImage(f"{what}: the manifest is not valid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise BadImage(f"{what}: the manifest is not a JSON object")
        self.doc: dict[str, Any] = doc
        media = doc.get("mediaType") or (content_type or "").split(";")[0].strip()
        if doc.get("schemaVersion") == 1 or media in SCHEMA1:
            raise BadImage(f"{what}: a Docker schema 1 manifest, which pyc does not pull (push the image again with a current tool)")
        if not media:  # an OCI document that names no type: told by what it holds
            media = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
        if media not in INDEXES + IMAGES:
            raise BadImage(f"{what}: not an image manifest ({media})")
        self.media_type = media

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES

    def config(self, what: str) -> dict[str, Any]:
        c = self.doc.get("config")
        if not isinstance(c, dict) or not isinstance(c.get("digest"), str) or not isinstance(c.get("size"), int):
            raise BadImage(f"{what}: the manifest has no config descriptor")
        return c

    def layers(self, what: str) -> list[dict[str, Any]]:
        layers = self.doc.get("layers")
        if not isinstance(layers, list):
            raise BadImage(f"{what}: the manifest has no layers")
        for d in layers:
            if not isinstance(d, dict) or not isinstance(d.get("digest"), str) or not isinstance(d.get("size"), int) or d["size"] < 0:
                raise BadImage(f"{what}: a layer descriptor without digest or size")
            media = d.get("mediaType", LAYERS[1])
            if media in FOREIGN:
                raise BadImage(f"{what}: a foreign layer ({media}), which pyc does not fetch")
            if media not in LAYERS:
                raise BadImage(f"{what}: a layer of type {media}, which pyc cannot unpack")
        return layers


# -- platforms ----------------------------------------------------------------------------


def this_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this machine, as OCI names them."""
    machine = os.uname().machine
    arch, variant = {
        "x86_64": ("amd64", ""),
        "aarch64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i686": ("386", ""),
        "i386": ("386", ""),
        "ppc64le": ("ppc64le", ""),
        "s390x": ("s390x", ""),
        "riscv64": ("riscv64", ""),
    }.get(machine, (machine, ""))
    return "linux", arch, variant


def parse_platform(value: str) -> tuple[str, str, str]:
    """`os/arch[/variant]`, as `--platform` takes it."""
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform {value!r}: os/arch[/variant], like linux/amd64 or linux/arm64/v8")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def pick(index: Manifest, want: tuple[str, str, str], what: str) -> dict[str, Any]:
    """The descriptor of the index's manifest for the platform `want`: os and architecture must
    match; a variant, when asked, too (arm64's v8 is also the variant of none)."""
    os_, arch, variant = want
    found: list[dict[str, Any]] = []
    for d in index.doc.get("manifests") or []:
        if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
            raise BadImage(f"{what}: an index entry without a digest")
        p = d.get("platform") or {}
        if p.get("os") != os_ or p.get("architecture") != arch:
            continue
        v = p.get("variant") or ""
        if variant and v and v != variant:
            continue
        if variant and not v and not (arch == "arm64" and variant == "v8"):
            continue
        found.append(d)
    if not found:
        platforms = [d.get("platform") or {} for d in index.doc.get("manifests") or [] if isinstance(d, dict)]
        have = sorted({"/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x) for p in platforms} - {""})
        raise BadImage(f"{what}: no image for {'/'.join(x for x in want if x)} (the index has {', '.join(have) or 'none'})")
    # An exact variant first, then one that names none.
    found.sort(key=lambda d: (d.get("platform") or {}).get("variant", "") != variant)
    return found[0]
