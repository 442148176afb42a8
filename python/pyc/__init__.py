"""pyc: a daemonless container engine. The engine API; the CLI (`pyc ...`) is a client of it."""

from pyc.engine import Engine, RunResult
from pyc.errors import BadImage, CommandFailed, Conflict, ContainerNotFound, ImageNotFound, InvalidArgument, Kind, NotRunning, PycError
from pyc.runtime.spec import RunOptions

__all__ = [
    "BadImage",
    "CommandFailed",
    "Conflict",
    "ContainerNotFound",
    "Engine",
    "ImageNotFound",
    "InvalidArgument",
    "Kind",
    "NotRunning",
    "PycError",
    "RunOptions",
    "RunResult",
]
