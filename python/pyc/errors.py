"""Errors a user can act on, and the one table of their exit codes.

Every error pyc raises to its callers is a `PycError` with a `kind` (a `Kind`: not found,
invalid argument, conflict, ...) and, where a system call failed, its `errno`. The classes below
(`ImageNotFound`, `InvalidArgument`, ...) are PycErrors of a fixed kind, for `raise` and `except`
to read well. The engine turns every pyc_core exception and OSError into a PycError at one place
(`convert`, applied to every public method of `pyc.Engine`), so API users see nothing else.

`exit_code(command, kind)` is docker's exit code for a failed command, as docker's CLI gives
it; only the CLI's boundary (pyc/cli/main.py) calls it:

| command                                | usage | flag | command not found | not executable | start failed | any other |
| -------------------------------------- | ----- | ---- | ----------------- | -------------- | ------------ | --------- |
| container run, create, start -a        | 1     | 125  | 127               | 126            | 125          | 125       |
| container exec                         | 1     | 125  | 127               | 126            | 126          | 1         |
| every other command                    | 1     | 125  | 1                 | 1              | 1            | 1         |

"usage" is a command line with too few or too many arguments, or an unknown command (docker's
cobra errors: exit 1); "flag" an unknown flag, one without its value or with a value of the
wrong type (docker's FlagErrorFunc: 125 for every command). A missing container, image, network
or volume, a bad archive, a registry error: 1, but for run, create and start -a, where pyc
failing is 125. The Rust core's `Error::exit_code()` gives the run column (pyc_core.ERROR_KINDS
carries it; tests/unit/test_errors.py checks the two agree)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import ClassVar, TypeVar

    C = TypeVar("C", bound=type)


class Kind:
    """What kind of failure an error is. The members are the only instances; compare with `is`.
    Not an enum.Enum: `enum` costs milliseconds on the run path, which imports this module."""

    __slots__ = ("value",)

    NOT_FOUND: ClassVar[Kind]
    INVALID_ARGUMENT: ClassVar[Kind]
    CONFLICT: ClassVar[Kind]
    NOT_RUNNING: ClassVar[Kind]
    BAD_INPUT: ClassVar[Kind]
    COMMAND_NOT_FOUND: ClassVar[Kind]
    COMMAND_NOT_EXECUTABLE: ClassVar[Kind]
    START_FAILED: ClassVar[Kind]
    SYSTEM: ClassVar[Kind]
    USAGE: ClassVar[Kind]
    FLAG: ClassVar[Kind]
    REGISTRY: ClassVar[Kind]
    AUTH: ClassVar[Kind]

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Kind.{self.value.upper().replace(' ', '_')}"

    @staticmethod
    def of(value: str) -> Kind:
        """The kind of this name (as pyc_core exceptions carry it); SYSTEM for a name it does not know."""
        return _BY_VALUE.get(value, Kind.SYSTEM)


Kind.NOT_FOUND = Kind("not found")  # no such container, image, network, volume
Kind.INVALID_ARGUMENT = Kind("invalid argument")  # a bad value: a name, a reference, a flag's value
Kind.CONFLICT = Kind("conflict")  # a name in use, an image still used, a container running
Kind.NOT_RUNNING = Kind("not running")  # stop, kill, exec, stats of a container that is not running
Kind.BAD_INPUT = Kind("bad input")  # a malformed archive, tar, layer or image
Kind.COMMAND_NOT_FOUND = Kind("command not found")  # the container's command does not exist
Kind.COMMAND_NOT_EXECUTABLE = Kind("command not executable")  # it exists but cannot be run
Kind.START_FAILED = Kind("start failed")  # the container or exec process failed before its command
Kind.SYSTEM = Kind("system")  # a system call, I/O, permission: the errno says which
Kind.USAGE = Kind("usage")  # too few or too many arguments, an unknown command
Kind.FLAG = Kind("flag")  # an unknown flag, a flag without its value or with a bad one
Kind.REGISTRY = Kind("registry")  # a registry refused or failed (pull, push)
Kind.AUTH = Kind("auth")  # a registry wants credentials we do not have
_BY_VALUE = {k.value: k for k in vars(Kind).values() if isinstance(k, Kind)}

# The commands that fail as a container start does (docker: 125 when pyc fails, 126, 127).
STARTS = ("container run", "container create", "container start -a")


def exit_code(command: str, kind: Kind) -> int:
    """docker's exit code when `command` (its canonical name: `container run`, `image rm`,
    `container start -a`) fails with an error of `kind`."""
    if kind is Kind.USAGE:
        return 1
    if kind is Kind.FLAG:
        return 125
    starts = command in STARTS
    if starts or command == "container exec":
        if kind is Kind.COMMAND_NOT_FOUND:
            return 127
        if kind is Kind.COMMAND_NOT_EXECUTABLE:
            return 126
        if kind is Kind.START_FAILED:
            return 125 if starts else 126
    return 125 if starts else 1


class PycError(Exception):
    """An error with a `kind` and, where a system call failed, its `errno`."""

    kind: Kind = Kind.SYSTEM

    def __init__(self, message: str, kind: Kind | None = None, errno: int | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.errno = errno


class ImageNotFound(PycError):
    kind = Kind.NOT_FOUND


class ContainerNotFound(PycError):
    kind = Kind.NOT_FOUND


class VolumeNotFound(PycError):
    kind = Kind.NOT_FOUND


class NetworkNotFound(PycError):
    kind = Kind.NOT_FOUND


class InvalidArgument(PycError):
    kind = Kind.INVALID_ARGUMENT


class Conflict(PycError):
    """A name in use, an image still used by a container, a container still running."""

    kind = Kind.CONFLICT


class NotRunning(PycError):
    """stop, kill, exec, stats, update of a container that is not running."""

    kind = Kind.NOT_RUNNING


class BadImage(PycError):
    """A malformed image or archive: unreadable manifest or config, a digest that does not match."""

    kind = Kind.BAD_INPUT


class CommandFailed(PycError):
    """The container's or exec's command could not be started (kind: command not found, not
    executable, or start failed)."""


class Reported(PycError):
    """Failures already said, one line each (a verb on several containers goes on past one):
    only the exit code is left to give. Its kind is the first failure's."""


_COMMAND_KINDS = ("command not found", "command not executable", "start failed")


def from_system(e: BaseException, what: str | None = None) -> PycError:
    """A PycError for a pyc_core exception, an OSError or an sqlite3 error: its words on one line
    (after `what`, the step that failed, when given), its kind and errno; a CommandFailed when a
    command could not be started."""
    if isinstance(e, PycError):
        return e
    if isinstance(e, OSError):
        message = f"{e.filename}: {e.strerror}" if e.filename and e.strerror else e.strerror or str(e)
        kind = "system"
    else:
        message = str(e)
        kind = str(getattr(e, "kind", "system"))
    errno = getattr(e, "errno", None)
    cls = CommandFailed if kind in _COMMAND_KINDS else PycError
    return cls(f"{what}: {message}" if what else message, Kind.of(kind), errno if isinstance(errno, int) else None)


def is_system(e: BaseException) -> bool:
    """Whether `e` is an error of the system under pyc (pyc_core's, an OSError, sqlite3's) that
    becomes a PycError. A broken pipe is not: the reader went away, which is not pyc's failure."""
    import pyc_core

    return isinstance(e, (pyc_core.PycCoreError, OSError)) and not isinstance(e, BrokenPipeError) or type(e).__module__ == "sqlite3"


def _converting(f: Callable[..., object]) -> Callable[..., object]:
    def call(*args: object, **kwargs: object) -> object:
        try:
            return f(*args, **kwargs)
        except Exception as e:
            if not is_system(e):
                raise
            raise from_system(e) from None

    def iterate(*args: object, **kwargs: object) -> object:
        try:
            yield from f(*args, **kwargs)  # type: ignore[misc]
        except Exception as e:
            if not is_system(e):
                raise
            raise from_system(e) from None

    wrapper = iterate if f.__code__.co_flags & 0x20 else call  # CO_GENERATOR
    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = f.__name__, f.__qualname__, f.__doc__
    return wrapper


def convert(cls: C) -> C:
    """Class decorator: every public method raises PycErrors only (pyc_core exceptions and
    OSErrors become PycErrors of their kind, errno kept). The one place where they are converted."""
    for name, attr in list(vars(cls).items()):
        if not name.startswith("_") and getattr(attr, "__code__", None) is not None:
            setattr(cls, name, _converting(attr))
    return cls
