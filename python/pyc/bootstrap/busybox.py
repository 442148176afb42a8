"""busybox:latest from Debian's busybox-static: the static binary, a link for every applet, the
few files in /etc a shell expects. Deterministic: the same package gives the same image ID."""

from __future__ import annotations

import os
import subprocess
import time

from pyc.errors import PycError
from pyc.store.images import Image, ImageStore
from pyc.store.importer import default_config, import_rootfs
from pyc.store.ingest import temp_dir

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any

BUSYBOX = "/bin/busybox"

PASSWD = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n"


def _is_static(path: str) -> bool:
    with open(path, "rb") as f:
        elf = f.read(1 << 16)
    return elf[:4] == b"\x7fELF" and b"/lib64/ld-linux" not in elf and b"ld-linux" not in elf


def make_busybox(store: ImageStore, binary: str = BUSYBOX, ref: str = "busybox:latest") -> Image:
    if not os.path.isfile(binary):
        raise PycError(f"{binary} not found: install Debian's busybox-static (apt-get install busybox-static)")
    if not _is_static(binary):
        raise PycError(f"{binary} is not statically linked: install busybox-static, not busybox")
    applets = subprocess.run([binary, "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    store.ensure_layout()
    with temp_dir(store) as tmp:
        root = os.path.join(tmp, "rootfs")
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "tmp", "var/tmp", "home", "run"):
            os.makedirs(os.path.join(root, d))
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        os.chmod(os.path.join(root, "var/tmp"), 0o1777)
        os.chmod(os.path.join(root, "root"), 0o700)
        with open(binary, "rb") as src, open(os.path.join(root, "bin/busybox"), "wb") as dst:
            dst.write(src.read())
        os.chmod(os.path.join(root, "bin/busybox"), 0o755)
        for applet in applets:
            path = os.path.join(root, applet.lstrip("/"))
            if applet.lstrip("/") != "bin/busybox" and not os.path.lexists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.symlink("/bin/busybox", path)
        for name, content in (("passwd", PASSWD), ("group", GROUP), ("hostname", ""), ("hosts", ""), ("resolv.conf", "")):
            with open(os.path.join(root, "etc", name), "w") as f:
                f.write(content)
        run_config: dict[str, Any] = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}
        config = default_config(run_config, created_by=f"pyc image bootstrap busybox ({len(applets)} applets)")
        # The package's build time, not now: the same package always gives the same image ID.
        config["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.stat(binary).st_mtime))
        return import_rootfs(store, root, ref, config, deterministic=True)
