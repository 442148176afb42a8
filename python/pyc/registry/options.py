"""What pull, push, login and logout take besides their names: podman's and skopeo's flags for
reaching a registry (`--tls-verify`, `--cert-dir`, `--authfile`, `--creds`), and each verb's own."""

from pyc.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.registry.session import Options


def _session(tls_verify: bool | None, cert_dir: str | None, authfile: str | None, creds: str | None) -> "Options":
    from pyc.registry.session import Options

    return Options(tls_verify, cert_dir, authfile, creds)


class RegistryOptions(Record):
    """`tls_verify`: False skips certificate checks and allows plain HTTP, True requires TLS
    even for a registry registries.conf calls insecure, None follows registries.conf.
    `cert_dir`: CA and client certificate files (instead of certs.d). `authfile`: the
    credentials file (instead of REGISTRY_AUTH_FILE or podman's). `creds`: USER[:PASSWORD]."""

    tls_verify: bool | None = None
    cert_dir: str | None = None
    authfile: str | None = None
    creds: str | None = None

    def session(self) -> "Options":
        return _session(self.tls_verify, self.cert_dir, self.authfile, self.creds)


class PullOptions(Record):
    """RegistryOptions', and `platform` (os/arch[/variant]; default: this machine's)."""

    tls_verify: bool | None = None
    cert_dir: str | None = None
    authfile: str | None = None
    creds: str | None = None
    platform: str | None = None

    def session(self) -> "Options":
        return _session(self.tls_verify, self.cert_dir, self.authfile, self.creds)


class PushOptions(Record):
    """RegistryOptions', and how layers are compressed: gzip (level 0-9, default 6, as podman)
    or zstd (1-19, default 3)."""

    tls_verify: bool | None = None
    cert_dir: str | None = None
    authfile: str | None = None
    creds: str | None = None
    compression_format: str = "gzip"
    compression_level: int | None = None

    def session(self) -> "Options":
        return _session(self.tls_verify, self.cert_dir, self.authfile, self.creds)
