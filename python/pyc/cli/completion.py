"""pyc completion bash|zsh|fish: the shell's completion script, click's own. The script calls
pyc back with _PYC_COMPLETE set (pyc.cli.main then hands the line to click, off the fast path):
command and flag names, and the names of containers and images where a command takes them."""

from __future__ import annotations

from pyc.cli.spec import Arg, Command

SHELLS = ("bash", "zsh", "fish")


def completion(shell: str) -> None:
    from click.shell_completion import get_completion_class

    from pyc.cli.clickapp import build
    from pyc.cli.main import commands
    from pyc.errors import InvalidArgument

    cls = get_completion_class(shell) if shell in SHELLS else None
    if cls is None:
        raise InvalidArgument(f"unknown shell {shell!r}: bash, zsh or fish")
    print(cls(build(commands()), {}, "pyc", "_PYC_COMPLETE").source())


COMMANDS = [Command(("completion",), "Print the shell completion script (bash, zsh or fish).", completion, (Arg("shell", "SHELL", "bash, zsh or fish."),))]
