"""ADD of a URL: the file downloaded (http or https, the environment's proxies) into the build's
scratch dir as BuildKit's HTTP source keeps it: mode 0600, its mtime the Last-Modified header's
when the server gives one, its sha256 checked against `--checksum` when given. Archives so
fetched are not unpacked (as in docker)."""

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


def fetch(url: str, dest: str, checksum: str | None) -> str:
    """Download `url` into the file `dest`; its sha256 digest ("sha256:..."), which must be
    `checksum` when that is given. One line naming the URL on any failure."""
    import email.utils
    import urllib.error
    import urllib.request

    h = hashlib.sha256()
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "pyc-build"})
        with urllib.request.urlopen(req, timeout=60) as resp, open(dest, "wb") as out:
            while chunk := resp.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
            modified = resp.headers.get("Last-Modified")
    except urllib.error.HTTPError as e:
        raise InvalidArgument(f"ADD {url}: the server answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise InvalidArgument(f"ADD {url}: cannot download: {reason}") from None
    digest = "sha256:" + h.hexdigest()
    if checksum is not None and digest != checksum:
        raise InvalidArgument(f"ADD {url}: checksum mismatch: --checksum={checksum}, the download is {digest}")
    os.chmod(dest, 0o600)
    try:
        when = email.utils.parsedate_to_datetime(modified).timestamp() if modified else None
    except (TypeError, ValueError):
        when = None  # a header that is no date: the download's own time
    if when is not None:
        os.utime(dest, (when, when))
    return digest


def parse_checksum(value: str) -> str:
    algo, _, hexdigest = value.partition(":")
    if algo != "sha256" or len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
        raise InvalidArgument(f"invalid --checksum={value}: use sha256:<64 hex digits>")
    return value
