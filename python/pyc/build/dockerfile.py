"""A Dockerfile read into stages of checked instructions. BuildKit's own parser (the PyPI
`dockerfile` package) splits the text; this module checks what it lets through (unknown
instructions, missing arguments, flags an instruction does not take) and says where: the
file, the line, one reason."""

from __future__ import annotations

from pyc.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any

# The flags each instruction takes (name without the leading --).
FLAGS: dict[str, tuple[str, ...]] = {
    "FROM": ("platform",),
    "RUN": ("network", "mount"),
    "COPY": ("from", "chown", "chmod", "link"),
    "ADD": ("chown", "chmod", "link", "checksum"),
    "HEALTHCHECK": ("interval", "timeout", "start-period", "start-interval", "retries"),
}
INSTRUCTIONS = ("FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "LABEL", "EXPOSE", "ENTRYPOINT", "CMD", "VOLUME", "STOPSIGNAL", "SHELL", "HEALTHCHECK", "ONBUILD", "MAINTAINER")
# At least this many words after the flags.
MIN_ARGS = {"FROM": 1, "RUN": 1, "COPY": 2, "ADD": 2, "ENV": 1, "ARG": 1, "WORKDIR": 1, "USER": 1, "LABEL": 1, "EXPOSE": 1, "VOLUME": 1, "STOPSIGNAL": 1, "SHELL": 1, "HEALTHCHECK": 1, "MAINTAINER": 1}


class BuildError(InvalidArgument):
    """A Dockerfile that cannot be built: `file:line: reason`."""


class Instruction:
    """One instruction: its name (upper case), flags ({name: [values]}), words (JSON form:
    `json`), heredocs ([(name, content)]), the line it starts on and its text."""

    __slots__ = ("cmd", "flags", "args", "json", "heredocs", "line", "text", "file", "escape")

    def __init__(self, cmd: str, flags: dict[str, list[str]], args: list[str], json: bool, heredocs: list[tuple[str, str]], line: int, text: str, file: str) -> None:
        self.cmd, self.flags, self.args, self.json, self.heredocs = cmd, flags, args, json, heredocs
        self.line, self.text, self.file = line, text, file
        self.escape = "\\"  # the file's escape character (# escape=), for expanding its words

    def error(self, reason: str) -> BuildError:
        return BuildError(f"{self.file}:{self.line}: {reason}")

    def flag(self, name: str) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else None


class Stage:
    """`FROM base AS name` and what follows it, up to the next FROM."""

    __slots__ = ("index", "base", "name", "platform", "instructions", "line")

    def __init__(self, index: int, base: str, name: str | None, line: Instruction) -> None:
        self.index, self.base, self.name, self.line = index, base, name, line
        self.instructions: list[Instruction] = []


class Dockerfile:
    __slots__ = ("file", "global_args", "stages")

    def __init__(self, file: str) -> None:
        self.file = file
        self.global_args: list[Instruction] = []  # the ARGs before the first FROM
        self.stages: list[Stage] = []

    def stage(self, ref: str) -> Stage | None:
        """A stage by name (case-insensitive, as docker) or index."""
        for s in self.stages:
            if s.name is not None and s.name == ref.lower():
                return s
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None


# The parser runs in a child Python: the `dockerfile` module is Go, and a Go runtime in pyc's own
# process takes signals (SIGCHLD among them) on threads of its own, so that a RUN step's container
# exiting at once was now and then never seen to end.
_PARSE = """
import json, sys
import dockerfile
try:
    out = [c._asdict() | {"heredocs": [h._asdict() for h in c.heredocs]} for c in dockerfile.parse_string(sys.stdin.read())]
except dockerfile.GoParseError as e:
    out = {"error": str(e)}
json.dump(out, sys.stdout)
"""


class _Command:
    """One parsed instruction, as the `dockerfile` package's Command has it."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.cmd, self.sub_cmd, self.json, self.original = d["cmd"], d["sub_cmd"], d["json"], d["original"]
        self.start_line, self.flags, self.value = d["start_line"], d["flags"], d["value"]
        self.heredocs = [_Heredoc(h["name"], h["content"]) for h in d["heredocs"]]


class _Heredoc:
    def __init__(self, name: str, content: str) -> None:
        self.name, self.content = name, content


def commands(text: str, file: str) -> list[Any]:
    """BuildKit's parse of `text`, in a child process (see _PARSE)."""
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _PARSE], input=text.encode(), capture_output=True)
    if r.returncode != 0:
        raise BuildError(f"{file}: the Dockerfile parser failed: {r.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
    out = json.loads(r.stdout)
    if isinstance(out, dict):
        raise BuildError(f"{file}: {out['error']}")
    return [_Command(d) for d in out]


# The frontends a `# syntax=` may name: BuildKit's own Dockerfile frontend, which pyc's parser is.
FRONTENDS = ("docker/dockerfile", "docker/dockerfile-upstream")


def directives(text: str, file: str) -> dict[str, str]:
    """The parser directives (`# syntax=`, `# escape=`) of the file's first lines, as the
    parser reads them: up to the first line that is not one (an instruction, a blank line, any
    other comment, `# check=` too, which this BuildKit parser does not know), keys
    case-insensitive, each at most once. The parser honours `escape` for line continuations;
    pyc needs it for expansion too."""
    import re

    found: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$", line.removeprefix("\ufeff") if n == 1 else line)
        if m is None or m.group(1).lower() not in ("syntax", "escape"):
            break
        key, value = m.group(1).lower(), m.group(2)
        if key in found:
            raise BuildError(f"{file}:{n}: only one {key} parser directive can be used")
        if key == "escape" and value not in ("\\", "`"):
            raise BuildError(f"{file}:{n}: invalid escape {value!r}: use \\ or `")
        if key == "syntax":
            ref = value.removeprefix("docker.io/").split("@")[0].rsplit(":", 1)[0]
            if ref not in FRONTENDS:
                raise BuildError(f"{file}:{n}: # syntax={value}: pyc builds with its own Dockerfile frontend (docker/dockerfile), not another image's")
        found[key] = value
    return found


def parse(text: str, file: str) -> Dockerfile:
    escape = directives(text, file).get("escape", "\\")
    commands_ = commands(text, file)
    df = Dockerfile(file)
    for c in commands_:
        ins = _instruction(c, file)
        ins.escape = escape
        if ins.cmd == "FROM":
            words = ins.args
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise ins.error("FROM takes an image and an optional AS name: FROM IMAGE [AS NAME]")
            name = words[2].lower() if len(words) == 3 else None
            if name is not None and (not name[:1].isalpha() or not all(ch.isalnum() or ch in "_.-" for ch in name)):
                raise ins.error(f"invalid stage name {words[2]!r}: use a letter, then letters, digits, _ . -")
            if name is not None and df.stage(name) is not None:
                raise ins.error(f"duplicate stage name {words[2]!r}")
            df.stages.append(Stage(len(df.stages), words[0], name, ins))
        elif not df.stages:
            if ins.cmd != "ARG":
                raise ins.error(f"{ins.cmd} before the first FROM: only ARG may come before it")
            df.global_args.append(ins)
        else:
            df.stages[-1].instructions.append(ins)
    if not df.stages:
        raise BuildError(f"{file}: no FROM instruction: a Dockerfile starts with FROM IMAGE (or ARGs, then FROM)")
    return df


def _instruction(c: Any, file: str) -> Instruction:
    cmd = str(c.cmd).upper()
    line = int(c.start_line)
    where = f"{file}:{line}"
    if cmd not in INSTRUCTIONS:
        raise BuildError(f"{where}: unknown instruction: {c.cmd}")
    flags: dict[str, list[str]] = {}
    for raw in c.flags:
        name, eq, value = str(raw).removeprefix("--").partition("=")
        allowed = FLAGS.get(cmd, ())
        if name not in allowed:
            if cmd == "RUN" and name == "security":
                raise BuildError(f"{where}: RUN --{name} is not supported yet")
            raise BuildError(f"{where}: unknown flag --{name} for {cmd}" + (f" (it takes --{', --'.join(allowed)})" if allowed else ""))
        if not eq and name != "link":
            raise BuildError(f"{where}: --{name} needs a value: --{name}=VALUE")
        flags.setdefault(name, []).append(value if eq else "true")
    args = [str(v) for v in c.value]
    if cmd == "ONBUILD":
        sub = str(c.sub_cmd or "").upper()
        if sub in ("ONBUILD", "FROM", "MAINTAINER") or sub not in INSTRUCTIONS:
            raise BuildError(f"{where}: ONBUILD {c.sub_cmd or ''} is not allowed: ONBUILD takes another instruction but FROM, ONBUILD, MAINTAINER".replace("  ", " "))
        # The trigger is kept as written, run when an image is built FROM this one.
        args = [str(c.original).split(None, 1)[1] if " " in str(c.original) else ""]
    if cmd in ("RUN", "CMD", "ENTRYPOINT") and not c.json:
        args = [a for a in args if a]
    elif cmd not in ("CMD", "ENTRYPOINT"):
        args = [a for a in args if a != ""]
    if len(args) < MIN_ARGS.get(cmd, 0):
        raise BuildError(f"{where}: {cmd} needs " + ("an argument" if MIN_ARGS[cmd] == 1 else f"at least {MIN_ARGS[cmd]} arguments"))
    if cmd == "SHELL" and not c.json:
        raise BuildError(f'{where}: SHELL takes a JSON array: SHELL ["/bin/sh", "-c"]')
    heredocs = [(str(h.name), str(h.content)) for h in c.heredocs]
    return Instruction(cmd, flags, args, bool(c.json), heredocs, line, str(c.original), file)
