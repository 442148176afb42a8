"""Image references as users write them: `busybox`, `busybox:1.36`, `localhost/tools:v2`."""

from pyc.errors import InvalidArgument

_NAME = r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
_HOST = r"^[a-zA-Z0-9.-]+(?::[0-9]+)?$"
_TAG = r"^[\w][\w.-]{0,127}$"


def with_tag(ref: str) -> str:
    """`name:tag`, `latest` when no tag is given. Cheap: the run path looks images up with it."""
    return ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"


def normalize(ref: str) -> str:
    """with_tag(ref), checked: raises InvalidArgument when the name is malformed."""
    import re  # not on the run path

    full = with_tag(ref)
    name, tag = full.rsplit(":", 1)
    host, _, rest = name.partition("/")
    path = name
    if rest and ("." in host or ":" in host or host == "localhost"):
        if not re.match(_HOST, host):
            raise InvalidArgument(f"invalid reference format: {ref!r}")
        path = rest
    if not re.match(_NAME, path) or not re.match(_TAG, tag):
        raise InvalidArgument(f"invalid reference format: {ref!r} (names are lowercase: a-z 0-9 . _ - /)")
    return full
