"""`pyc run`: the typer command (help, errors) and the fast parser that handles the same flags
without importing typer. tests/unit/test_cli_run.py keeps the two in step."""

from __future__ import annotations

import sys

from pyc.runtime.spec import RunOptions

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any

    import typer

# flag -> (RunOptions field, takes a value, repeatable)
FLAGS: dict[str, tuple[str, bool, bool]] = {
    "--rm": ("remove", False, False),
    "--init": ("init", False, False),
    "-d": ("detach", False, False),
    "--detach": ("detach", False, False),
    "--restart": ("restart", True, False),
    "--log-opt": ("log_opts", True, True),
    "-i": ("interactive", False, False),
    "--interactive": ("interactive", False, False),
    "-t": ("tty", False, False),
    "--tty": ("tty", False, False),
    "--read-only": ("read_only", False, False),
    "-e": ("env", True, True),
    "--env": ("env", True, True),
    "--env-file": ("env_files", True, True),
    "-w": ("workdir", True, False),
    "--workdir": ("workdir", True, False),
    "-u": ("user", True, False),
    "--user": ("user", True, False),
    "-h": ("hostname", True, False),
    "--hostname": ("hostname", True, False),
    "--name": ("name", True, False),
    "--entrypoint": ("entrypoint", True, False),
    "-v": ("volumes", True, True),
    "--volume": ("volumes", True, True),
    "--tmpfs": ("tmpfs", True, True),
    "-m": ("memory", True, False),
    "--memory": ("memory", True, False),
    "--memory-swap": ("memory_swap", True, False),
    "--memory-reservation": ("memory_reservation", True, False),
    "--cpus": ("cpus", True, False),
    "-c": ("cpu_shares", True, False),
    "--cpu-shares": ("cpu_shares", True, False),
    "--cpuset-cpus": ("cpuset_cpus", True, False),
    "--pids-limit": ("pids_limit", True, False),
    "--blkio-weight": ("blkio_weight", True, False),
    "--device-read-bps": ("device_read_bps", True, True),
    "--device-write-bps": ("device_write_bps", True, True),
}


def fast_parse(args: list[str]) -> tuple[str, RunOptions] | None:
    """(image, options), or None when the line needs the full parser (help, errors, ...)."""
    parsed = parse_flags(args, FLAGS)
    if parsed is None:
        return None
    values, i = parsed
    return args[i], RunOptions(args[i + 1 :], **values)


def parse_flags(args: list[str], flags: dict[str, tuple[str, bool, bool]]) -> tuple[dict[str, Any], int] | None:
    """docker-style flags up to the first positional argument: (field values, index of that
    argument), or None when the line needs the full parser (help, errors, no positional)."""
    values: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        pairs: list[tuple[str, str | None]]
        if arg.startswith("--"):
            flag, eq, inline = arg.partition("=")
            pairs = [(flag, inline if eq else None)]
        elif all(flags.get(f"-{c}", ("", True, False))[1] is False for c in arg[1:]):
            pairs = [(f"-{c}", None) for c in arg[1:]]  # -i, or bundled booleans
        else:
            pairs = [(arg[:2], arg[2:] or None)]  # -eK=V or -e K=V
        for flag, given in pairs:
            spec = flags.get(flag)
            if spec is None:
                return None
            field, takes_value, repeat = spec
            if not takes_value:
                if given is not None:
                    return None
                values[field] = True
                continue
            if given is None:
                i += 1
                if i >= len(args):
                    return None
                given = args[i]
            if repeat:
                values.setdefault(field, []).append(given)
            else:
                values[field] = given
        i += 1
    if i >= len(args):
        return None
    return values, i


def run_container(image: str, opts: RunOptions) -> int:
    """Run in the foreground: stdio passed through, the container's exit code returned.
    Detached (-d): the container's id printed once it runs."""
    from pyc.engine import CommandFailed, Engine

    if opts.detach:
        from pyc.monitor import StartFailed

        try:
            c = Engine().run_detached(image, opts)
        except StartFailed as e:
            sys.stderr.write(f"pyc: {e}\n")
            return e.exit_code
        print(c.id)
        return 0
    if opts.restart or opts.log_opts:
        from pyc.errors import InvalidArgument

        raise InvalidArgument("--restart and --log-opt are for detached containers (-d)")
    try:
        sys.stdout.flush()
        result = Engine().run(image, opts, stdin=0 if opts.interactive else None, stdout=1, stderr=2)
    except CommandFailed as e:
        sys.stderr.write(f"pyc: {e}\n")
        return e.exit_code
    return result.status


def register(app: typer.Typer) -> None:
    _command(app, "run", "Run a command in a new container.", create=False)


def register_create(app: typer.Typer) -> None:
    _command(app, "create", "Create a container to start later (pyc start).", create=True)


def _command(app: typer.Typer, verb: str, help: str, create: bool) -> None:
    import typer

    @app.command(verb, context_settings={"allow_interspersed_args": False}, help=help)
    def run(
        image: str = typer.Argument(..., help="Image name, name:tag or ID."),
        command: list[str] | None = typer.Argument(None, help="Command and arguments (default: the image's)."),
        rm: bool = typer.Option(False, "--rm", help="Remove the container when it exits."),
        init: bool = typer.Option(False, "--init", help="Run a reaper as pid 1 that forwards signals and reaps zombies."),
        detach: bool = typer.Option(False, "-d", "--detach", help="Run in the background; print the container ID."),
        restart: str | None = typer.Option(None, "--restart", help="no, on-failure[:N], always or unless-stopped (with -d)."),
        log_opt: list[str] = typer.Option([], "--log-opt", help="Log options: max-size=SIZE, max-file=N (with -d)."),
        interactive: bool = typer.Option(False, "-i", "--interactive", help="Keep stdin open and pass it in."),
        tty: bool = typer.Option(False, "-t", "--tty", help="Allocate a pseudo-terminal."),
        read_only: bool = typer.Option(False, "--read-only", help="Mount the container's root read-only."),
        env: list[str] = typer.Option([], "-e", "--env", help="Set an environment variable (K=V, or K to pass pyc's)."),
        env_file: list[str] = typer.Option([], "--env-file", help="Read environment variables from a file."),
        workdir: str | None = typer.Option(None, "-w", "--workdir", help="Working directory inside the container."),
        user: str | None = typer.Option(None, "-u", "--user", help="UID[:GID] or user[:group] of the image."),
        hostname: str | None = typer.Option(None, "-h", "--hostname", help="Container host name."),
        name: str | None = typer.Option(None, "--name", help="Assign a name to the container."),
        entrypoint: str | None = typer.Option(None, "--entrypoint", help="Override the image's entrypoint."),
        volume: list[str] = typer.Option([], "-v", "--volume", help="Bind mount HOST:CONTAINER[:ro|rw]."),
        tmpfs: list[str] = typer.Option([], "--tmpfs", help="Mount a tmpfs at PATH[:options]."),
        memory: str | None = typer.Option(None, "-m", "--memory", help="Memory limit (e.g. 64m, 1g)."),
        memory_swap: str | None = typer.Option(None, "--memory-swap", help="Memory plus swap limit; -1: unlimited swap."),
        memory_reservation: str | None = typer.Option(None, "--memory-reservation", help="Soft memory limit."),
        cpus: str | None = typer.Option(None, "--cpus", help="Number of CPUs (e.g. 1.5)."),
        cpu_shares: str | None = typer.Option(None, "-c", "--cpu-shares", help="Relative CPU weight (default 1024)."),
        cpuset_cpus: str | None = typer.Option(None, "--cpuset-cpus", help="CPUs to run on (e.g. 0-2,4)."),
        pids_limit: str | None = typer.Option(None, "--pids-limit", help="Most processes at once (-1: unlimited)."),
        blkio_weight: str | None = typer.Option(None, "--blkio-weight", help="Relative block I/O weight, 10 to 1000."),
        device_read_bps: list[str] = typer.Option([], "--device-read-bps", help="Read rate limit: DEVICE:RATE (e.g. /dev/sda:1mb)."),
        device_write_bps: list[str] = typer.Option([], "--device-write-bps", help="Write rate limit: DEVICE:RATE."),
    ) -> None:
        opts = RunOptions(
            command or [],
            entrypoint=entrypoint,
            env=env,
            env_files=env_file,
            workdir=workdir,
            user=user,
            hostname=hostname,
            name=name,
            read_only=read_only,
            volumes=volume,
            tmpfs=tmpfs,
            interactive=interactive,
            tty=tty,
            remove=rm,
            init=init,
            detach=detach,
            restart=restart,
            log_opts=log_opt,
            memory=memory,
            memory_swap=memory_swap,
            memory_reservation=memory_reservation,
            cpus=cpus,
            cpu_shares=cpu_shares,
            cpuset_cpus=cpuset_cpus,
            pids_limit=pids_limit,
            blkio_weight=blkio_weight,
            device_read_bps=device_read_bps,
            device_write_bps=device_write_bps,
        )
        if create:
            from pyc.engine import Engine

            print(Engine().create(image, opts).id)
            return
        raise typer.Exit(run_container(image, opts))
