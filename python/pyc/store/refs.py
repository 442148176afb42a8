"""Image references as users write them: `busybox`, `busybox:1.36`, `localhost/tools:v2`."""

from pyc.errors import InvalidArgument

# docker's grammar (distribution/reference), matched whole and in ASCII.
_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_HOST = r"[a-zA-Z0-9.-]+(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
NAME_MAX = 255  # docker's limit for the name with its host; a tag has at most 128


def _shown(ref: str) -> str:
    return repr(ref if len(ref) <= 80 else ref[:80] + "…")


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
        if not re.fullmatch(_HOST, host):
            raise InvalidArgument(f"invalid reference format: {_shown(ref)}")
        path = rest
    if len(name) > NAME_MAX:
        raise InvalidArgument(f"invalid reference format: the name is longer than {NAME_MAX} characters ({len(name)})")
    if not re.fullmatch(_TAG, tag):
        raise InvalidArgument(f"invalid reference format: {_shown(ref)} (a tag is at most 128 of A-Z a-z 0-9 _ . -, not starting with . or -)")
    if not re.fullmatch(_NAME, path):
        raise InvalidArgument(f"invalid reference format: {_shown(ref)} (names are lowercase: a-z 0-9 . _ - /)")
    return full
