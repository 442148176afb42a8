"""The records of foreground `--rm` containers that the user did not name: a file each,
$PYC_ROOT/foreground/<id> (the record as msgpack), never a row in pyc.db. Such a container lives
as long as the `pyc run` that holds it: writing its record to SQLite and deleting it again (with
the checkpoint and sync that come with closing the database) was most of the cost of a short
`pyc run --rm` beyond the container itself. `ps`, `inspect`, `exec`, `rm` and the rest find it
here as they find the others in pyc.db (ContainerStore reads both).

Its name was generated (a user's name goes into pyc.db, whose UNIQUE index keeps two containers
from one name); pyc.db's writers check this directory before they take a name, and a rename of
such a container checks pyc.db, so neither side takes a name the other holds. A record of a run
whose pyc was killed stays, like a row would, and shows the container exited (137) until `rm`."""

from __future__ import annotations

import os

from pyc.record import BadRecord
from pyc.records import ContainerRecord
from pyc_core import packb, unpackb


class ForegroundRecords:
    __slots__ = ("dir",)

    def __init__(self, directory: str) -> None:
        self.dir = directory

    def path(self, cid: str) -> str:
        return os.path.join(self.dir, cid)

    def create(self, record: ContainerRecord) -> None:
        """The record of a new container, written in one write (a reader that comes first
        sees an empty file and skips it). Not synced: the container does not outlive a crash."""
        try:
            _write(self.path(record.id), packb(record.to_dict()))
        except FileNotFoundError:
            # Private: a record holds the container's environment, which may hold secrets.
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            _write(self.path(record.id), packb(record.to_dict()))

    def update(self, record: ContainerRecord) -> bool:
        """Replace a record that is there, in one rename; False when it is not (the container
        was removed)."""
        path = self.path(record.id)
        if not os.path.exists(path):
            return False
        tmp = f"{path}.tmp-{os.getpid()}"
        _write(tmp, packb(record.to_dict()), os.O_TRUNC)
        os.rename(tmp, path)
        return True

    def read(self, cid: str) -> ContainerRecord | None:
        try:
            with open(self.path(cid), "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            record = ContainerRecord.load(unpackb(data))
        except (BadRecord, ValueError):
            return None  # being written, or not a record of ours
        return record if record.id == cid else None

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return [n for n in names if len(n) == 64]  # not an update's temp file

    def all(self) -> list[ContainerRecord]:
        return [r for r in map(self.read, self.ids()) if r is not None]

    def named(self, name: str) -> ContainerRecord | None:
        return next((r for r in self.all() if r.name == name), None)

    def delete(self, cid: str) -> None:
        try:
            os.unlink(self.path(cid))
        except FileNotFoundError:
            pass


def _write(path: str, data: bytes, mode: int = os.O_EXCL) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
