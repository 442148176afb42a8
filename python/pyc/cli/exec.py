"""`pyc exec` (also `container exec`): a command in a running container. Its exit code is the
command's own, else docker's from pyc.errors.exit_code: 126 when it cannot run, 127 when it is
not found, 1 when the container is missing or stopped."""

from __future__ import annotations

import sys

from pyc.cli.spec import Arg, Command, Flag


def exec_(container: str, command: list[str], interactive: bool, tty: bool, detach: bool, env: list[str], workdir: str | None, user: str | None) -> int:
    from pyc.engine import Engine
    from pyc.runtime.exec import ExecOptions

    opts = ExecOptions(command, env=env, workdir=workdir, user=user, interactive=interactive, detach=detach, tty=tty)
    sys.stdout.flush()
    if opts.detach:
        return Engine().exec(container, opts).status
    return Engine().exec(container, opts, stdin=0 if opts.interactive else None, stdout=1, stderr=2).status


COMMANDS = [
    Command(
        ("container", "exec"),
        "Run a command in a running container.",
        exec_,
        (Arg("container", "CONTAINER", "Container name or ID."), Arg("command", "COMMAND", "Command and arguments.", many=True)),
        (
            Flag(("-i", "--interactive"), "interactive", bool, "Keep stdin open and pass it in."),
            Flag(("-t", "--tty"), "tty", bool, "Allocate a pseudo-terminal."),
            Flag(("-d", "--detach"), "detach", bool, "Run it in the background."),
            Flag(("-e", "--env"), "env", list, "Set an environment variable (K=V, or K to pass pyc's)."),
            Flag(("-w", "--workdir"), "workdir", help="Working directory inside the container."),
            Flag(("-u", "--user"), "user", help="UID[:GID] or user[:group] of the image."),
        ),
        aliases=(("exec",),),
        interspersed=False,
    ),
]
