"""The error boundary: the (command, kind) -> exit code table against docker's CLI, the Rust
core's kinds and codes against it, the CLI's exit codes end to end (no root: commands that fail
before any container is made), and the engine's public methods raising PycErrors only."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import pyc
import pyc_core
from pyc.build.builder import BuildOptions
from pyc.cli import main
from pyc.errors import STARTS, Kind, PycError, exit_code
from pyc.records import HostConfig
from pyc.registry.options import PullOptions
from pyc.runtime.exec import ExecOptions


def name(*words: str) -> str:
    found = main.find(list(words))
    assert found is not None
    return found[0].name


# What docker's CLI exits with, as the issue lists it: an unknown container is 1 for every verb.
CONTAINER_VERBS = ["rm", "stop", "start", "kill", "wait", "logs", "exec", "attach", "restart", "inspect", "rename", "export", "diff", "commit", "stats", "update"]


@pytest.mark.parametrize("verb", CONTAINER_VERBS)
def test_unknown_container_is_1(verb: str) -> None:
    assert exit_code(name(verb), Kind.NOT_FOUND) == 1


@pytest.mark.parametrize("verb", ["rmi", "history", "save", "tag", "images"])
def test_unknown_image_is_1(verb: str) -> None:
    assert exit_code(name(verb), Kind.NOT_FOUND) == 1


@pytest.mark.parametrize("verb", ["load", "import"])
def test_bad_archive_is_1(verb: str) -> None:
    assert exit_code(name(verb), Kind.BAD_INPUT) == 1
    assert exit_code(name(verb), Kind.INVALID_ARGUMENT) == 1


def test_run_create_and_start_attach_fail_as_a_start() -> None:
    for command in (name("run"), name("create"), name("start") + " -a"):
        assert exit_code(command, Kind.NOT_FOUND) == 125  # an unknown image
        assert exit_code(command, Kind.INVALID_ARGUMENT) == 125
        assert exit_code(command, Kind.SYSTEM) == 125
        assert exit_code(command, Kind.START_FAILED) == 125
        assert exit_code(command, Kind.COMMAND_NOT_FOUND) == 127
        assert exit_code(command, Kind.COMMAND_NOT_EXECUTABLE) == 126
    # start without -a is an ordinary verb
    assert exit_code(name("start"), Kind.COMMAND_NOT_FOUND) == 1


def test_exec() -> None:
    assert [exit_code(name("exec"), k) for k in (Kind.COMMAND_NOT_FOUND, Kind.COMMAND_NOT_EXECUTABLE, Kind.START_FAILED, Kind.NOT_RUNNING, Kind.NOT_FOUND)] == [127, 126, 126, 1, 1]


def test_flags_are_125_and_arguments_1_for_every_command() -> None:
    for c in main.commands():
        assert (exit_code(c.name, Kind.FLAG), exit_code(c.name, Kind.USAGE)) == (125, 1), c.name


def test_table_names_are_commands() -> None:
    names = {c.name for c in main.commands()}
    assert {s.removesuffix(" -a") for s in STARTS} | {"container exec"} <= names


def test_rust_kinds_agree() -> None:
    """Every kind the core raises is a Kind of Python's, and its exit code (the monitor's, for a
    detached container) is the table's for run."""
    for value, code in pyc_core.ERROR_KINDS.items():
        kind = Kind.of(value)
        assert kind.value == value
        assert exit_code("container run", kind) == code


# -- the CLI's exit codes, end to end ------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYC_ROOT", str(tmp_path))
    return tmp_path


LINES = [
    (["frobnicate"], 1, "No such command"),
    (["container", "frobnicate"], 1, "No such command"),
    (["ps", "--bogus"], 125, "--bogus"),
    (["--bogus"], 125, "--bogus"),
    (["rm"], 1, "Missing argument"),
    (["rename", "a", "b", "c"], 1, "unexpected extra argument"),
    (["stop", "-t", "x", "a"], 125, "'x' is not a valid integer"),
    (["logs", "-n"], 125, "requires an argument"),
    (["rm", "nope"], 1, "no such container: nope"),
    (["inspect", "nope"], 1, "no such object: nope"),
    (["container", "inspect", "nope"], 1, "no such container: nope"),
    (["image", "inspect", "nope"], 1, "no such image: nope"),
    (["tag", "UPPER", "x:1"], 1, "invalid reference format"),
    (["export", "nope"], 1, "no such container: nope"),
    (["rmi", "nope"], 1, "no such image: nope"),
    (["history", "nope"], 1, "no such image: nope"),
    (["tag", "nope", "x:1"], 1, "no such image: nope"),
    (["ps", "--filter", "bogus=1"], 1, "invalid filter"),
    (["start", "-a", "a", "b"], 1, "cannot start and attach multiple"),
    (["volume", "rm", "nope"], 1, "no such volume: nope"),
    (["volume", "inspect", "nope"], 1, "no such volume: nope"),
    (["volume", "create", "--opt", "type=nfs"], 1, 'volume type "nfs" is not supported'),
    (["volume", "create", "--opt", "size"], 1, "invalid --opt 'size': use KEY=VALUE"),
    (["volume", "create", "--driver", "nfs", "v1"], 1, 'volume driver "nfs" is not supported'),
    (["volume", "create", "--opt", "colour=red"], 1, 'invalid option "colour" for the local volume driver'),
    (["volume", "create", "a/b"], 1, '"a/b" includes invalid characters for a local volume name'),
    (["volume", "ls", "--filter", "bogus=1"], 1, "invalid filter"),
    (["volume", "import", "v1"], 1, "Missing argument"),
    (["cp", "a", "b"], 1, "must specify at least one container source"),
    (["cp", "a:/x", "b:/y"], 1, "copying between containers is not supported"),
    (["cp", "nope:/x", "/tmp"], 1, "no such container: nope"),
    (["cp", "nope:", "/tmp"], 1, "no path in the container given"),
    (["run", "-v", "x:/x", "busybox"], 125, '"x" includes invalid characters for a local volume name'),
    (["run", "--mount", "type=bind,target=/x", "busybox"], 125, "field Source must not be empty"),
    (["create", "--volumes-from", "nope", "busybox"], 125, "no such container: nope"),
    (["build", "no-context"], 1, "the build context 'no-context' is not a directory"),
    (["build", "--bogus", "."], 125, "No such option: --bogus"),
]


@pytest.mark.parametrize("argv, code, says", LINES)
def test_cli_exit_codes(store: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, says: str) -> None:
    assert main.dispatch(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pyc: ") and says in err, err


def test_verbs_on_several_containers_say_each_failure_once(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.dispatch(["rm", "a", "b"]) == 1
    assert capsys.readouterr().err == "pyc: no such container: a\npyc: no such container: b\n"


# -- the engine raises PycErrors only ---------------------------------------------------------------


def _garbage(store: Path) -> str:
    path = store / "garbage.tar"
    path.write_bytes(b"\x00\x01not a tar at all\xff" * 40)
    return str(path)


def _container_without_files(engine: pyc.Engine) -> str:
    """A container whose record is there but whose files are gone (a crash in rm)."""
    c = engine.containers.new("filesless", "x", "sha256:" + "0" * 64, [], HostConfig())
    engine.containers.create(c, {})
    os.rename(c.dir, c.dir + ".gone")
    return c.id


# Every public method of the engine, with a call that fails and the kind it must fail with.
FAILURES: dict[str, tuple[Callable[[pyc.Engine, Path], object], Kind]] = {
    "image": (lambda e, s: e.image("nope"), Kind.NOT_FOUND),
    "image_for_run": (lambda e, s: e.image_for_run("nope"), Kind.NOT_FOUND),
    "bootstrap": (lambda e, s: e.bootstrap("nope"), Kind.INVALID_ARGUMENT),
    "import_image": (lambda e, s: e.import_image(_garbage(s), "g:1"), Kind.BAD_INPUT),
    "save": (lambda e, s: e.save(["nope"], str(s / "out.tar")), Kind.NOT_FOUND),
    "load": (lambda e, s: e.load(_garbage(s)), Kind.BAD_INPUT),
    "save_delta": (lambda e, s: e.save_delta(["nope"], ["nope-either"], str(s / "out.pycd")), Kind.NOT_FOUND),
    "inspect_bundle": (lambda e, s: e.inspect_bundle(_garbage(s)), Kind.BAD_INPUT),
    "tag": (lambda e, s: e.tag("nope", "x:1"), Kind.NOT_FOUND),
    "remove_image": (lambda e, s: e.remove_image("nope"), Kind.NOT_FOUND),
    "prune_images": (lambda e, s: ((s / "oci").write_bytes(b""), e.prune_images()), Kind.SYSTEM),
    "run": (lambda e, s: e.run("nope", pyc.RunOptions(["true"], memory="lots")), Kind.NOT_FOUND if os.geteuid() == 0 else Kind.SYSTEM),
    "exec": (lambda e, s: e.exec("nope", ExecOptions(["true"])), Kind.NOT_FOUND),
    "create": (lambda e, s: e.create("nope", pyc.RunOptions(["true"])), Kind.NOT_FOUND if os.geteuid() == 0 else Kind.SYSTEM),
    "run_detached": (lambda e, s: e.run_detached("nope", pyc.RunOptions(["true"])), Kind.NOT_FOUND if os.geteuid() == 0 else Kind.SYSTEM),
    "start": (lambda e, s: e.start("nope"), Kind.NOT_FOUND),
    "stop": (lambda e, s: e.stop("nope"), Kind.NOT_FOUND),
    "kill": (lambda e, s: e.kill("nope"), Kind.NOT_FOUND),
    "restart": (lambda e, s: e.restart("nope"), Kind.NOT_FOUND),
    "pause": (lambda e, s: e.pause("nope"), Kind.NOT_FOUND),
    "unpause": (lambda e, s: e.unpause("nope"), Kind.NOT_FOUND),
    "top": (lambda e, s: e.top("nope"), Kind.NOT_FOUND),
    "wait": (lambda e, s: e.wait("nope"), Kind.NOT_FOUND),
    "stats": (lambda e, s: e.stats("nope"), Kind.NOT_FOUND),
    "update": (lambda e, s: e.update("nope", pyc.RunOptions(memory="64m")), Kind.NOT_FOUND),
    "container": (lambda e, s: e.container("nope"), Kind.NOT_FOUND),
    "list_containers": (lambda e, s: ((s / "pyc.db").mkdir(), e.list_containers()), Kind.SYSTEM),  # sqlite3's error
    "remove_container": (lambda e, s: e.remove_container("nope"), Kind.NOT_FOUND),
    "export": (lambda e, s: e.export(_container_without_files(e), 1), Kind.INVALID_ARGUMENT),
    "diff": (lambda e, s: e.diff(_container_without_files(e)), Kind.SYSTEM),
    "commit": (lambda e, s: e.commit("nope", "x:1"), Kind.NOT_FOUND),
    "history": (lambda e, s: e.history("nope"), Kind.NOT_FOUND),
    "list_images": (lambda e, s: ((s / "oci").write_bytes(b""), e.list_images()), Kind.SYSTEM),
    "rename": (lambda e, s: e.rename("nope", "new"), Kind.NOT_FOUND),
    "prune_containers": (lambda e, s: ((s / "pyc.db").mkdir(), e.prune_containers()), Kind.SYSTEM),
    "system_prune": (lambda e, s: ((s / "pyc.db").mkdir(), e.system_prune()), Kind.SYSTEM),
    "events": (lambda e, s: list(e.events(since="yesterday")), Kind.INVALID_ARGUMENT),
    "info": (lambda e, s: ((s / "pyc.db").mkdir(), e.info()), Kind.SYSTEM),
    "logs": (lambda e, s: e.logs("nope"), Kind.NOT_FOUND),
    "follow_logs": (lambda e, s: list(e.follow_logs("nope")), Kind.NOT_FOUND),
    "attach": (lambda e, s: e.attach("nope"), Kind.NOT_FOUND),
    "disk_usage": (lambda e, s: ((s / "pyc.db").mkdir(), e.disk_usage()), Kind.SYSTEM),
    "copy": (lambda e, s: e.copy("nope:/x", str(s)), Kind.NOT_FOUND),
    "create_volume": (lambda e, s: e.create_volume("v1", options={"type": "nfs"}), Kind.INVALID_ARGUMENT),
    "volume": (lambda e, s: e.volume("nope"), Kind.NOT_FOUND),
    "list_volumes": (lambda e, s: ((s / "pyc.db").mkdir(), e.list_volumes()), Kind.SYSTEM),
    "remove_volume": (lambda e, s: e.remove_volume("nope"), Kind.NOT_FOUND),
    "prune_volumes": (lambda e, s: ((s / "pyc.db").mkdir(), e.prune_volumes()), Kind.SYSTEM),
    "export_volume": (lambda e, s: e.export_volume("nope", 1), Kind.NOT_FOUND),
    "import_volume": (lambda e, s: e.import_volume("v1", _garbage(s)), Kind.BAD_INPUT),
    "create_network": (lambda e, s: e.create_network("n", "10.0.0.0/33"), Kind.INVALID_ARGUMENT),
    "network": (lambda e, s: e.network("nope"), Kind.NOT_FOUND),
    "list_networks": (lambda e, s: ((s / "pyc.db").mkdir(), e.list_networks()), Kind.SYSTEM),
    "network_endpoints": (lambda e, s: e.network_endpoints("nope"), Kind.NOT_FOUND),
    "container_endpoints": (lambda e, s: e.container_endpoints("nope"), Kind.NOT_FOUND),
    "remove_network": (lambda e, s: e.remove_network("nope"), Kind.NOT_FOUND),
    "prune_networks": (lambda e, s: ((s / "pyc.db").mkdir(), e.prune_networks()), Kind.SYSTEM),
    "connect": (lambda e, s: e.connect("nope", "nope"), Kind.NOT_FOUND),
    "disconnect": (lambda e, s: e.disconnect("nope", "nope"), Kind.NOT_FOUND),
    "build": (lambda e, s: e.build(str(s / "no-context"), BuildOptions()), Kind.INVALID_ARGUMENT),
    "prune_build_cache": (lambda e, s: ((s / "buildcache").write_bytes(b""), e.prune_build_cache()), Kind.SYSTEM),
    # Nothing listens on port 1 of loopback: refused at once, no network needed.
    "pull": (lambda e, s: e.pull("127.0.0.1:1/x:1", PullOptions(tls_verify=False)), Kind.REGISTRY),
    "push": (lambda e, s: e.push("nope", "127.0.0.1:1/x:1"), Kind.NOT_FOUND),
    "login": (lambda e, s: e.login("127.0.0.1:1", "u", "p"), Kind.REGISTRY),
    "logout": (lambda e, s: e.logout("not a host"), Kind.INVALID_ARGUMENT),
}


def test_every_public_method_has_a_failure_case() -> None:
    public = {n for n in vars(pyc.Engine) if not n.startswith("_")}
    assert public == set(FAILURES)


@pytest.mark.parametrize("method", sorted(FAILURES))
def test_engine_raises_pyc_errors_only(store: Path, method: str) -> None:
    call, kind = FAILURES[method]
    with pytest.raises(PycError) as e:
        call(pyc.Engine(str(store)), store)
    assert e.value.kind is kind, (e.value.kind, str(e.value))
    assert "\n" not in str(e.value)


def test_core_errors_keep_their_errno(store: Path) -> None:
    engine = pyc.Engine(str(store))
    with pytest.raises(PycError) as e:
        engine.diff(_container_without_files(engine))
    assert (e.value.kind, e.value.errno) == (Kind.SYSTEM, errno.ENOENT)
    assert not isinstance(e.value, (OSError, pyc_core.PycCoreError))
