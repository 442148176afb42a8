"""The CLI's relative times: RFC 3339 UTC parsed by hand (no strptime on ps's path), as calendar does."""

from __future__ import annotations

import calendar
import random
import time

from pyc.cli.output import ago, utc_seconds


def test_utc_seconds_is_calendars() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        t = rng.randrange(-2**31, 2**33)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".123456789Z"
        assert utc_seconds(iso) == calendar.timegm(time.gmtime(t)) == t, iso


def test_not_a_time() -> None:
    for bad in ("", "garbage", "2026-11-30 10:00:00Z", "2026-1x-30T10:00:00Z", "2026-11-30T10:00"):
        assert utc_seconds(bad) is None and ago(bad) == ""


def test_ago() -> None:
    now = calendar.timegm((2026, 11, 30, 12, 0, 0, 0, 0, 0))
    assert ago("2026-11-30T11:59:59.5Z", now) == "1 second ago"
    assert ago("2026-11-30T12:00:00Z", now) == "Less than a second ago"
    assert ago("2026-11-30T10:00:00Z", now) == "2 hours ago"
    assert ago("2025-11-30T12:00:00Z", now) == "1 year ago"
