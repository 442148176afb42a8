"""`pyc exec`: the process to start in a running container, from the container's own process
(its saved spec) and exec's flags, as docker does: the container's environment plus `-e`, its
working directory unless `-w`, its user unless `-u`; the same capabilities and no_new_privs."""

from __future__ import annotations

from pyc.errors import InvalidArgument
from pyc.runtime.spec import RunOptions, home_of, merge_env, parse_user, user_groups

TYPE_CHECKING = False  # typing costs milliseconds at import; the exec path skips it
if TYPE_CHECKING:
    from typing import Any


class ExecOptions:
    """What `pyc exec` takes besides the container, with docker's meanings."""

    def __init__(
        self,
        command: list[str],
        *,
        env: list[str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        interactive: bool = False,
        detach: bool = False,
        tty: bool = False,
    ) -> None:
        self.command = command
        self.env = env or []
        self.workdir = workdir
        self.user = user
        self.interactive = interactive
        self.detach = detach
        self.tty = tty


def exec_process(container_process: dict[str, Any], opts: ExecOptions, passwd_dirs: list[str], user: str, group_add: list[str]) -> dict[str, Any]:
    """The OCI process for exec. The user is `-u`, else the container's own (`user`, as it was
    given): looked up now, as docker does, in `passwd_dirs` (the container's upper dir first,
    then its image's layers), with its groups and the container's --group-add."""
    if not opts.command:
        raise InvalidArgument("exec needs a command to run in the container")
    if opts.workdir is not None and not opts.workdir.startswith("/"):
        raise InvalidArgument(f"the working directory {opts.workdir!r} is not an absolute path")
    process = dict(container_process)
    if opts.detach and opts.tty:
        raise InvalidArgument("exec -d -t is not supported yet: a detached terminal needs a monitor to hold it")
    process["args"] = opts.command
    process["terminal"] = opts.tty
    process["env"] = merge_env(list(container_process.get("env") or []), RunOptions(env=opts.env), tty=opts.tty)
    if opts.workdir is not None:
        process["cwd"] = opts.workdir
    name = opts.user if opts.user is not None else user
    if name:
        uid, gid = parse_user(name, passwd_dirs)
        process["user"] = {"uid": uid, "gid": gid, "additionalGids": user_groups(name, uid, gid, group_add, passwd_dirs)}
        # The HOME pyc gave the container's user follows the exec's user, as runc sets it per
        # process for docker; an image's or a -e's HOME stays.
        was = f"HOME={home_of(int((container_process.get('user') or {}).get('uid', 0)), passwd_dirs)}"
        if was in process["env"] and not any(e.startswith("HOME=") for e in opts.env):
            process["env"] = [f"HOME={home_of(uid, passwd_dirs)}" if e == was else e for e in process["env"]]
    return process
