"""Errors a user can act on. The CLI prints their message on one line and exits with
`exit_code` (125 as docker: pyc itself failed)."""


class PycError(Exception):
    exit_code = 125


class ImageNotFound(PycError):
    pass


class ContainerNotFound(PycError):
    pass


class InvalidArgument(PycError):
    pass


class Conflict(PycError):
    """A name in use, an image still used by a container, a container still running."""


class BadImage(PycError):
    """A malformed image: unreadable manifest or config, a digest that does not match."""
