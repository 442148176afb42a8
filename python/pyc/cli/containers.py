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
        filter: list[str] = typer.Option([], "-f", "--filter", help="status=..., name=..., ancestor=... (repeatable)."),
        format: str | None = typer.Option(None, "--format", help="json, or a Go template such as '{{.Names}}'."),
    ) -> None:
        """List containers."""
        from pyc.cli.ps_filter import matches, parse_filters

        filters = parse_filters(filter)
        # A status filter asks about stopped containers too, as in docker.
        containers = [c for c in Engine().list_containers(all or "status" in filters) if matches(c, filters)]
        if quiet:
            print("\n".join(c.id[:12] for c in containers))
            return
        rows = []
        for c in containers:
            cmd = " ".join(c.data.get("Config", {}).get("Cmd") or [])
            created = str(c.data.get("Created"))
            status = _status(c.current_state(), c.status)
            rows.append({"ID": c.id[:12], "Image": str(c.data.get("Image")), "Command": cmd, "CreatedAt": created, "RunningFor": ago(created), "Status": status, "State": c.status, "Names": c.name})
        if format is not None:
            from pyc.cli.template import render

            for row in rows:
                print(json.dumps(row) if format == "json" else render(format, row))
            return
        short = [[r["ID"], r["Image"], f'"{r["Command"][:20]}…"' if len(r["Command"]) > 20 else f'"{r["Command"]}"', r["RunningFor"], r["Status"], r["Names"]] for r in rows]
        print(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], short))

    def rm(
        refs: list[str] = typer.Argument(...),
        force: bool = typer.Option(False, "-f", "--force", help="Kill it first if it runs."),
        volumes: bool = typer.Option(False, "-v", "--volumes", help="Also anonymous volumes (pyc makes none)."),
    ) -> None:
        """Remove containers."""
        from pyc.cli import verbs

        raise typer.Exit(verbs.rm(Engine(), refs, force))

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

    def inspect(refs: list[str] = typer.Argument(...), format: str | None = typer.Option(None, "-f", "--format", help="A Go template, e.g. '{{.State.Status}}'.")) -> None:
        """Show containers as JSON."""
        from pyc.inspect import document

        engine = Engine()
        out = [document(engine.container(ref)) for ref in refs]
        if format is not None:
            from pyc.cli.template import render

            print("\n".join(render(format, d) for d in out))
            return
        json.dump(out, sys.stdout, indent=4)
        print()

    def rename(old: str = typer.Argument(...), new: str = typer.Argument(...)) -> None:
        """Rename a container."""
        from pyc.lifecycle import rename as rename_container

        engine = Engine()
        rename_container(engine.containers, engine.container(old), new)

    def prune(force: bool = typer.Option(False, "-f", "--force", help="Do not prompt (pyc never prompts).")) -> None:
        """Remove all stopped containers."""
        engine = Engine()
        print("Deleted Containers:")
        for c in engine.list_containers(all=True):
            if c.status in ("exited", "created"):
                try:
                    engine.remove_container(c.id)
                    print(c.id)
                except PycError as e:
                    sys.stderr.write(f"pyc: {e}\n")

    app.command("rename", help="Rename a container.")(rename)
    container_app.command("rename", help="Rename a container.")(rename)
    container_app.command("prune", help="Remove all stopped containers.")(prune)
    app.command("ps", help="List containers.")(ps)
    container_app.command("ls", help="List containers.")(ps)
    app.command("rm", help="Remove containers.")(rm)
    container_app.command("rm", help="Remove containers.")(rm)
    app.command("export", help="Write a container's filesystem as a tar.")(export)
    container_app.command("export", help="Write a container's filesystem as a tar.")(export)
    app.command("inspect", help="Show containers as JSON.")(inspect)
    container_app.command("inspect", help="Show containers as JSON.")(inspect)
