"""`pyc run` and `pyc create` (also `container run|create`): their flags, which are RunOptions'
fields by the same names, and the limit flags `pyc update` shares. The hot path: this module
imports nothing at load time."""

from __future__ import annotations

import sys

from pyc.cli.spec import Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The limits, as run, create and update take them (RunOptions' fields of the same names).
LIMITS = "Limits"  # their panel in --help
LIMIT_FLAGS = (
    Flag(("-m", "--memory"), "memory", help="Memory limit (e.g. 64m, 1g).", panel=LIMITS),
    Flag(("--memory-swap",), "memory_swap", help="Memory plus swap limit; -1: unlimited swap.", panel=LIMITS),
    Flag(("--memory-reservation",), "memory_reservation", help="Soft memory limit.", panel=LIMITS),
    Flag(("--cpus",), "cpus", help="Number of CPUs (e.g. 1.5).", panel=LIMITS),
    Flag(("-c", "--cpu-shares"), "cpu_shares", help="Relative CPU weight (default 1024).", panel=LIMITS),
    Flag(("--cpuset-cpus",), "cpuset_cpus", help="CPUs to run on (e.g. 0-2,4).", panel=LIMITS),
    Flag(("--pids-limit",), "pids_limit", help="Most processes at once (-1: unlimited).", panel=LIMITS),
    Flag(("--blkio-weight",), "blkio_weight", help="Relative block I/O weight, 10 to 1000.", panel=LIMITS),
)

RUN_FLAGS = (
    Flag(("--rm",), "remove", bool, "Remove the container when it exits."),
    Flag(("--init",), "init", bool, "Run a reaper as pid 1 that forwards signals and reaps zombies."),
    Flag(("-d", "--detach"), "detach", bool, "Run in the background; print the container ID.", panel="Detached"),
    Flag(("--restart",), "restart", help="no, on-failure[:N], always or unless-stopped (with -d).", panel="Detached"),
    Flag(("--log-opt",), "log_opts", list, "Log options: max-size=SIZE, max-file=N (with -d).", panel="Detached"),
    Flag(("-i", "--interactive"), "interactive", bool, "Keep stdin open and pass it in."),
    Flag(("-t", "--tty"), "tty", bool, "Allocate a pseudo-terminal."),
    Flag(("--read-only",), "read_only", bool, "Mount the container's root read-only."),
    Flag(("-e", "--env"), "env", list, "Set an environment variable (K=V, or K to pass pyc's)."),
    Flag(("--env-file",), "env_files", list, "Read environment variables from a file."),
    Flag(("-w", "--workdir"), "workdir", help="Working directory inside the container."),
    Flag(("-u", "--user"), "user", help="UID[:GID] or user[:group] of the image."),
    Flag(("-h", "--hostname"), "hostname", help="Container host name."),
    Flag(("--name",), "name", help="Assign a name to the container."),
    Flag(("--entrypoint",), "entrypoint", help="Override the image's entrypoint."),
    Flag(("-v", "--volume"), "volumes", list, "Bind mount HOST:CONTAINER[:ro|rw]."),
    Flag(("--tmpfs",), "tmpfs", list, "Mount a tmpfs at PATH[:options]."),
    *LIMIT_FLAGS,
    Flag(("--device-read-bps",), "device_read_bps", list, "Read rate limit: DEVICE:RATE (e.g. /dev/sda:1mb).", panel=LIMITS),
    Flag(("--device-write-bps",), "device_write_bps", list, "Write rate limit: DEVICE:RATE.", panel=LIMITS),
    Flag(("--pull",), "pull", help="Pull the image: missing (if not in the store), always, never.", default="missing"),
    Flag(("--platform",), "platform", help="Platform of the image to pull: os/arch or os/arch/variant."),
)

IMAGE_ARGS = (Arg("image", "IMAGE", "Image name, name:tag or ID."), Arg("command", "COMMAND", "Command and arguments (default: the image's).", required=False, many=True))


def run(image: str, command: list[str], **flags: Any) -> int:
    """Run in the foreground: stdio passed through, the container's exit code returned.
    Detached (-d): the container's id printed once it runs."""
    from pyc.engine import Engine
    from pyc.runtime.spec import RunOptions

    opts = RunOptions(command, **flags, progress=True)
    if opts.detach:
        print(Engine().run_detached(image, opts).id)
        return 0
    if opts.restart or opts.log_opts:
        from pyc.errors import InvalidArgument

        raise InvalidArgument("--restart and --log-opt are for detached containers (-d)")
    sys.stdout.flush()
    return Engine().run(image, opts, stdin=0 if opts.interactive else None, stdout=1, stderr=2).status


def create(image: str, command: list[str], **flags: Any) -> None:
    from pyc.engine import Engine
    from pyc.runtime.spec import RunOptions

    print(Engine().create(image, RunOptions(command, **flags, progress=True)).id)


COMMANDS = [
    Command(("container", "run"), "Run a command in a new container.", run, IMAGE_ARGS, RUN_FLAGS, aliases=(("run",),), interspersed=False),
    Command(("container", "create"), "Create a container to start later (pyc start).", create, IMAGE_ARGS, RUN_FLAGS, aliases=(("create",),), interspersed=False),
]
