"""Image config + options -> OCI spec, without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyc.errors import InvalidArgument
from pyc.records import MountPoint
from pyc.runtime.exec import ExecOptions, exec_process
from pyc.runtime.spec import BASE_MOUNTS, DEFAULT_PATH, RunOptions, build, command_of, merge_env, parse_user


def test_command_follows_docker_rules() -> None:
    cfg = {"Entrypoint": ["/entry"], "Cmd": ["default"]}
    assert command_of(cfg, RunOptions()) == ["/entry", "default"]
    assert command_of(cfg, RunOptions(["given"])) == ["/entry", "given"]
    assert command_of(cfg, RunOptions(entrypoint="/other")) == ["/other"]
    assert command_of({"Cmd": ["sh"]}, RunOptions(["ls", "-l"])) == ["ls", "-l"]
    with pytest.raises(InvalidArgument):
        command_of({}, RunOptions())


def test_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "env"
    f.write_text("A=file\nB=file\n# no\n")
    monkeypatch.setenv("FROM_HOST", "h")
    env = merge_env(["A=image", "PATH=/bin"], RunOptions(env=["B=flag", "FROM_HOST", "UNSET_ANYWHERE"], env_files=[str(f)]))
    assert env == ["A=file", "PATH=/bin", "B=flag", "FROM_HOST=h"]
    with pytest.raises(InvalidArgument):
        merge_env([], RunOptions(env=["=x"]))


def test_a_terminal_gets_term_xterm_unless_the_image_or_e_sets_it() -> None:
    assert "TERM=xterm" in merge_env(["PATH=/bin"], RunOptions(tty=True), tty=True)
    assert not any(e.startswith("TERM=") for e in merge_env(["PATH=/bin"], RunOptions()))
    assert merge_env(["TERM=vt100"], RunOptions(), tty=True) == ["TERM=vt100", f"PATH={DEFAULT_PATH}"]
    assert merge_env(["TERM=vt100"], RunOptions(env=["TERM=screen"]), tty=True) == ["TERM=screen", f"PATH={DEFAULT_PATH}"]
    spec = build({"Cmd": ["sh"]}, RunOptions(tty=True), "/r", {}, [], "h")
    assert "TERM=xterm" in spec["process"]["env"]
    assert not any(e.startswith("TERM=") for e in build({"Cmd": ["sh"]}, RunOptions(), "/r", {}, [], "h")["process"]["env"])


def test_exec_with_a_terminal_gets_term_xterm_unless_set() -> None:
    container = {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/"}
    assert "TERM=xterm" in exec_process(container, ExecOptions(["sh"], tty=True), [], "", [])["env"]
    assert "TERM=xterm" not in exec_process(container, ExecOptions(["sh"]), [], "", [])["env"]
    assert "TERM=vt100" in exec_process({**container, "env": ["TERM=vt100"]}, ExecOptions(["sh"], tty=True), [], "", [])["env"]
    assert "TERM=screen" in exec_process(container, ExecOptions(["sh"], tty=True, env=["TERM=screen"]), [], "", [])["env"]


def test_user_parsing(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("app:x:1500:1600::/home/app:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("staff:x:50:\n")
    layers = [str(tmp_path)]
    assert parse_user(None, layers) == (0, 0)
    assert parse_user("1000", layers) == (1000, 0)
    assert parse_user("1000:2000", layers) == (1000, 2000)
    assert parse_user("app", layers) == (1500, 1600)
    assert parse_user("app:staff", layers) == (1500, 50)
    for bad in ("ghost", "1000:ghosts", "1000:", "-1"):
        with pytest.raises(InvalidArgument):
            parse_user(bad, layers)


def test_spec_has_isolation_defaults(tmp_path: Path) -> None:
    points = [MountPoint(type="tmpfs", destination="/run")]
    spec = build({"Env": ["PATH=/bin"], "Cmd": ["sh"]}, RunOptions(read_only=True), "/c/rootfs", {"hosts": "/c/hosts"}, [str(tmp_path)], "h1", points)
    assert {n["type"] for n in spec["linux"]["namespaces"]} == {"pid", "network", "ipc", "uts", "mount", "cgroup"}
    assert spec["root"] == {"path": "/c/rootfs", "readonly": True}
    assert spec["hostname"] == "h1" and "HOSTNAME=h1" in spec["process"]["env"]
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests[:6] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]
    # Parents first: /run before /etc/hosts; the /etc files read-only with --read-only.
    assert dests[-2:] == ["/run", "/etc/hosts"] and dests.index("/run") == len(BASE_MOUNTS)
    assert spec["mounts"][-1]["options"] == ["rbind", "rprivate", "nosuid", "nodev", "ro"]
    assert "CAP_SYS_ADMIN" not in spec["process"]["capabilities"]["bounding"]


def test_home_is_the_users_of_etc_passwd(tmp_path: Path) -> None:
    """As runc sets it for docker: the user's home in /etc/passwd, else / (root's too)."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n")

    def home(user: str | None, lowers: list[str]) -> str:
        return next(e for e in build({"Cmd": ["sh"]}, RunOptions(user=user), "/r", {}, lowers, "h")["process"]["env"] if e.startswith("HOME="))

    image = [str(tmp_path)]
    assert [home(None, image), home("daemon", image), home("1", image), home("1000", image)] == ["HOME=/root", "HOME=/usr/sbin", "HOME=/usr/sbin", "HOME=/"]
    assert home(None, []) == "HOME=/"
    assert "HOME=/x" in build({"Cmd": ["sh"], "Env": ["HOME=/x"]}, RunOptions(user="daemon"), "/r", {}, image, "h")["process"]["env"]


def test_exec_user_gets_its_home_unless_the_image_or_e_set_one(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n")
    image = [str(tmp_path)]
    container = {"args": ["sh"], "env": ["PATH=/bin", "HOME=/root"], "cwd": "/", "user": {"uid": 0, "gid": 0}}

    def home(process: dict[str, object], opts: ExecOptions) -> list[str]:
        env = exec_process(process, opts, image, "", [])["env"]
        assert isinstance(env, list)
        return [e for e in env if e.startswith("HOME=")]

    assert home(container, ExecOptions(["sh"], user="daemon")) == ["HOME=/usr/sbin"]
    assert home(container, ExecOptions(["sh"])) == ["HOME=/root"]
    assert home(container, ExecOptions(["sh"], user="daemon", env=["HOME=/x"])) == ["HOME=/x"]
    assert home({**container, "env": ["HOME=/srv"]}, ExecOptions(["sh"], user="daemon")) == ["HOME=/srv"]
