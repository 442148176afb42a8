"""Image references as users write them: `busybox`, `busybox:1.36`, `localhost/tools:v2`,
`registry.example:5000/team/app:v1`, `quay.io/x/y@sha256:<hex>`.

Local images (import, load, tag, the built-in busybox and debian) keep the name as given, with
`:latest` when no tag is; a pulled image is named fully qualified (`docker.io/library/busybox:1.36`,
`localhost:5000/app:v1`), and by digest too (`localhost:5000/app@sha256:...`: its RepoDigest)."""

from pyc.errors import InvalidArgument

# docker's grammar (distribution/reference), matched whole and in ASCII.
_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
NAME_MAX = 255  # docker's limit for the name with its host; a tag has at most 128
DOCKER_HUB = "docker.io"


def _shown(ref: str) -> str:
    return repr(ref if len(ref) <= 80 else ref[:80] + "…")


def with_tag(ref: str) -> str:
    """`name:tag`, `latest` when no tag is given (a reference by digest stays as it is). Cheap:
    the run path looks images up with it."""
    return ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"


class Reference:
    """A parsed reference: `domain` (None when the name has none), `path`, `tag`, `digest`."""

    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str | None, path: str, tag: str | None = None, digest: str | None = None) -> None:
        self.domain, self.path, self.tag, self.digest = domain, path, tag, digest

    @property
    def name(self) -> str:
        """The repository: `domain/path`, or `path` alone for an unqualified name."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __repr__(self) -> str:
        return f"Reference({str(self)!r})"

    def qualified(self, domain: str) -> "Reference":
        """This name in `domain` (docker.io's one-word names are under library/)."""
        path = f"library/{self.path}" if domain == DOCKER_HUB and "/" not in self.path else self.path
        return Reference(domain, path, self.tag, self.digest)

    def pinned(self) -> str:
        """What the store names a pulled image by: `name@digest` when pulled by digest, else
        `name:tag` (`latest` if none)."""
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag or 'latest'}"


def parse(ref: str) -> Reference:
    """`[domain[:port]/]path[:tag][@digest]`, checked: InvalidArgument when malformed. The domain
    is the first component when it has a `.` or a `:` or is `localhost` (docker's rule)."""
    import re  # not on the run path

    rest, at, digest = ref.partition("@")
    if at and not re.fullmatch(_DIGEST, digest):
        raise InvalidArgument(f"invalid reference format: {_shown(ref)} (a digest is sha256: and 64 lowercase hex digits)")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
        if not re.fullmatch(_TAG, tag):
            raise InvalidArgument(f"invalid reference format: {_shown(ref)} (a tag is at most 128 of A-Z a-z 0-9 _ . -, not starting with . or -)")
    if len(name) > NAME_MAX:
        raise InvalidArgument(f"invalid reference format: the name is longer than {NAME_MAX} characters ({len(name)})")
    domain: str | None = None
    first, slash, path = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not re.fullmatch(_HOST, first):
            raise InvalidArgument(f"invalid reference format: {_shown(ref)}")
        domain = first
    else:
        path = name
    if not re.fullmatch(_NAME, path):
        raise InvalidArgument(f"invalid reference format: {_shown(ref)} (names are lowercase: a-z 0-9 . _ - /)")
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return Reference(domain, path, tag, digest or None)


def normalize(ref: str) -> str:
    """with_tag(ref), checked: raises InvalidArgument when the name is malformed. A reference by
    digest stays one (`name@sha256:...`)."""
    r = parse(ref)
    return f"{r.name}@{r.digest}" if r.digest else f"{r.name}:{r.tag or 'latest'}"


def familiar(name: str) -> str:
    """A repository as docker shows it: docker.io's without `docker.io/` and `library/`."""
    if name.startswith(DOCKER_HUB + "/"):
        name = name[len(DOCKER_HUB) + 1 :]
        return name.removeprefix("library/") if name.count("/") == 1 and name.startswith("library/") else name
    return name


def familiar_ref(ref: str) -> str:
    """A reference as docker shows it (`familiar` applied to its repository)."""
    name, sep, rest = ref.partition("@") if "@" in ref else ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
    return familiar(name) + sep + rest
