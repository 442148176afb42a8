"""The slow path: click commands built from the command tables, for `--help` and for the
messages of command lines the fast parser (spec.parse) refused. Imported only then."""

from __future__ import annotations

import click

from pyc.cli.spec import Arg, Command

# The help of each noun's group; the groups themselves come from the commands' names.
GROUPS = {"container": "Manage containers.", "image": "Manage images.", "system": "Manage pyc.", "network": "Manage networks."}


def _metavar(a: Arg) -> str:
    shown = f"{a.metavar}..." if a.many else a.metavar
    return shown if a.required else f"[{shown}]"


def _command(cmd: Command, name: str) -> click.Command:
    params: list[click.Parameter] = [click.Argument([a.name], nargs=-1 if a.many else 1, required=a.required, metavar=_metavar(a)) for a in cmd.args]
    for f in cmd.flags:
        decls = [*f.names, f.dest]
        if f.kind is bool:
            params.append(click.Option(decls, is_flag=True, default=False, help=f.help))
        elif f.kind is list:
            params.append(click.Option(decls, multiple=True, help=f.help, metavar=f.metavar))
        else:
            params.append(click.Option(decls, type=int if f.kind is int else str, default=f.default, help=f.help, metavar=f.metavar))

    def callback(**values: object) -> int | None:
        # click gives tuples for repeated options and nargs=-1; the handlers take lists.
        return cmd.handler(**{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})

    settings = {"allow_interspersed_args": cmd.interspersed, "help_option_names": ["--help"]}
    return click.Command(name, params=params, callback=callback, help=cmd.help, context_settings=settings)


def build(commands: list[Command]) -> click.Group:
    """The `pyc` group: every command under each of its names (`ps`, `container ls`, ...)."""
    root = click.Group("pyc", help="pyc: a daemonless container engine.", no_args_is_help=True, context_settings={"help_option_names": ["--help"]})
    groups: dict[str, click.Group] = {}
    for cmd in commands:
        for path in cmd.names:
            parent = root
            if len(path) == 2:
                if path[0] not in groups:
                    groups[path[0]] = click.Group(path[0], help=GROUPS.get(path[0], f"Manage {path[0]}s."), no_args_is_help=True)
                    root.add_command(groups[path[0]])
                parent = groups[path[0]]
            parent.add_command(_command(cmd, path[-1]))
    return root
