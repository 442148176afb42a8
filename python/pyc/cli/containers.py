"""Container verbs: ps, rm, export, inspect."""

import json
import os
import sys

import typer

from pyc.cli.output import ago, table
from pyc.engine import Engine
from pyc.errors import InvalidArgument, PycError


def _status(state: dict[str, object], status: str) -> str:
    if status == "running":
        return f"Up {ago(str(state.get('StartedAt'))).removesuffix(' ago')}"
    if status == "restarting":
        return f"Restarting ({state.get('ExitCode')}) {ago(str(state.get('FinishedAt') or ''))}".rstrip()
    if status == "exited":
        return f"Exited ({state.get('ExitCode')}) {ago(str(state.get('FinishedAt') or ''))}".rstrip()
    return "Created"


def register(app: typer.Typer, container_app: typer.Typer) -> None:
    def ps(
        all: bool = typer.Option(False, "-a", "--all", help="Show stopped containers too."),
        quiet: bool = typer.Option(False, "-q", "--quiet", help="Only show IDs."),
    ) -> None:
        """List containers."""
        containers = Engine().list_containers(all)
        if quiet:
            print("\n".join(c.id[:12] for c in containers))
            return
        rows = []
        for c in containers:
            cmd = " ".join(c.data.get("Config", {}).get("Cmd") or [])
            cmd = f'"{cmd[:20]}…"' if len(cmd) > 20 else f'"{cmd}"'
            rows.append([c.id[:12], str(c.data.get("Image")), cmd, ago(str(c.data.get("Created"))), _status(c.current_state(), c.status), c.name])
        print(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], rows))

    def rm(refs: list[str] = typer.Argument(...), force: bool = typer.Option(False, "-f", "--force", help="Kill it first if it runs.")) -> None:
        """Remove containers."""
        engine = Engine()
        failed = 0
        for ref in refs:
            try:
                engine.remove_container(ref, force)
                print(ref)
            except PycError as e:
                sys.stderr.write(f"pyc: {e}\n")
                failed = 1
        raise typer.Exit(failed)

    def export(ref: str = typer.Argument(...), output: str | None = typer.Option(None, "-o", "--output", help="Write to a file, not stdout.")) -> None:
        """Write a container's filesystem as a tar."""
        if output is None:
            if sys.stdout.isatty():
                raise InvalidArgument("refusing to write a tar to a terminal: use -o FILE or a redirect")
            Engine().export(ref, 1)
            return
        tmp = f"{output}.tmp-{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            Engine().export(ref, fd)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.rename(tmp, output)

    def inspect(refs: list[str] = typer.Argument(...)) -> None:
        """Show containers as JSON."""
        engine = Engine()
        out = []
        for ref in refs:
            c = engine.container(ref)
            data = dict(c.data)
            state = c.current_state()
            data["State"] = dict(state, Running=state["Status"] == "running")
            out.append(data)
        json.dump(out, sys.stdout, indent=4)
        print()

    app.command("ps", help="List containers.")(ps)
    container_app.command("ls", help="List containers.")(ps)
    app.command("rm", help="Remove containers.")(rm)
    container_app.command("rm", help="Remove containers.")(rm)
    app.command("export", help="Write a container's filesystem as a tar.")(export)
    container_app.command("export", help="Write a container's filesystem as a tar.")(export)
    app.command("inspect", help="Show containers as JSON.")(inspect)
    container_app.command("inspect", help="Show containers as JSON.")(inspect)
