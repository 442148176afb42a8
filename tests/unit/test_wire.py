"""pyc_core.packb / unpackb: msgpack as the spec writes it (the smallest form of each value, the
bytes the msgpack package wrote for pyc before), and unpackb refusing whatever is malformed with
a ValueError, however hostile (pyc.db rows and monitor state files are read with it)."""

from __future__ import annotations

import random

import pytest

from pyc_core import packb, unpackb

# (value, its msgpack bytes), from the msgpack spec's formats: every boundary between two forms.
CASES: list[tuple[object, bytes]] = [
    (None, b"\xc0"),
    (False, b"\xc2"),
    (True, b"\xc3"),
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\xcc\x80"),
    (255, b"\xcc\xff"),
    (256, b"\xcd\x01\x00"),
    (65535, b"\xcd\xff\xff"),
    (65536, b"\xce\x00\x01\x00\x00"),
    (2**32 - 1, b"\xce\xff\xff\xff\xff"),
    (2**32, b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
    (2**64 - 1, b"\xcf" + b"\xff" * 8),
    (-1, b"\xff"),
    (-32, b"\xe0"),
    (-33, b"\xd0\xdf"),
    (-128, b"\xd0\x80"),
    (-129, b"\xd1\xff\x7f"),
    (-32768, b"\xd1\x80\x00"),
    (-32769, b"\xd2\xff\xff\x7f\xff"),
    (-(2**31), b"\xd2\x80\x00\x00\x00"),
    (-(2**31) - 1, b"\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"),
    (-(2**63), b"\xd3\x80" + b"\x00" * 7),
    (1.5, b"\xcb\x3f\xf8" + b"\x00" * 6),
    ("", b"\xa0"),
    ("é", b"\xa2\xc3\xa9"),
    ("a" * 31, b"\xbf" + b"a" * 31),
    ("a" * 32, b"\xd9\x20" + b"a" * 32),
    ("a" * 256, b"\xda\x01\x00" + b"a" * 256),
    ("a" * 65536, b"\xdb\x00\x01\x00\x00" + b"a" * 65536),
    (b"", b"\xc4\x00"),
    (b"\x00\xff", b"\xc4\x02\x00\xff"),
    (b"x" * 256, b"\xc5\x01\x00" + b"x" * 256),
    (b"x" * 65536, b"\xc6\x00\x01\x00\x00" + b"x" * 65536),
    ([], b"\x90"),
    ([1] * 15, b"\x9f" + b"\x01" * 15),
    ([1] * 16, b"\xdc\x00\x10" + b"\x01" * 16),
    ([1] * 65536, b"\xdd\x00\x01\x00\x00" + b"\x01" * 65536),
    ({}, b"\x80"),
    ({"a": 1, "b": [None, "c"]}, b"\x82\xa1a\x01\xa1b\x92\xc0\xa1c"),
    ({str(i): i for i in range(16)}, b"\xde\x00\x10" + b"".join(packb(str(i)) + packb(i) for i in range(16))),
]


@pytest.mark.parametrize("value, data", CASES, ids=[repr(v)[:24] for v, _ in CASES])
def test_each_form(value: object, data: bytes) -> None:
    assert packb(value) == data
    back = unpackb(data)
    assert back == value and type(back) is type(value)


def test_what_comes_back() -> None:
    assert unpackb(packb((1, (2, "x")))) == [1, [2, "x"]]  # a tuple is an array
    assert unpackb(packb(bytearray(b"ab"))) == b"ab"
    assert unpackb(b"\xca\x3f\xc0\x00\x00") == 1.5  # float32, as Rust may write
    assert unpackb(b"\x81\xc4\x01k\x01") == {b"k": 1}  # a bytes key, as msgpack's strict_map_key allows
    nested: dict[str, object] = {"spec": {"process": {"args": ["sh", "-c", "echo hi"], "env": [], "user": {"uid": 0}}, "mounts": [{"options": ["ro"]}] * 3}}
    assert unpackb(packb(nested)) == nested


@pytest.mark.parametrize(
    "value, error",
    [(2**64, ValueError), (-(2**63) - 1, ValueError), (object(), TypeError), ({1.5}, TypeError), ("\udc80", UnicodeEncodeError)],
    ids=["2**64", "-2**63-1", "object", "set", "lone surrogate"],
)
def test_what_cannot_be_packed(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        packb(value)


def test_a_cycle_is_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested too deep"):
        packb(loop)


@pytest.mark.parametrize(
    "data",
    [
        b"",  # nothing
        b"\xc1",  # the byte msgpack never uses
        b"\xd4\x01\x00",  # an extension type
        b"\xc7\x00\x05",
        b"\x00\x00",  # extra data
        b"\xa1",  # a str without its byte
        b"\xa2\xc3",
        b"\xa1\xff",  # not UTF-8
        b"\xda\x01",  # a truncated length
        b"\xcd\x01",  # a truncated number
        b"\xdd\xff\xff\xff\xff",  # 4 billion items promised, none there: refused before allocating
        b"\xdf\xff\xff\xff\xff\x00",
        b"\xc6\xff\xff\xff\xff",  # 4 GiB of bytes promised
        b"\x81\x01\x02",  # a number as a map key
        b"\x81\x90\x02",  # a list as a map key (could not be a dict's)
        b"\x91" * 100_000 + b"\xc0",  # nesting deep enough to overflow a stack
        b"\x81" * 100_000 + b"\xc0",
    ],
    ids=lambda d: d[:8].hex(),
)
def test_malformed_input_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        unpackb(data)


def test_random_damage_is_a_value_error_or_data() -> None:
    """Records cut, flipped and spliced at random: each either decodes or is a ValueError."""
    rng = random.Random(11)
    record = packb({"Id": "ab" * 32, "State": {"Status": "running", "Pid": 4242, "ExitCode": -1, "Ratio": 0.5}, "Args": ["sh", "-c", "x" * 40], "Raw": b"\x00\x01"})
    for _ in range(20_000):
        data = bytearray(record)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            at = rng.randrange(len(data)) if data else 0
            if op < 0.4 and data:
                data[at] = rng.randrange(256)
            elif op < 0.7:
                del data[at:]
            else:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        try:
            unpackb(bytes(data))
        except ValueError:
            pass
