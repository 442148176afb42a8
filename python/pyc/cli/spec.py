"""One declaration per command: its names, arguments and flags (`Command`, `Arg`, `Flag`), from
which both ways of reading a command line are made:

- `parse`, the fast path: docker's syntax without importing click (bundled short booleans `-it`,
  `-eK=V`, `-e K=V`, `--k=v`, `--k v`, `--flag=false`, `--`, repeatable flags, options that
  stop at the first positional for run/create/exec). It reads every valid line; it returns None
  for what it leaves to click: `--help`, an unknown flag, a flag without its value, a bad number,
  too few or too many arguments.
- `pyc.cli.clickapp`, the slow path: click commands built from the same tables, for help and for
  the error messages of lines the fast path refused.

A command's handler is called with one keyword argument per `Arg.name` and per `Flag.dest`, the
flags' defaults filled in; it returns the exit code (None: 0). Handlers live beside their tables
(one module per noun or verb group, listed in `pyc.cli.main.MODULES`) and import what they need
inside, so that finding a command costs no more than reading its table."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from collections.abc import Callable

    Value = bool | str | int | list[str] | None
    Handler = Callable[..., int | None]


class Flag:
    """An option: `names` as typed (`-e`, `--env`), `dest` the handler's keyword, `kind` one of
    bool, str, int or list (a repeatable str), `default` None for str and int unless given;
    `panel` the box of `--help` it is shown in (None: Options)."""

    __slots__ = ("names", "dest", "kind", "help", "metavar", "default", "panel")

    def __init__(
        self, names: tuple[str, ...], dest: str, kind: type = str, help: str = "", metavar: str | None = None, default: str | int | None = None, panel: str | None = None
    ) -> None:
        self.names = names
        self.dest = dest
        self.kind = kind
        self.help = help
        self.metavar = metavar
        self.default = default
        self.panel = panel

    def initial(self) -> Value:
        if self.kind is bool:
            return False
        if self.kind is list:
            return []
        return self.default


class Arg:
    """A positional argument; `many` takes the rest (a list, at least one when `required`)."""

    __slots__ = ("name", "metavar", "help", "required", "many")

    def __init__(self, name: str, metavar: str, help: str = "", required: bool = True, many: bool = False) -> None:
        self.name = name
        self.metavar = metavar
        self.help = help
        self.required = required
        self.many = many


class Command:
    """`path` is the canonical name (`("container", "ls")`); `aliases` are other full names
    (`("ps",)`, `("container", "ps")`). `interspersed=False`: options end at the first
    positional argument (docker's run, create, exec: the rest is the container's command)."""

    __slots__ = ("path", "aliases", "help", "args", "flags", "handler", "interspersed", "_by_name")

    def __init__(
        self,
        path: tuple[str, ...],
        help: str,
        handler: Handler,
        args: tuple[Arg, ...] = (),
        flags: tuple[Flag, ...] = (),
        aliases: tuple[tuple[str, ...], ...] = (),
        interspersed: bool = True,
    ) -> None:
        self.path = path
        self.aliases = aliases
        self.help = help
        self.args = args
        self.flags = flags
        self.handler = handler
        self.interspersed = interspersed
        self._by_name: dict[str, Flag] | None = None

    @property
    def name(self) -> str:
        """The canonical name as words: `container ls`; the key of the exit-code table."""
        return " ".join(self.path)

    @property
    def names(self) -> tuple[tuple[str, ...], ...]:
        return (self.path, *self.aliases)

    def flag(self, name: str) -> Flag | None:
        if self._by_name is None:
            self._by_name = {n: f for f in self.flags for n in f.names}
        return self._by_name.get(name)


_TRUE = ("true", "1", "t", "True", "TRUE", "T")
_FALSE = ("false", "0", "f", "False", "FALSE", "F")


def _set(values: dict[str, Value], f: Flag, value: str) -> bool:
    """Store one value of a value-taking flag; False when it does not parse."""
    if f.kind is list:
        given = values[f.dest]
        assert isinstance(given, list)
        given.append(value)
    elif f.kind is int:
        digits = value[1:] if value[:1] in "+-" else value
        if not digits.isdigit():
            return False
        values[f.dest] = int(value)
    else:
        values[f.dest] = value
    return True


def parse(cmd: Command, argv: list[str]) -> dict[str, Value] | None:
    """The handler's keyword arguments for `argv` (the words after the command's name), or None
    for a line click should answer."""
    values: dict[str, Value] = {f.dest: f.initial() for f in cmd.flags}
    positional: list[str] = []
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if arg == "--":
            positional += argv[i:]
            break
        if arg[:1] != "-" or arg == "-":
            positional.append(arg)
            if not cmd.interspersed:
                positional += argv[i:]
                break
            continue
        if arg[:2] == "--":
            name, eq, value = arg.partition("=")
            f = cmd.flag(name)
            if f is None:
                return None
            if f.kind is bool:
                # pflag's --flag=false, as docker users write --sig-proxy=false
                if eq and value not in _TRUE and value not in _FALSE:
                    return None
                values[f.dest] = not eq or value in _TRUE
                continue
            if not eq:
                if i >= n:
                    return None
                value = argv[i]
                i += 1
            if not _set(values, f, value):
                return None
            continue
        # -abc: booleans bundled, the last one may take a value (-e K=V, -eK=V, -e=K=V, -ie K=V)
        j = 1
        while j < len(arg):
            f = cmd.flag("-" + arg[j])
            j += 1
            if f is None:
                return None
            if f.kind is bool:
                values[f.dest] = True
                continue
            value = arg[j:]
            if len(value) > 1 and value[0] == "=":
                value = value[1:]
            elif not value:
                if i >= n:
                    return None
                value = argv[i]
                i += 1
            if not _set(values, f, value):
                return None
            break
    return _assign(cmd, positional, values)


def _assign(cmd: Command, positional: list[str], values: dict[str, Value]) -> dict[str, Value] | None:
    """Positional words to the arguments in order; None when there are too few or too many."""
    k = 0
    for a in cmd.args:
        if a.many:
            rest = positional[k:]
            if a.required and not rest:
                return None
            values[a.name] = rest
            k = len(positional)
        elif k < len(positional):
            values[a.name] = positional[k]
            k += 1
        elif a.required:
            return None
        else:
            values[a.name] = None
    return values if k == len(positional) else None


def find(commands: list[Command], argv: list[str]) -> tuple[Command, int] | None:
    """The command whose longest name starts `argv`, and that name's length."""
    best: tuple[Command, int] | None = None
    for cmd in commands:
        for name in cmd.names:
            if tuple(argv[: len(name)]) == name and (best is None or len(name) > best[1]):
                best = (cmd, len(name))
    return best
