"""`pyc attach`: the user's terminal joined to a `-d -t` container's pty, which its pyc-monitor
holds and serves on attach.sock (rust/monitor/src/attach.rs has the frames). The terminal is
raw while attached (every key, Ctrl-C too, goes to the process inside) and restored however
this ends; the window size is sent at connect and on SIGWINCH. The detach keys (Ctrl-P Ctrl-Q)
leave the container running."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import tty
from collections.abc import Iterator

from pyc.containers import Container
from pyc.errors import InvalidArgument, NotRunning

SOCKET = "attach.sock"
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


class NoTerminal(NotRunning):
    """The container runs without -t: there is no pty to join, only its output to follow."""


def parse_detach_keys(spec: str) -> bytes:
    """docker's --detach-keys: comma-separated `ctrl-<letter>` or single characters."""
    out = bytearray()
    for key in spec.split(","):
        k = key.strip().lower()
        if k.startswith("ctrl-") and len(k) == 6 and ("a" <= k[5] <= "z" or k[5] in "@[\\]^_"):
            out.append(ord(k[5].upper()) & 0x1F)
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise InvalidArgument(f"invalid detach keys: {spec}")
    return bytes(out)


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


def _size_frame(fd: int) -> bytes | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return frame(1, struct.pack(">HH", rows, cols))


def connect(c: Container) -> socket.socket:
    if c.current_state().status != "running":
        raise NotRunning("You cannot attach to a stopped container, start it first")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    d = os.open(c.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # Through /proc/self/fd: the directory's path may be longer than sun_path allows.
        s.connect(f"/proc/self/fd/{d}/{SOCKET}")
    except OSError:
        s.close()
        raise NoTerminal(f"container {c.name} has no terminal (-t)") from None
    finally:
        os.close(d)
    return s


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield  # not a terminal: bytes are copied as they are
        return
    tty.setraw(fd, termios.TCSANOW)  # TCSAFLUSH would drop keys typed before attach
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def session(s: socket.socket, detach_keys: bytes, stdin: int = 0, stdout: int = 1) -> bool:
    """Copy both ways until the container's terminal closes (False) or the user types the
    detach keys (True)."""
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    # SIGWINCH wakes select through the pipe; the handler itself does nothing else.
    old_fd = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    old_handler = signal.signal(signal.SIGWINCH, lambda *_: None)
    matched = 0  # how much of detach_keys the last keys typed were
    try:
        with _raw(stdin):
            size = _size_frame(stdout) or _size_frame(stdin)
            if size:
                s.sendall(size)
            while True:
                ready, _, _ = select.select([s.fileno(), wake_r] + ([stdin] if stdin >= 0 else []), [], [])
                if wake_r in ready:
                    while True:
                        try:
                            if not os.read(wake_r, 64):
                                break
                        except BlockingIOError:
                            break
                    size = _size_frame(stdout) or _size_frame(stdin)
                    if size:
                        s.sendall(size)
                if s.fileno() in ready:
                    data = s.recv(65536)
                    if not data:
                        return False
                    _write_all(stdout, data)
                if stdin >= 0 and stdin in ready:
                    data = os.read(stdin, 4096)
                    if not data:
                        stdin = -1  # input ended: keep showing output until the end
                        continue
                    send = bytearray()
                    for b in data:
                        if detach_keys and b == detach_keys[matched]:
                            matched += 1
                            if matched == len(detach_keys):
                                if send:
                                    s.sendall(frame(0, bytes(send)))
                                return True
                            continue
                        # Keys held back as a possible detach sequence go through after all.
                        send += detach_keys[:matched]
                        matched = 0
                        if detach_keys and b == detach_keys[0]:
                            matched = 1
                            continue
                        send.append(b)
                    if send:
                        s.sendall(frame(0, bytes(send)))
    finally:
        signal.signal(signal.SIGWINCH, old_handler)
        signal.set_wakeup_fd(old_fd)
        os.close(wake_r)
        os.close(wake_w)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
