"""pull, push, login, logout (also `image pull`, `image push`): images to and from registries."""

from __future__ import annotations

import sys

from pyc.cli.spec import Arg, Command, Flag
from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# podman's and skopeo's ways to reach a registry, on every verb that does.
REGISTRY_FLAGS = (
    Flag(("--tls-verify",), "tls_verify", help="true: require verified TLS; false: accept any certificate and plain HTTP (default: registries.conf)."),
    Flag(("--cert-dir",), "cert_dir", help="Directory of CA (*.crt) and client certificate (*.cert, *.key) files."),
    Flag(("--authfile",), "authfile", help="Credentials file (default: $REGISTRY_AUTH_FILE, else podman's auth.json)."),
)
CREDS = Flag(("--creds",), "creds", help="Credentials USER[:PASSWORD] for this command.")
QUIET = Flag(("-q", "--quiet"), "quiet", bool, "Print nothing but the image's name.")


def _tls(value: str | None) -> bool | None:
    if value is None:
        return None
    if value in ("true", "1", "t", "True", "TRUE"):
        return True
    if value in ("false", "0", "f", "False", "FALSE"):
        return False
    raise InvalidArgument(f"invalid --tls-verify {value!r}: true or false")


def pull(image: str, quiet: bool, platform: str | None, tls_verify: str | None, creds: str | None, **flags: Any) -> None:
    from pyc import progress
    from pyc.engine import Engine
    from pyc.registry.options import PullOptions
    from pyc.store.refs import familiar_ref

    options = PullOptions(tls_verify=_tls(tls_verify), creds=creds, platform=platform, **flags)
    with progress.bars():
        r = Engine().pull(image, options)
    name = familiar_ref(r.name)
    if not quiet:
        print(f"Digest: {r.digest}")
        print(f"Status: {'Downloaded newer image' if r.downloaded else 'Image is up to date'} for {name}")
    print(r.name)


def push(image: str, destination: str | None, quiet: bool, tls_verify: str | None, creds: str | None, compression_format: str, compression_level: int | None, **flags: Any) -> None:
    from pyc import progress
    from pyc.engine import Engine
    from pyc.registry.options import PushOptions

    options = PushOptions(tls_verify=_tls(tls_verify), creds=creds, compression_format=compression_format, compression_level=compression_level, **flags)
    with progress.bars():
        r = Engine().push(image, destination, options)
    if not quiet:
        print(f"{r.name}: digest: {r.digest} ({r.layers_sent} layers sent, {r.layers_skipped} already there)")


def login(registry: str, username: str | None, password: str | None, password_stdin: bool, tls_verify: str | None, **flags: Any) -> None:
    from pyc.engine import Engine
    from pyc.registry.options import RegistryOptions

    if password is not None and password_stdin:
        raise InvalidArgument("--password and --password-stdin are exclusive")
    if password_stdin:
        if not username:
            raise InvalidArgument("--password-stdin needs the username (-u)")
        password = sys.stdin.read().rstrip("\r\n")
    elif password is not None:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if username is None or password is None:
        if not sys.stdin.isatty():
            raise InvalidArgument("no credentials: give -u and --password-stdin (stdin is not a terminal to ask on)")
        import getpass

        if username is None:
            sys.stderr.write("Username: ")
            sys.stderr.flush()
            username = sys.stdin.readline().strip()
        if password is None:
            password = getpass.getpass("Password: ")
    Engine().login(registry, username, password, RegistryOptions(tls_verify=_tls(tls_verify), **flags))
    print("Login Succeeded")


def logout(registry: str | None, all: bool, authfile: str | None) -> None:
    from pyc.engine import Engine
    from pyc.registry.options import RegistryOptions

    if registry is None and not all:
        raise InvalidArgument("name the registry to log out of, or --all")
    if registry is not None and all:
        raise InvalidArgument("a registry or --all, not both")
    gone = Engine().logout(registry, RegistryOptions(authfile=authfile))
    if registry is None:
        print("Removed login credentials for all registries")
    elif gone:
        print(f"Removing login credentials for {gone[0]}")
    else:
        print(f"Not logged in to {registry}")


COMMANDS = [
    Command(
        ("image", "pull"),
        "Pull an image from a registry.",
        pull,
        (Arg("image", "NAME[:TAG|@DIGEST]", "The image: registry/repository, or a short name registries.conf resolves."),),
        (QUIET, Flag(("--platform",), "platform", help="os/arch or os/arch/variant to pick from a multi-platform image (default: this machine's)."), *REGISTRY_FLAGS, CREDS),
        aliases=(("pull",),),
    ),
    Command(
        ("image", "push"),
        "Push an image to a registry.",
        push,
        (Arg("image", "IMAGE", "The image: NAME[:TAG] or ID."), Arg("destination", "DESTINATION", "registry/repository[:tag] (default: the image's name).", required=False)),
        (
            QUIET,
            Flag(("--compression-format",), "compression_format", help="gzip or zstd.", default="gzip"),
            Flag(("--compression-level",), "compression_level", int, "gzip 0-9 (default 6), zstd 1-19 (default 3)."),
            *REGISTRY_FLAGS,
            CREDS,
        ),
        aliases=(("push",),),
    ),
    Command(
        ("login",),
        "Log in to a registry: check the credentials and keep them (podman's auth.json).",
        login,
        (Arg("registry", "REGISTRY", "host[:port]"),),
        (
            Flag(("-u", "--username"), "username", help="Username."),
            Flag(("-p", "--password"), "password", help="Password (insecure: prefer --password-stdin)."),
            Flag(("--password-stdin",), "password_stdin", bool, "Read the password from stdin."),
            *REGISTRY_FLAGS,
        ),
    ),
    Command(
        ("logout",),
        "Log out of a registry: forget its credentials.",
        logout,
        (Arg("registry", "REGISTRY", "host[:port]", required=False),),
        (Flag(("-a", "--all"), "all", bool, "Forget the credentials of every registry."), REGISTRY_FLAGS[2]),
    ),
]
