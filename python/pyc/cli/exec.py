"""`pyc exec` (also `container exec`): a command in a running container. Exit codes are docker's:
the command's own, 126 when it cannot run, 127 when it is not found, and 1 when the container is
missing or stopped (docker's CLI exits 1 on the daemon's "No such container" and "is not
running")."""

from __future__ import annotations

import sys

from pyc.cli.spec import Arg, Command, Flag


def exec_(container: str, command: list[str], interactive: bool, tty: bool, detach: bool, env: list[str], workdir: str | None, user: str | None) -> int:
    from pyc.engine import CommandFailed, Engine
    from pyc.errors import Conflict, ContainerNotFound
    from pyc.runtime.exec import ExecOptions

    opts = ExecOptions(command, env=env, workdir=workdir, user=user, interactive=interactive, detach=detach, tty=tty)
    try:
        sys.stdout.flush()
        if opts.detach:
            result = Engine().exec(container, opts)
        else:
            result = Engine().exec(container, opts, stdin=0 if opts.interactive else None, stdout=1, stderr=2)
    except (ContainerNotFound, Conflict) as e:
        sys.stderr.write(f"pyc: {e}\n")
        return 1
    except CommandFailed as e:
        sys.stderr.write(f"pyc: {e}\n")
        return e.exit_code
    return result.status


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
