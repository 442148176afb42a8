"""Where pyc keeps things: $PYC_ROOT (the store, default /var/lib/pyc)."""

import os


def digest_hex(digest: str) -> str:
    """The hex part of a `sha256:<64 hex>` digest; a BadImage for anything else (a digest read
    from an image must not name a path outside blobs/)."""
    algo, _, hexpart = str(digest).partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        from pyc.errors import BadImage

        raise BadImage(f"invalid digest {digest!r}")
    return hexpart


class Paths:
    __slots__ = ("root", "oci", "blobs", "layers", "containers", "foreground", "rootfs", "tmp")

    def __init__(self, root: str | None = None) -> None:
        self.root = os.path.abspath(root or os.environ.get("PYC_ROOT") or "/var/lib/pyc")
        self.oci = os.path.join(self.root, "oci")
        self.blobs = os.path.join(self.oci, "blobs", "sha256")
        self.layers = os.path.join(self.root, "layers")
        self.containers = os.path.join(self.root, "containers")
        self.foreground = os.path.join(self.root, "foreground")  # pyc/foreground.py
        # Where every container's root is mounted, each in a mount namespace of its own: one
        # empty directory for all, never removed (a directory removed is a block freed).
        self.rootfs = os.path.join(self.root, "rootfs")
        self.tmp = os.path.join(self.root, "tmp")

    def blob(self, digest: str) -> str:
        return os.path.join(self.blobs, digest_hex(digest))

    def layer(self, chain_id: str) -> str:
        return os.path.join(self.layers, chain_id.partition(":")[2])

    def container(self, cid: str) -> str:
        return os.path.join(self.containers, cid)
