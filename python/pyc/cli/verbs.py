"""stop, kill, rm, wait: the bodies the typer commands run, and a small parser that runs them
without importing typer (a third of the time of a `pyc stop` otherwise), as run.py does for
`pyc run`. tests/unit/test_cli_verbs.py keeps the flags equal to typer's."""

from __future__ import annotations

import sys

from pyc.errors import PycError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from pyc.engine import Engine

# verb -> flag -> (parameter, takes a value)
VERBS: dict[str, dict[str, tuple[str, bool]]] = {
    "stop": {"-t": ("time", True), "--time": ("time", True)},
    "kill": {"-s": ("signal", True), "--signal": ("signal", True)},
    "rm": {"-f": ("force", False), "--force": ("force", False), "-v": ("volumes", False), "--volumes": ("volumes", False)},
    "wait": {},
}


def split_flags(flags: Mapping[str, tuple[str, bool | str]], args: list[str]) -> tuple[list[str], dict[str, Any]] | None:
    """(arguments, options) of a command line, by a table of flag -> (parameter, takes a value:
    False, True, or "many" for a repeatable option); None for what the typer command should
    answer (help, an unknown flag, a flag without its value)."""
    positional: list[str] = []
    opts: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-" or not arg.startswith("-"):
            positional.append(arg)
        else:
            flag, eq, value = arg.partition("=")
            spec = flags.get(flag)
            if spec is None:
                return None
            name, takes = spec
            if not takes:
                if eq:
                    return None
                opts[name] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(args):
                        return None
                    value = args[i]
                if takes == "many":
                    opts.setdefault(name, []).append(value)
                else:
                    opts[name] = value
        i += 1
    return positional, opts


def fast_parse(verb: str, args: list[str]) -> tuple[list[str], dict[str, str | bool]] | None:
    """(refs, options), or None for anything the typer command should answer (help, errors)."""
    parsed = split_flags(VERBS[verb], args)
    if parsed is None:
        return None
    refs, opts = parsed
    if not refs or ("time" in opts and not str(opts["time"]).lstrip("-").isdigit()):
        return None
    return refs, opts


def _each(refs: list[str], act: Callable[[str], object], echo: bool = True) -> int:
    """docker's way: go on past a failure, one line for it, exit 1 if any failed."""
    failed = 0
    for ref in refs:
        try:
            out = act(ref)
            print(ref if echo else out, flush=True)
        except PycError as e:
            sys.stderr.write(f"pyc: {e}\n")
            failed = 1
    return failed


def stop(engine: Engine, refs: list[str], time: int | None) -> int:
    from pyc.lifecycle import NotRunning

    def one(ref: str) -> None:
        try:
            engine.stop(ref, time)
        except NotRunning as e:
            # docker's answer (exit 0, nothing done), said on one line.
            sys.stderr.write(f"pyc: {e}: nothing to stop\n")

    return _each(refs, one)


def kill(engine: Engine, refs: list[str], signal: str) -> int:
    return _each(refs, lambda ref: engine.kill(ref, signal))


def rm(engine: Engine, refs: list[str], force: bool) -> int:
    return _each(refs, lambda ref: engine.remove_container(ref, force))


def wait(engine: Engine, refs: list[str]) -> int:
    return _each(refs, engine.wait, echo=False)


def run_fast(verb: str, refs: list[str], opts: dict[str, str | bool]) -> int:
    from pyc.engine import Engine

    engine = Engine()
    if verb == "stop":
        return stop(engine, refs, int(opts["time"]) if "time" in opts else None)
    if verb == "kill":
        return kill(engine, refs, str(opts.get("signal", "KILL")))
    if verb == "rm":
        return rm(engine, refs, bool(opts.get("force")))
    return wait(engine, refs)
