"""Times as docker's --since and --until take them (its timetypes.GetTimestamp): a duration ago
in Go's syntax (`10m`, `1h30m`, `1.5s`; a negative one is to come), an RFC 3339 time or a part of
one (`2026-01-02`, `2026-01-02T15:04`, `...:05.123456789`; local time without a zone), or a Unix
time with an optional fraction (`1767225600.5`)."""

from __future__ import annotations

import re
import time

from pyc.errors import InvalidArgument

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:\d{2})?")


def _duration(value: str) -> int | None:
    """Go's time.ParseDuration, in ns; None when `value` is not one."""
    sign = -1 if value[:1] == "-" else 1
    rest = value.lstrip("+-")
    if not rest or len(value) - len(rest) > 1:
        return None
    total, at = 0.0, 0
    for m in _DURATION.finditer(rest):
        if m.start() != at:
            return None
        total += float(m[1]) * _UNITS[m[2]]
        at = m.end()
    return sign * int(total) if at == len(rest) else None


def parse_time(value: str, flag: str, now: int | None = None) -> int:
    """`value` as ns since the epoch; `now` (ns) is what a duration counts back from."""
    import calendar

    now = time.time_ns() if now is None else now
    d = _duration(value)
    if d is not None and value != "0":
        return now - d
    m = _DATE.fullmatch(value)
    if m:
        y, mo, day, hh, mm, ss = (int(x or 0) for x in m.group(1, 2, 3, 4, 5, 6))
        frac = int((m[7] or "").ljust(9, "0"))
        zone = m[8]
        try:
            import datetime

            datetime.datetime(y, mo, day, hh, mm, ss)  # a day or hour that does not exist is refused
            fields = (y, mo, day, hh, mm, ss, 0, 0, -1)
            if zone is None:
                seconds = int(time.mktime(fields))
            else:
                offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
                seconds = calendar.timegm(fields) - offset
        except (ValueError, OverflowError):
            raise InvalidArgument(f"invalid {flag} {value!r}: not a date") from None
        return seconds * 1_000_000_000 + frac
    whole, dot, fraction = value.partition(".")
    if whole.isdigit() and (not dot or fraction.isdigit()) and len(fraction) <= 9:
        return int(whole) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)
    raise InvalidArgument(f"invalid {flag} {value!r}: use a time (2026-01-02T15:04:05Z), a Unix time or a duration (10m)")


def rfc3339_nano(ns: int, utc: bool = False) -> str:
    """docker's fixed-width RFC 3339 with nanoseconds, in local time (`Z` for UTC)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    t = time.gmtime(seconds) if utc else time.localtime(seconds)
    offset = 0 if utc else t.tm_gmtoff
    zone = "Z" if offset == 0 else f"{'+' if offset > 0 else '-'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{frac:09d}{zone}"
