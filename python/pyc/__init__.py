"""pyc: a daemonless container engine. The engine API; the CLI (`pyc ...`) is a client of it."""

from pyc.engine import CommandFailed, Engine, RunResult
from pyc.errors import BadImage, Conflict, ContainerNotFound, ImageNotFound, InvalidArgument, PycError
from pyc.runtime.spec import RunOptions

__all__ = [
    "BadImage",
    "CommandFailed",
    "Conflict",
    "ContainerNotFound",
    "Engine",
    "ImageNotFound",
    "InvalidArgument",
    "PycError",
    "RunOptions",
    "RunResult",
]
