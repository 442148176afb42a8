"""Plain-text tables and relative times, as docker prints them."""

import time


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def utc_seconds(iso: str) -> int | None:
    """Seconds since the epoch of an RFC 3339 UTC time (`2026-11-30T10:00:00[.n]Z`), None if it
    is not one. By hand: time.strptime imports re, locale and calendar, a tenth of a `pyc ps`."""
    digits = (iso[0:4], iso[5:7], iso[8:10], iso[11:13], iso[14:16], iso[17:19])
    if len(iso) < 19 or not all(d.isdigit() for d in digits) or iso[4] + iso[7] + iso[10] + iso[13] + iso[16] != "--T::":
        return None
    y, m, d, hh, mm, ss = (int(x) for x in digits)
    # days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's days_from_civil)
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + hh * 3600 + mm * 60 + ss


def ago(iso: str | None, now: float | None = None) -> str:
    t = utc_seconds(iso) if iso else None
    if t is None:
        return ""
    s = max(0, int((time.time() if now is None else now) - t))
    for unit, n in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= n:
            k = s // n
            return f"{k} {unit}{'s' if k > 1 else ''} ago"
    return "Less than a second ago" if s < 1 else f"{s} second{'s' if s > 1 else ''} ago"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"


def image_rows(refs: list[str], digests: list[str]) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) per row, as docker's `images --digests` shows an image: one
    row per tag, with the digest of its repository; one per repository known by digest alone;
    <none> where there is none."""
    from pyc.store.refs import familiar_ref

    by_repo: dict[str, str] = {}
    for d in digests:
        repo, _, digest = d.partition("@")
        by_repo.setdefault(repo, digest)
    rows = []
    for ref in refs:
        repo, _, tag = ref.rpartition(":")
        rows.append((familiar_ref(repo), tag, by_repo.get(repo, "<none>")))
    tagged = {ref.rpartition(":")[0] for ref in refs}
    rows += [(familiar_ref(repo), "<none>", digest) for repo, digest in by_repo.items() if repo not in tagged]
    return rows or [("<none>", "<none>", "<none>")]
