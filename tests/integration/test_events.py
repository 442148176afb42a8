"""pyc events: the journal every pyc command and pyc-monitor append to, read and followed as
docker's events. A follower sees a container's create, start and die (with its exit code) in
order, live; --since, --until and --filter pick as docker's; the monitor logs a detached
container's starts and deaths (restarts, the name after a rename); concurrent writers never
interleave; the journal stays bounded and a follower goes on across its rotations."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc
from tests.integration.lifecycle_helpers import until

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


class Follower:
    """`pyc events ARGS` running, its lines read as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([PYC, "events", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.journal = Path(os.environ["PYC_ROOT"]) / "events.log"

    def wait_until_at_the_end(self) -> None:
        """Until it holds the live journal open at its end: what is logged from then on, it
        has to see live (there is no history without --since)."""

        def at_end() -> bool:
            for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
                try:
                    if os.readlink(f"/proc/{self.proc.pid}/fd/{fd}") == str(self.journal):
                        pos = int(Path(f"/proc/{self.proc.pid}/fdinfo/{fd}").read_text().split()[1])
                        return pos == self.journal.stat().st_size
                except (FileNotFoundError, ProcessLookupError):
                    continue
            return False

        until(at_end, "the follower at the journal's end")

    def lines(self) -> Iterator[str]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            yield line.rstrip("\n")

    def stop(self) -> str:
        self.proc.kill()
        _, err = self.proc.communicate(timeout=10)
        return err


def test_a_follower_sees_create_start_and_die_in_order_live() -> None:
    f = Follower("--filter", "container=evlive", "--format", "json")
    try:
        f.wait_until_at_the_end()
        assert pyc("run", "--name", "evlive", "busybox", "sh", "-c", "exit 5").returncode == 5
        seen = []
        for line in f.lines():
            seen.append(json.loads(line))
            if seen[-1]["Action"] == "die":
                break
    finally:
        assert f.stop() == ""
    assert [e["Action"] for e in seen] == ["create", "start", "die"]
    die = seen[-1]
    assert die["Actor"]["Attributes"] == {"exitCode": "5", "image": "busybox", "name": "evlive"}
    assert (die["Type"], die["status"], die["from"], die["id"], die["scope"]) == ("container", "die", "busybox", die["Actor"]["ID"], "local")
    assert die["time"] == die["timeNano"] // 10**9 and seen[0]["timeNano"] <= seen[1]["timeNano"] <= die["timeNano"]
    assert pyc("rm", "evlive").returncode == 0


def test_since_until_filters_and_docker_lines() -> None:
    t0 = time.time()
    assert pyc("run", "--rm", "--name", "evpast", "busybox", "sh", "-c", "exit 3").returncode == 3
    r = pyc("events", "--since", str(t0), "--until", "0s", "--filter", "container=evpast")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split()[2] for ln in lines] == ["create", "start", "die", "destroy"]
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)"
    assert re.fullmatch(stamp + r" container die [0-9a-f]{64} \(exitCode=3, image=busybox, name=evpast\)", lines[2]), lines[2]
    # Filters of one key are or-ed, keys and-ed; --format is a Go template over docker's message.
    r = pyc("events", "--since", str(t0), "--until", "0s", "--filter", "container=evpast", "--filter", "event=die", "--filter", "event=start", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}")
    assert r.stdout == "start <no value>\ndie 3\n"
    r = pyc("events", "--since", str(t0), "--until", "0s", "--filter", "image=busybox", "--filter", "label=exitCode=3", "--format", "{{.Action}}")
    assert r.stdout == "die\n"
    assert pyc("events", "--since", str(t0), "--until", "0s", "--filter", "type=image").stdout == ""
    # A template sees docker's Go struct (.ID, .Status, .TimeNano), {{json .}} its JSON.
    as_json = pyc("events", "--since", str(t0), "--until", "0s", "--filter", "container=evpast", "--format", "json").stdout
    assert pyc("events", "--since", str(t0), "--until", "0s", "--filter", "container=evpast", "--format", "{{json .}}").stdout == as_json
    first = json.loads(as_json.splitlines()[0])
    r = pyc("events", "--since", str(t0), "--until", "0s", "--filter", "container=evpast", "--filter", "event=create", "--format", "{{.Status}} {{.ID}} {{.From}} {{.Scope}} {{.TimeNano}}")
    assert r.stdout == f"create {first['id']} busybox local {first['timeNano']}\n"
    # --until in the past ends at once; bad input is one line, exit 1.
    assert pyc("events", "--until", "10m", timeout=10).stdout == ""
    for args in (["--since", "yesterday"], ["--until", "2026-13-01"], ["--filter", "colour=red"], ["--filter", "nokey"]):
        r = pyc("events", *args, timeout=10)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, (args, r)


def test_image_and_exec_events() -> None:
    t0 = time.time()
    assert pyc("tag", "busybox", "evimg:1").returncode == 0
    assert pyc("rmi", "evimg:1").returncode == 0
    r = pyc("events", "--since", str(t0), "--until", "0s", "--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.ID}}")
    image_id = pyc("image", "inspect", "--format", "{{.Id}}", "busybox").stdout.strip()
    assert r.stdout == f"tag evimg:1 {image_id}\nuntag evimg:1 {image_id}\n"

    holder = subprocess.Popen([PYC, "run", "--rm", "--name", "evexec", "busybox", "sh", "-c", "echo ready; exec sleep 300"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        t1 = time.time()
        assert pyc("exec", "evexec", "sh", "-c", "exit 4").returncode == 4
        # (the container's own start may be logged after its first output: as docker's, once it runs)
        r = pyc("events", "--since", str(t1), "--until", "0s", "--filter", "event=exec_create", "--filter", "event=exec_start", "--filter", "event=exec_die", "--format", "json")
        events = [json.loads(line) for line in r.stdout.splitlines()]
        assert [e["Action"] for e in events] == ["exec_create: sh -c exit 4", "exec_start: sh -c exit 4", "exec_die"]
        assert len({e["Actor"]["Attributes"]["execID"] for e in events}) == 1 and events[-1]["Actor"]["Attributes"]["exitCode"] == "4"
        # event=exec_start matches "exec_start: <command>", as docker's filter does.
        assert pyc("events", "--since", str(t1), "--until", "0s", "--filter", "event=exec_start", "--format", "{{.Action}}").stdout == "exec_start: sh -c exit 4\n"
    finally:
        holder.kill()
        holder.communicate(timeout=10)


def test_volume_events_as_dockers() -> None:
    """A volume's create, mount (before its container's start), unmount (after its die) and
    destroy, and volume prune's, with docker's attributes; from foreground runs (whose records
    are files) and from the monitor of a detached container alike."""
    t0 = time.time()
    assert pyc("volume", "create", "evvol").returncode == 0
    r = pyc("run", "--rm", "-v", "evvol:/v:ro", "busybox", "hostname")
    fg = pyc("events", "--since", str(t0), "--until", "0s", "--filter", "container=" + r.stdout.strip(), "--format", "{{.ID}}").stdout.split()[0]
    cid = pyc("run", "-d", "--name", "evdet", "-v", "evvol:/v", "-v", "/evanon", "busybox", "sleep", "60").stdout.strip()
    anon = [m["Name"] for m in json.loads(pyc("inspect", cid).stdout)[0]["Mounts"] if m["Destination"] == "/evanon"][0]
    assert pyc("rm", "-f", "-v", "evdet").returncode == 0
    assert pyc("volume", "rm", "evvol").returncode == 0
    assert pyc("volume", "prune", "-f").returncode == 0
    r = pyc("events", "--since", str(t0), "--until", "0s", "--format", "json")
    seen = [json.loads(line) for line in r.stdout.splitlines()]
    ours = [e for e in seen if e["Type"] == "volume" or e["Actor"]["ID"] in (fg, cid)]
    short = {fg: "fg", cid: "det", "evvol": "evvol", anon: "anon", "": ""}
    assert [(e["Type"], e["Action"], short[e["Actor"]["ID"]]) for e in ours] == [
        ("volume", "create", "evvol"),
        ("container", "create", "fg"),
        ("volume", "mount", "evvol"),
        ("container", "start", "fg"),
        ("container", "die", "fg"),
        ("volume", "unmount", "evvol"),
        ("container", "destroy", "fg"),
        ("volume", "create", "anon"),
        ("container", "create", "det"),
        ("volume", "mount", "evvol"),
        ("volume", "mount", "anon"),
        ("container", "start", "det"),
        ("container", "kill", "det"),
        ("container", "die", "det"),
        ("volume", "unmount", "evvol"),
        ("volume", "unmount", "anon"),
        ("container", "destroy", "det"),
        ("volume", "destroy", "anon"),
        ("volume", "destroy", "evvol"),
        ("volume", "prune", ""),
    ], [(e["Type"], e["Action"]) for e in ours]
    volume = [e for e in ours if e["Type"] == "volume"]
    assert volume[0]["Actor"]["Attributes"] == {"driver": "local"}
    assert volume[1]["Actor"]["Attributes"] == {"container": fg, "destination": "/v", "driver": "local", "propagation": "", "read/write": "false"}
    assert volume[2]["Actor"]["Attributes"] == {"container": fg, "driver": "local"}
    assert volume[4]["Actor"]["Attributes"] == {"container": cid, "destination": "/v", "driver": "local", "propagation": "", "read/write": "true"}
    assert volume[-1]["Actor"]["Attributes"] == {"reclaimed": "0"} and "status" not in volume[-1]
    # --filter volume= by name, type=volume.
    r = pyc("events", "--since", str(t0), "--until", "0s", "--filter", "volume=evvol", "--format", "{{.Action}}")
    assert r.stdout.split() == ["create", "mount", "unmount", "mount", "unmount", "destroy"]


def test_the_monitor_logs_restarts_and_the_name_after_a_rename() -> None:
    t0 = time.time()
    cid = pyc("run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3").stdout.strip()
    until(lambda: pyc("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", cid).stdout == "exited 2\n", "two restarts, then the end")
    r = pyc("events", "--since", str(t0), "--until", "0s", "--filter", f"container={cid[:12]}", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}")
    assert r.stdout.splitlines() == ["create <no value>"] + ["start <no value>", "die 3"] * 3

    t1 = time.time()
    cid = pyc("run", "-d", "--name", "evold", "busybox", "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.02; done; exit 6").stdout.strip()
    assert pyc("rename", "evold", "evnew").returncode == 0
    assert pyc("exec", "evnew", "touch", "/tmp/go").returncode == 0
    assert pyc("wait", "evnew").stdout == "6\n"
    template = "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}"
    r = pyc("events", "--since", str(t1), "--until", "0s", "--filter", f"container={cid}", "--filter", "event=die", "--filter", "event=rename", "--format", template)
    assert r.stdout.splitlines() == ["rename evnew evold", "die evnew <no value>"]  # the monitor's word, under the new name


@pytest.mark.limits
def test_oom_comes_before_die() -> None:
    t0 = time.time()
    r = pyc("run", "--rm", "--name", "evoom", "-m", "8m", "--memory-swap", "8m", "busybox", "sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}")
    assert r.returncode == 137
    r = pyc("events", "--since", str(t0), "--until", "0s", "--filter", "container=evoom", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}")
    assert r.stdout.splitlines() == ["create <no value>", "start <no value>", "oom <no value>", "die 137", "destroy <no value>"]


WRITER = """
import sys, time
from pyc.events import Journal
j = Journal(sys.argv[1])
for i in range(int(sys.argv[3])):
    j.log_all([("image", "tag", sys.argv[2], {"name": f"{sys.argv[2]}-{i:04d}", "pad": "x" * 150}), ("image", "untag", sys.argv[2], {"name": f"{sys.argv[2]}-{i:04d}"})])
    time.sleep(0.01)
"""


def test_concurrent_writers_and_a_follower_across_rotations(tmp_path: Path) -> None:
    """Writer processes append pairs of lines (one write each) to a journal bounded at 16 kB
    while a follower reads it: it sees every line once, each pair together, each writer's in
    order, across several rotations; the files never pass the bound."""
    root = tmp_path / "store"
    root.mkdir()
    bound = 16_000
    env = {**os.environ, "PYC_ROOT": str(root), "PYC_EVENTS_MAX_SIZE": str(bound)}
    (root / "events.log").write_bytes(b"")  # the follower's start: the journal's (empty) end
    f = Follower("--format", "json", env=env)
    f.journal = root / "events.log"
    writers, each = 4, 60
    try:
        f.wait_until_at_the_end()
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), f"w{n}", str(each)], env=env) for n in range(writers)]
        got = []
        for line in f.lines():
            got.append(json.loads(line))
            if len(got) == writers * each * 2:
                break
        assert [p.wait(timeout=60) for p in procs] == [0] * writers
    finally:
        f.stop()
    last: dict[str, int] = {}
    for tag, untag in zip(got[::2], got[1::2], strict=True):
        assert (tag["Action"], untag["Action"], tag["Actor"]["Attributes"]["name"]) == ("tag", "untag", untag["Actor"]["Attributes"]["name"])
        writer, i = tag["Actor"]["Attributes"]["name"].split("-")
        assert int(i) == last.get(writer, -1) + 1, f"{writer}-{i} after {last.get(writer)}"
        last[writer] = int(i)
    assert last == {f"w{n}": each - 1 for n in range(writers)}
    rotated = root / "events.log.1"
    assert rotated.exists() and rotated.stat().st_size <= bound and (root / "events.log").stat().st_size <= bound
    # Several rotations happened: far more was written than the two files hold.
    assert sum(len(json.dumps(e)) for e in got) > 3 * bound
