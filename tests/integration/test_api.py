"""`import pyc`: the engine API the CLI itself uses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


def test_run_captures_output_and_status() -> None:
    r = pyc.Engine().run("busybox", pyc.RunOptions(["sh", "-c", "echo out; echo err >&2; exit 5"], remove=True))
    assert (r.status, r.stdout, r.stderr) == (5, b"out\n", b"err\n")


def test_large_output_is_captured_whole() -> None:
    r = pyc.Engine().run("busybox", pyc.RunOptions(["sh", "-c", "yes 0123456789 | head -c 3000000"], remove=True))
    assert r.status == 0 and r.stdout is not None and len(r.stdout) == 3_000_000


def test_stdin_from_a_file_descriptor() -> None:
    read, write = os.pipe()
    os.write(write, b"through a pipe\n")
    os.close(write)
    try:
        r = pyc.Engine().run("busybox", pyc.RunOptions(["cat"], remove=True, interactive=True), stdin=read)
    finally:
        os.close(read)
    assert r.stdout == b"through a pipe\n"


def test_command_failures_are_typed() -> None:
    with pytest.raises(pyc.CommandFailed) as e:
        pyc.Engine().run("busybox", pyc.RunOptions(["nope"], remove=True))
    assert e.value.kind is pyc.Kind.COMMAND_NOT_FOUND
    with pytest.raises(pyc.ImageNotFound) as missing:
        pyc.Engine().run("nope-image", pyc.RunOptions(["true"], remove=True))
    assert missing.value.kind is pyc.Kind.NOT_FOUND


def test_kept_container_can_be_found_and_removed() -> None:
    e = pyc.Engine()
    r = e.run("busybox", pyc.RunOptions(["true"], name="api-kept"))
    c = e.container("api-kept")
    assert c.id == r.container_id and c.status == "exited" and c.state.exit_code == 0
    e.remove_container("api-kept")
    with pytest.raises(pyc.ContainerNotFound):
        e.container("api-kept")


def test_gil_is_released_while_a_container_runs() -> None:
    import threading
    import time

    ticks = 0
    done = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    try:
        pyc.Engine().run("busybox", pyc.RunOptions(["sleep", "0.5"], remove=True))
    finally:
        done.set()
        t.join()
    assert ticks > 20


def test_run_path_imports_no_cli_or_http_libraries() -> None:
    # A run after any image change refreshes the run path's cache (which needs json); then none.
    pyc.Engine().run("busybox", pyc.RunOptions(["true"], remove=True))
    code = (
        "import sys\n"
        "from pyc.cli.main import dispatch\n"
        "rc = dispatch(['run', '--rm', 'busybox', 'true'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'click', 'rich', 'httpx', 'typing', 'dataclasses', 'inspect', 'subprocess', 'json', 're', 'hashlib'})\n"
        "print(rc, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "0 []\n"


@pytest.mark.limits
def test_oom_kill_is_reported() -> None:
    hog = "x=$(head -c 64m /dev/zero | tr '\\0' a)"
    r = pyc.Engine().run("busybox", pyc.RunOptions(["sh", "-c", hog], remove=True, memory="16m", memory_swap="16m"))
    assert (r.status, r.oom_killed) == (137, True)
