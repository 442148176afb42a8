"""`pyc top`: the host's `ps`, its rows kept for the processes of a container's cgroup, as docker
does it (daemon/top_unix.go): the PID column found by its title, a thread row (`-` in PID,
with `-L` or `m`) kept with its process, the last column taking the rest of the line."""

from __future__ import annotations

import re
import subprocess

from pyc.errors import InvalidArgument, PycError
from pyc.results import Top

# docker refuses an output column renamed to something PID-like but the pid's own (`-o comm=PID`
# would make ps's pid column impossible to tell from it).
_RENAMED_PID = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


def _fields(line: str) -> list[str]:
    """Split on ASCII whitespace only, as docker's fieldsASCII: a command's own non-ASCII
    spaces stay in it."""
    return [f for f in re.split(r"[ \t\n\v\f\r]+", line) if f]


def parse(output: str, pids: set[int]) -> Top:
    lines = output.split("\n")
    titles = _fields(lines[0])
    if "PID" not in titles:
        raise InvalidArgument("couldn't find PID field in ps output (give ps options with a PID column)")
    at = titles.index("PID")
    processes = []
    inside = False  # whether the last process row was the container's (for its thread rows)
    for line in lines[1:]:
        fields = _fields(line)
        if not fields:
            continue
        if len(fields) <= at:
            raise PycError(f"unexpected ps output: {line!r}")
        if fields[at] == "-":
            if inside:
                processes.append(_row(fields, len(titles)))
            continue
        if not fields[at].isdigit():
            raise PycError(f"unexpected pid {fields[at]!r} in ps output")
        inside = int(fields[at]) in pids
        if inside:
            processes.append(_row(fields, len(titles)))
    return Top(titles=titles, processes=processes)


def _row(fields: list[str], columns: int) -> list[str]:
    """As many cells as titles: the overhanging fields (a command's arguments) joined into the last."""
    return [*fields[: columns - 1], " ".join(fields[columns - 1 :])]


def top(pids: list[int], ps_args: list[str]) -> Top:
    """Run `ps ps_args` on the host (asked for `pids` only, with -q, where the options allow it)
    and keep the rows of `pids`."""
    joined = " " + " ".join(ps_args)
    for key, value in _RENAMED_PID.findall(joined):
        if key != "pid":
            raise InvalidArgument(f'specifying "{key}={value}" is not allowed')
    import os

    wanted = set(pids)
    only = ["-q", ",".join(str(p) for p in sorted(wanted))]
    # ps cuts its lines to $COLUMNS when it is set (a terminal's width): whole lines, as docker's.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    r = subprocess.run(["ps", *ps_args, *only], capture_output=True, text=True, errors="replace", env=env)
    if r.returncode != 0 or not wanted:
        # Some options (f) do not go with -q: all processes then, and the rows picked here.
        r = subprocess.run(["ps", *ps_args], capture_output=True, text=True, errors="replace", env=env)
    if r.returncode != 0:
        raise InvalidArgument(f"ps {' '.join(ps_args)}: {r.stderr.strip().splitlines()[0] if r.stderr.strip() else f'exit status {r.returncode}'}")
    return parse(r.stdout, wanted)
