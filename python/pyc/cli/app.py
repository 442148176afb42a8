"""The typer app: top-level verbs as docker has them, and the `image` / `container` groups."""

import typer

from pyc.cli import archive, attach, commit, containers, exec, images, lifecycle, limits, run, system

app = typer.Typer(
    name="pyc",
    help="pyc: a daemonless container engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
image_app = typer.Typer(help="Manage images.", no_args_is_help=True)
container_app = typer.Typer(help="Manage containers.", no_args_is_help=True)
app.add_typer(image_app, name="image")
app.add_typer(container_app, name="container")
system_app = typer.Typer(help="Manage pyc.", no_args_is_help=True)
app.add_typer(system_app, name="system")

run.register(app)
run.register(container_app)
images.register(app, image_app)
containers.register(app, container_app)
limits.register(app, container_app)
commit.register(app, image_app, container_app)
archive.register(app, image_app)
system.register(app, image_app, system_app)
exec.register(app, container_app)
lifecycle.register(app, container_app)
attach.register(app, container_app)
