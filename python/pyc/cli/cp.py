"""`pyc cp` (also `container cp`): files between a container and the host, or a tar stream."""

from __future__ import annotations

from pyc.cli.spec import Arg, Command, Flag


def cp(source: str, dest: str, archive: bool, follow_link: bool, quiet: bool) -> None:
    import sys

    from pyc.engine import Engine
    from pyc.errors import InvalidArgument

    if dest == "-" and sys.stdout.isatty():
        raise InvalidArgument("refusing to write a tar to a terminal: redirect it")
    sys.stdout.flush()
    Engine().copy(source, dest, archive=archive, follow=follow_link)


COMMANDS = [
    Command(
        ("container", "cp"),
        "Copy files between a container and the host: CONTAINER:SRC DEST, SRC CONTAINER:DEST; - is a tar on stdin or stdout.",
        cp,
        (Arg("source", "SRC", "CONTAINER:PATH, a host path, or - (a tar on stdin)."), Arg("dest", "DEST", "CONTAINER:PATH, a host path, or - (a tar to stdout).")),
        (
            Flag(("-a", "--archive"), "archive", bool, "Keep owners (uid/gid) as they are."),
            Flag(("-L", "--follow-link"), "follow_link", bool, "Follow a symlink that is the source."),
            Flag(("-q", "--quiet"), "quiet", bool, "Print nothing (pyc prints nothing anyway)."),
        ),
        aliases=(("cp",),),
    ),
]
