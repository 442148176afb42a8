"""The slow path: the commands of the tables as typer's click classes (TyperGroup, TyperCommand,
TyperOption, TyperArgument), for `--help`, drawn by typer with rich in panels, and for the
messages of command lines the fast parser (spec.parse) refused. Imported only then: typer and
rich cost more to import than a whole `pyc run`."""

from __future__ import annotations

from collections.abc import Callable

import click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from pyc.cli.spec import Arg, Command

# The help of each noun's group; the groups themselves come from the commands' names.
GROUPS = {"container": "Manage containers.", "image": "Manage images.", "system": "Manage pyc."}
# The panels of `pyc --help`: each command under its noun's, the nouns' groups under their own.
PANELS = {"container": "Containers", "image": "Images", "system": "System"}
MANAGEMENT = "Management Commands"


def _metavar(a: Arg) -> str:
    shown = f"{a.metavar}..." if a.many else a.metavar
    return shown if a.required else f"[{shown}]"


def _names(kinds: tuple[str, ...]) -> list[str]:
    """The names completion offers: containers', images', from the store of PYC_ROOT."""
    from pyc.engine import Engine
    from pyc.errors import PycError

    engine, names = Engine(), []
    try:
        if "container" in kinds:
            names += [c.name for c in engine.list_containers(all=True)]
        if "image" in kinds:
            names += [ref.removesuffix(":latest") for img in engine.list_images() for ref in img.refs]
    except PycError:
        pass  # no store yet, or one pyc cannot read: nothing to offer
    return names


# What an argument names, by its metavar: what completion offers for it.
_COMPLETES = {"CONTAINER": ("container",), "IMAGE": ("image",), "SOURCE_IMAGE": ("image",), "NAME": ("container", "image")}


def _completer(a: Arg) -> Callable[[click.Context, click.Parameter, str], list[str]] | None:
    kinds = _COMPLETES.get(a.metavar)
    if kinds is None:
        return None

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        return [n for n in _names(kinds) if n.startswith(incomplete)]

    return complete


def _command(cmd: Command, name: str) -> click.Command:
    # Help text is rich markup to typer, taken as it is (escaping it would import rich on the
    # error path): a test keeps the tables free of what rich reads as a tag, `[a...]`.
    params: list[click.Parameter] = []
    for a in cmd.args:
        arg = TyperArgument(param_decls=[a.name], nargs=-1 if a.many else 1, required=a.required, metavar=_metavar(a), help=a.help, show_default=False)
        # click's completion hook, which TyperArgument's constructor no longer takes (typer
        # wants its own `autocompletion`, of another signature).
        arg._custom_shell_complete = _completer(a)
        params.append(arg)
    for f in cmd.flags:
        decls, text, panel = [*f.names, f.dest], f.help, f.panel
        if f.kind is bool:
            params.append(TyperOption(param_decls=decls, is_flag=True, default=False, help=text, rich_help_panel=panel))
        elif f.kind is list:
            params.append(TyperOption(param_decls=decls, multiple=True, metavar=f.metavar, help=text, rich_help_panel=panel))
        else:
            params.append(TyperOption(param_decls=decls, type=int if f.kind is int else str, default=f.default, metavar=f.metavar, help=text, rich_help_panel=panel))

    def callback(**values: object) -> int | None:
        # click gives tuples for repeated options and nargs=-1; the handlers take lists.
        return cmd.handler(**{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})

    settings = {"allow_interspersed_args": cmd.interspersed, "help_option_names": ["--help"]}
    return TyperCommand(name, params=params, callback=callback, help=cmd.help, context_settings=settings, rich_help_panel=PANELS.get(cmd.path[0]))


def build(commands: list[Command]) -> click.Group:
    """The `pyc` group: every command under each of its names (`ps`, `container ls`, ...)."""
    settings = {"help_option_names": ["--help"]}
    root = TyperGroup(name="pyc", help="pyc: a daemonless container engine.", no_args_is_help=True, context_settings=settings)
    groups: dict[str, click.Group] = {}
    for cmd in commands:
        for path in cmd.names:
            parent: click.Group = root
            if len(path) == 2:
                if path[0] not in groups:
                    groups[path[0]] = TyperGroup(name=path[0], help=GROUPS.get(path[0], f"Manage {path[0]}s."), no_args_is_help=True, rich_help_panel=MANAGEMENT)
                    root.add_command(groups[path[0]])
                parent = groups[path[0]]
            parent.add_command(_command(cmd, path[-1]))
    return root
