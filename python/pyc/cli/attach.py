"""`pyc attach`, and what `pyc start -a` does for a container with a terminal."""

from __future__ import annotations

import typer

from pyc.engine import Engine


def attach_and_wait(engine: Engine, ref: str, detach_keys: str) -> int:
    """Attach; the container's exit code once it ends, 0 after the detach keys."""
    from pyc import attach
    from pyc.errors import ContainerNotFound

    keys = attach.parse_detach_keys(detach_keys)
    try:
        c = engine.container(ref)
    except ContainerNotFound as e:
        raise attach.AttachError(str(e)) from None
    with attach.connect(c) as s:
        if attach.session(s, keys):
            return 0
    return engine.wait(c.id)


def register(app: typer.Typer, container_app: typer.Typer) -> None:
    def attach(
        ref: str = typer.Argument(..., metavar="CONTAINER"),
        detach_keys: str = typer.Option("ctrl-p,ctrl-q", "--detach-keys", help="Keys that detach, leaving the container running."),
    ) -> None:
        """Attach your terminal to a running container started with -d -t."""
        raise typer.Exit(attach_and_wait(Engine(), ref, detach_keys))

    for a in (app, container_app):
        a.command("attach")(attach)
