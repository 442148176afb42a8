"""ADD of a URL: the file downloaded (http or https, the environment's proxies) into the build's
scratch dir as BuildKit's HTTP source keeps it: mode 0600, its mtime the Last-Modified header's
when the server gives one, its sha256 checked against `--checksum` when given. Archives so
fetched are not unpacked (as in docker).

What a server said of a URL (its ETag, its Last-Modified) is kept with the file in the build
cache (`buildcache/urls/`), and the next build asks again with If-None-Match and
If-Modified-Since (a Last-Modified at least a second older than the response that gave it, see
`_settled`), as BuildKit revalidates: a 304 gives the kept file (the step's key, its digest,
unchanged: the step stays cached), a 200 the new one."""

from __future__ import annotations

import hashlib
import os

from pyc.errors import InvalidArgument

SCHEMES = ("http://", "https://")
CHUNK = 1 << 20


def is_url(src: str) -> bool:
    return src.startswith(SCHEMES)


def file_name(url: str) -> str:
    """The name a download takes in a destination directory: the last part of the URL's path."""
    from urllib.parse import unquote, urlsplit

    name = os.path.basename(unquote(urlsplit(url).path))
    if name in ("", ".", ".."):
        raise InvalidArgument(f"ADD {url}: no file name in the URL: give the destination's name (ADD URL /path/name)")
    return name


def fetch(url: str, dest: str, checksum: str | None, cache: str | None = None) -> str:
    """Download `url` into the file `dest`; its sha256 digest ("sha256:..."), which must be
    `checksum` when that is given. `cache`: the directory of kept downloads, revalidated. One
    line naming the URL on any failure."""
    import urllib.error
    import urllib.request

    kept = _Kept(cache, url) if cache is not None else None
    known = kept.load() if kept is not None else None
    headers = {"User-Agent": "pyc-build"}
    if known is not None:
        for header, field in (("If-None-Match", "etag"), ("If-Modified-Since", "since")):
            value = known.get(field)
            if value:
                headers[header] = value
    h = hashlib.sha256()
    try:
        req = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(req, timeout=60) as resp, open(dest, "wb") as out:
            while chunk := resp.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
            modified, etag, date = resp.headers.get("Last-Modified"), resp.headers.get("ETag"), resp.headers.get("Date")
    except urllib.error.HTTPError as e:
        if e.code == 304 and kept is not None and known is not None:
            modified, digest = known.get("modified"), str(known["digest"])
            kept.copy_to(digest, dest)
        else:
            raise InvalidArgument(f"ADD {url}: the server answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise InvalidArgument(f"ADD {url}: cannot download: {reason}") from None
    else:
        digest = "sha256:" + h.hexdigest()
        since = modified if _settled(modified, date) else None
        if kept is not None and (etag or since):
            kept.save(dest, {"etag": etag, "since": since, "modified": modified, "digest": digest})
        elif known is not None and kept is not None:
            kept.drop()  # nothing to revalidate this content with: ask for the whole file next time
    if checksum is not None and digest != checksum:
        raise InvalidArgument(f"ADD {url}: checksum mismatch: --checksum={checksum}, the download is {digest}")
    _finish(dest, modified)
    return digest


def _settled(modified: str | None, date: str | None) -> bool:
    """Whether a Last-Modified can revalidate: a second or more before the response's Date (or
    this machine's clock). A file changed again within the second it was fetched in would keep
    its Last-Modified, and If-Modified-Since would take the old content for it."""
    import time

    when = _timestamp(modified)
    now = _timestamp(date) if date else time.time()
    return when is not None and now is not None and when + 1 <= now


def _finish(dest: str, modified: str | None) -> None:
    """BuildKit's file: 0600, the Last-Modified header's mtime (else the download's)."""
    os.chmod(dest, 0o600)
    when = _timestamp(modified)
    if when is not None:
        os.utime(dest, (when, when))


def _timestamp(header: str | None) -> float | None:
    """An HTTP date header's time; None without one, or for one that is no date."""
    import email.utils

    try:
        return email.utils.parsedate_to_datetime(header).timestamp() if header else None
    except (TypeError, ValueError):
        return None


class _Kept:
    """A URL's last download: `<dir>/<hash of the URL>.meta` (its ETag, Last-Modified, digest
    and the URL) names the content, kept by its digest (`<dir>/sha256-<hex>`), each written
    whole: a meta read never names other content than its digest's."""

    def __init__(self, cache: str, url: str) -> None:
        self.cache, self.url = cache, url
        self.meta = os.path.join(cache, hashlib.sha256(url.encode()).hexdigest()[:32] + ".meta")

    def data(self, digest: str) -> str:
        return os.path.join(self.cache, digest.replace(":", "-"))

    def load(self) -> dict[str, str | None] | None:
        import json

        try:
            with open(self.meta) as f:
                d = json.load(f)
        except (OSError, ValueError):
            return None
        digest = d.get("digest") if isinstance(d, dict) else None
        if not isinstance(digest, str) or d.get("url") != self.url or not os.path.isfile(self.data(digest)):
            return None
        return {k: v if isinstance(v, str) else None for k, v in d.items()}

    def save(self, src: str, meta: dict[str, str | None]) -> None:
        import json
        import shutil

        from pyc.store import atomic

        os.makedirs(self.cache, exist_ok=True)
        data = self.data(str(meta["digest"]))
        if not os.path.isfile(data):
            tmp = f"{data}.tmp-{os.getpid()}"
            shutil.copyfile(src, tmp)
            os.replace(tmp, data)
        atomic.write_file(self.meta, json.dumps({**meta, "url": self.url}).encode(), durable=False)

    def drop(self) -> None:
        try:
            os.unlink(self.meta)
        except FileNotFoundError:
            pass

    def copy_to(self, digest: str, dest: str) -> None:
        import shutil

        shutil.copyfile(self.data(digest), dest)


def parse_checksum(value: str) -> str:
    algo, _, hexdigest = value.partition(":")
    if algo != "sha256" or len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
        raise InvalidArgument(f"invalid --checksum={value}: use sha256:<64 hex digits>")
    return value
