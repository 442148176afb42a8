"""The build context: a directory, less what `.dockerignore` (or `.containerignore`) leaves
out, with docker's pattern rules: paths relative to the context, `*` and `?` within one
component, `**` across any number, `!` bringing back what an earlier pattern left out, the
last matching pattern deciding; a pattern that matches a directory matches all in it."""

from __future__ import annotations

import os
import re

from pyc.errors import InvalidArgument

IGNORE_FILES = (".dockerignore", ".containerignore")


def _clean(path: str) -> str:
    """A slash path made relative and normal: no leading /, no ., .. kept inside the root."""
    parts: list[str] = []
    for p in path.replace("\\", "/").split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/".join(parts)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """docker's (moby/patternmatcher) pattern as a regular expression on slash paths."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern[i : i + 2] == "**":
                i += 2
                if pattern[i : i + 1] == "/":
                    i += 1
                    out.append("(.*/)?")  # **/ : any number of directories, none too
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise InvalidArgument(f"bad pattern {pattern!r}: unterminated [")
            body = pattern[i + 1 : end]
            if body.startswith("!") or body.startswith("^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


class Ignore:
    """The patterns of a .dockerignore, in order: (regex, exclusion?)."""

    def __init__(self, lines: list[str]) -> None:
        self.patterns: list[tuple[re.Pattern[str], bool]] = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pat = _clean(line[1:].strip() if keep else line)
            if pat:
                self.patterns.append((pattern_regex(pat), keep))
        self.has_exceptions = any(keep for _, keep in self.patterns)

    def excluded(self, rel: str) -> bool:
        """Whether `rel` (a clean slash path) is left out: the last pattern matching it, or one
        of its parent directories, decides."""
        if not self.patterns:
            return False
        parts = rel.split("/")
        prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
        out = False
        for regex, keep in self.patterns:
            if any(regex.match(p) for p in prefixes):
                out = not keep
        return out


def read_ignore(context: str) -> Ignore:
    for name in IGNORE_FILES:
        path = os.path.join(context, name)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return Ignore(f.read().splitlines())
        except FileNotFoundError:
            continue
        except IsADirectoryError:
            raise InvalidArgument(f"{path} is a directory") from None
    return Ignore([])


class Context:
    """A context directory and its ignore rules. Paths are clean slash paths relative to it."""

    def __init__(self, root: str) -> None:
        if not os.path.isdir(root):
            raise InvalidArgument(f"the build context {root!r} is not a directory")
        self.root = os.path.realpath(root)
        self.ignore = read_ignore(self.root)

    def walk(self, rel: str) -> list[str]:
        """`rel` and, for a directory, every path under it that is not ignored, parents first,
        sorted. A directory that is ignored itself is walked still when a `!` pattern may bring
        something in it back."""
        out: list[str] = []
        stack = [rel]
        while stack:
            r = stack.pop()
            full = os.path.join(self.root, r) if r else self.root
            ignored = bool(r) and self.ignore.excluded(r)
            if not ignored:
                out.append(r)
            if os.path.isdir(full) and not os.path.islink(full) and (not ignored or self.ignore.has_exceptions):
                for name in sorted(os.listdir(full), reverse=True):
                    stack.append(f"{r}/{name}" if r else name)
        return out

    def glob(self, pattern: str) -> list[str]:
        """The context paths a COPY source names: itself, or what its wildcards match (one
        component each, as Go's filepath.Match), ignored paths left out."""
        clean = _clean(pattern)
        if not any(ch in clean for ch in "*?["):
            full = os.path.join(self.root, clean) if clean else self.root
            if (clean and self.ignore.excluded(clean)) or not os.path.lexists(full):
                return []
            return [clean]
        found = [""]
        for part in clean.split("/"):
            if not any(ch in part for ch in "*?["):
                found = [f"{f}/{part}" if f else part for f in found if os.path.lexists(os.path.join(self.root, f, part))]
                continue
            regex = pattern_regex(part)
            nxt = []
            for f in found:
                d = os.path.join(self.root, f) if f else self.root
                if not os.path.isdir(d) or os.path.islink(d):
                    continue
                nxt += [f"{f}/{name}" if f else name for name in sorted(os.listdir(d)) if regex.match(name)]
            found = nxt
        return [f for f in found if not self.ignore.excluded(f)]
