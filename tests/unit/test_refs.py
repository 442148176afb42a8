from __future__ import annotations

import pytest

from pyc.errors import InvalidArgument
from pyc.store.images import chain_ids
from pyc.store.refs import normalize, with_tag


@pytest.mark.parametrize(
    ("ref", "full"),
    [
        ("busybox", "busybox:latest"),
        ("busybox:1.36", "busybox:1.36"),
        ("localhost/tools:v2", "localhost/tools:v2"),
        ("registry.example:5000/a/b", "registry.example:5000/a/b:latest"),
        ("my_image-x.y", "my_image-x.y:latest"),
    ],
)
def test_normalize(ref: str, full: str) -> None:
    assert normalize(ref) == full == with_tag(ref)


@pytest.mark.parametrize("ref", ["Busybox", "a:b:c", "bad name", "x:", "-x", "a//b"])
def test_malformed_references(ref: str) -> None:
    with pytest.raises(InvalidArgument):
        normalize(ref)


def test_chain_ids_follow_the_oci_rule() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    import hashlib

    assert chain_ids([a]) == [a]
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]
