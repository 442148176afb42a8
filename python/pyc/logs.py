"""Reading a container's log as pyc-monitor writes it (ctr.log, rotated to ctr.log.1, .2 ...):
CRI records `<time> <stdout|stderr> <F|P> <bytes>`, F when a newline followed the bytes."""

from __future__ import annotations

import os
import sys
import time

from pyc.containers import LIVE, Container
from pyc.results import LogRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


def write(r: LogRecord, timestamps: bool = False) -> None:
    """A record to this process's stdout or stderr, as the container wrote it."""
    stream = sys.stderr.buffer if r.stream == "stderr" else sys.stdout.buffer
    if timestamps:
        stream.write(r.time.encode() + b" ")
    stream.write(r.data)
    stream.flush()


def parse_since(value: str) -> str:
    """docker's --since (pyc.times: a time, a Unix time, or a duration ago) as an RFC 3339 UTC
    string without its Z, which compares with the records' times."""
    from pyc.times import parse_time, rfc3339_nano

    return rfc3339_nano(parse_time(value, "--since"), utc=True).removesuffix("Z")


def _parse(line: bytes) -> LogRecord | None:
    parts = line.split(b" ", 3)
    if len(parts) < 4 or not line.endswith(b"\n"):
        return None
    ts, stream, tag, data = parts
    data = data[:-1] + (b"\n" if tag == b"F" else b"")
    return LogRecord(time=ts.decode(errors="replace"), stream=stream.decode(errors="replace"), data=data)


def _files(c: Container) -> list[str]:
    base = c.path("ctr.log")
    rotated = []
    i = 1
    while os.path.exists(f"{base}.{i}"):
        rotated.append(f"{base}.{i}")
        i += 1
    return [*reversed(rotated), base]


def records(c: Container) -> tuple[list[LogRecord], int]:
    """Every record kept, oldest first, and how far the live file was read (for `follow`)."""
    out: list[LogRecord] = []
    offset = 0
    for path in _files(c):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        end = data.rfind(b"\n") + 1  # a record being written is left for `follow`
        out += [r for line in data[:end].splitlines(keepends=True) if (r := _parse(line)) is not None]
        offset = end
    return out, offset


def end(c: Container) -> int:
    """Where the live log's last whole record ends: `follow` from there gives what comes next."""
    try:
        with open(c.path("ctr.log"), "rb") as f:
            size = f.seek(0, os.SEEK_END)
            while size > 0:
                start = max(0, size - 65536)
                f.seek(start)
                newline = f.read(size - start).rfind(b"\n")
                if newline >= 0:
                    return start + newline + 1
                size = start
    except FileNotFoundError:
        pass
    return 0


def follow(c: Container, offset: int, interval: float = 0.05) -> Iterator[LogRecord]:
    """Records written to the live log from `offset` on, while the container runs; a rotation
    is followed to the new file."""
    path = c.path("ctr.log")
    try:
        f = open(path, "rb")  # noqa: SIM115 (reopened on rotation)
    except FileNotFoundError:
        return
    f.seek(offset)
    pending = b""
    last = False
    try:
        while True:
            chunk = f.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    r = _parse(line + b"\n")
                    if r is not None:
                        yield r
                continue
            try:
                rotated = os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                rotated = False
            if rotated:
                f.close()
                f = open(path, "rb")  # noqa: SIM115
                pending = b""
                continue
            if c.current_state().status not in LIVE:
                if last:
                    return
                last = True  # one more read: what was written before the end was recorded
                continue
            time.sleep(interval)
    finally:
        f.close()
