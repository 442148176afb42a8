"""docker's --since and --until: durations ago, RFC 3339 times and their parts, Unix times."""

from __future__ import annotations

import pytest

from pyc.errors import InvalidArgument
from pyc.times import parse_time, rfc3339_nano

NOW = 1_800_000_000_000_000_000
S = 1_000_000_000


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("10m", NOW - 600 * S),
        ("1h30m", NOW - 5400 * S),
        ("1.5s", NOW - 1_500_000_000),
        ("300ms", NOW - 300_000_000),
        ("-10s", NOW + 10 * S),  # a duration to come
        ("0", 0),  # Unix time 0, not "now"
        ("1767225600", 1_767_225_600 * S),
        ("1767225600.5", 1_767_225_600 * S + 500_000_000),
        ("2026-01-01T00:00:00Z", 1_767_225_600 * S),
        ("2026-01-01T00:00:00.000000001Z", 1_767_225_600 * S + 1),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600 * S),
    ],
)
def test_forms(value: str, ns: int) -> None:
    assert parse_time(value, "--since", NOW) == ns


def test_without_a_zone_is_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert parse_time("2026-01-01", "--since") == 1_767_225_600 * S
        assert parse_time("2026-01-01T00:01", "--since") == (1_767_225_600 + 60) * S
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("bad", ["", "yesterday", "10x", "1h-3m", "2026-13-45", "--1s", "1.2.3", "12e3"])
def test_bad_input_is_one_line(bad: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_time(bad, "--until", NOW)
    assert "--until" in str(e.value) and "\n" not in str(e.value)


def test_rfc3339_nano_is_fixed_width() -> None:
    assert rfc3339_nano(1_767_225_600 * S + 540, utc=True) == "2026-01-01T00:00:00.000000540Z"
