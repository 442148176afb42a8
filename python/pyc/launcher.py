"""`pyc` as setup.sh puts it on the PATH: a script that starts this Python with -I -S and names
the directories pyc needs itself, instead of pip's console script.

-S skips `site`: the scan of site-packages and its .pth files (the editable install's among
them), which every start paid for; -I ignores PYTHON* variables and the user's site-packages, so
the environment of whoever runs pyc (as root) cannot put modules of its own in front of pyc's.
The price is that sys.path is fixed when the launcher is written: write it again after moving
the checkout or the venv (setup.sh does, every time).

    python -m pyc.launcher /usr/local/bin/pyc
"""

from __future__ import annotations

import os
import sys


def search_path() -> list[str]:
    """The directories of pyc, pyc_core and the installed packages (click, rich, ... on the
    slow path), as this Python finds them now."""
    import sysconfig

    import pyc
    import pyc_core

    dirs = [os.path.dirname(os.path.dirname(os.path.abspath(m.__file__ or ""))) for m in (pyc, pyc_core)]
    dirs += [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    return list(dict.fromkeys(dirs))


def script(python: str = sys.executable) -> str:
    return (
        f"#!{python} -IS\n"
        "# pyc's launcher, written by `python -m pyc.launcher` (setup.sh): see pyc/launcher.py.\n"
        "import sys\n\n"
        f"sys.path += {search_path()!r}\n"
        "from pyc.cli.main import main\n\n"
        "main()\n"
    )


def write(path: str) -> str:
    """Write the launcher to `path` (replacing what is there, in one rename); `path`."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(script())
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pyc.launcher PATH")
    write(sys.argv[1])
