"""Names on a user-defined network: an entry file per container in the network's run directory
(`hosts/<container id>`: its holder, address, names, --dns upstreams; read by pyc-dns, see
rust/dns/src/entries.rs) and the resolver itself, pyc-dns at the gateway, started with the
network's first container. It leaves by itself after its last entry's holder ended, under the
network's lock, which pyc holds from `ensure_resolver` until the entry is written."""

from __future__ import annotations

import os

from pyc.errors import Kind, PycError


def entries_dir(netdir: str) -> str:
    return os.path.join(netdir, "hosts")


def write_entry(netdir: str, cid: str, holder: tuple[int, str], ip: str, names: list[str], upstreams: list[str]) -> None:
    d = entries_dir(netdir)
    os.makedirs(d, mode=0o700, exist_ok=True)
    lines = [f"holder {holder[0]} {holder[1]}", f"ip {ip}", *(f"name {n}" for n in names), *(f"upstream {u}" for u in upstreams)]
    tmp = os.path.join(d, f".tmp-{cid}-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(tmp, os.path.join(d, cid))


def set_holder(netdir: str, cid: str, holder: tuple[int, str]) -> None:
    """The entry, now held by `holder` (a detached container's pyc-monitor, once it runs)."""
    path = os.path.join(entries_dir(netdir), cid)
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return
    tmp = os.path.join(entries_dir(netdir), f".tmp-{cid}-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write("\n".join(f"holder {holder[0]} {holder[1]}" if ln.startswith("holder ") else ln for ln in lines) + "\n")
    os.rename(tmp, path)


def remove_entry(netdir: str, cid: str) -> None:
    try:
        os.unlink(os.path.join(entries_dir(netdir), cid))
    except FileNotFoundError:
        pass


def resolver_alive(netdir: str) -> bool:
    from pyc.network.store import holder_alive

    try:
        with open(os.path.join(netdir, "resolver")) as f:
            pid, _, start = f.read().strip().partition(" ")
    except FileNotFoundError:
        return False
    return pid.isdigit() and holder_alive(int(pid), start)


def stop_resolver(netdir: str) -> None:
    """End the network's resolver, if it runs (`pyc network rm`)."""
    import signal

    try:
        with open(os.path.join(netdir, "resolver")) as f:
            pid, _, start = f.read().strip().partition(" ")
    except FileNotFoundError:
        return
    from pyc.network.store import holder_alive

    if not pid.isdigit() or not holder_alive(int(pid), start):
        return
    try:
        fd = os.pidfd_open(int(pid))
    except ProcessLookupError:
        return
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        os.close(fd)


def ensure_resolver(netdir: str, gateway: str, search: list[str], upstreams: list[str]) -> None:
    """Start the network's resolver unless it runs. The caller holds the network's lock."""
    from pyc.programs import spawn_detached

    if resolver_alive(netdir):
        return
    os.makedirs(entries_dir(netdir), mode=0o700, exist_ok=True)
    argv = ["pyc-dns", "--listen", gateway, "--entries", entries_dir(netdir), "--lock", os.path.join(netdir, "lock"), "--pidfile", os.path.join(netdir, "resolver")]
    for d in search:
        argv += ["--search", d]
    for u in upstreams:
        argv += ["--upstream", u]
    report = spawn_detached("pyc-dns", lambda fd: [*argv, "--report", str(fd)])
    word, _, rest = report.partition(" ")
    if word != "ok":
        raise PycError(f"the network's resolver (pyc-dns) did not start: {rest or 'no report'}", Kind.SYSTEM)
