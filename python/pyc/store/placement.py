"""Where a filesystem puts a new tree: layers and containers apart from each other.

ext4 places a new directory, and the files in it, in its parent's block group. A layer or a
container upper dir is thousands of files created right after another one was deleted from the
same parent; without a journal, ext4 then scans past every recently freed inode on each create
(`recently_deleted()`, quadratic in the files of the tree just removed): a 6,700-file import took
5 s instead of 0.55 s here. The directory flag `T` (FS_TOPDIR_FL, `chattr +T`) asks the Orlov
allocator to treat each child as the top of its own hierarchy and spread it to a fresh group,
which is what unrelated trees are. Filesystems without the flag ignore it. Orlov starts its
search at a hash of the child's name, so the children must be named apart: tmp/ holds
pid-random names and containers/ ids (a flag on a temp dir whose child is always "layer"
sent every import back to the group just freed, and was slower than no flag).
"""

from __future__ import annotations

import fcntl
import os
import struct

_GETFLAGS = 0x80086601  # FS_IOC_GETFLAGS (the kernel reads and writes an int)
_SETFLAGS = 0x40086602  # FS_IOC_SETFLAGS
_TOPDIR = 0x00020000  # FS_TOPDIR_FL


def spreads_children(path: str) -> bool:
    """Whether `path` has the flag (`pyc info`'s word on the placement being in effect)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        (flags,) = struct.unpack("i", fcntl.ioctl(fd, _GETFLAGS, b"\0" * 4))
    except OSError:
        return False
    finally:
        os.close(fd)
    return bool(flags & _TOPDIR)


def spread_children(path: str) -> None:
    """Mark `path` so each directory made in it gets a block group of its own. Best effort:
    a filesystem or a kernel that lacks the flag leaves placement as it was."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        (flags,) = struct.unpack("i", fcntl.ioctl(fd, _GETFLAGS, b"\0" * 4))
        if not flags & _TOPDIR:
            fcntl.ioctl(fd, _SETFLAGS, struct.pack("i", flags | _TOPDIR))
    except OSError:
        pass
    finally:
        os.close(fd)
