"""Variable expansion in Dockerfile words, as BuildKit's shell lexer does it: `$VAR`, `${VAR}`,
`${VAR:-word}` / `${VAR-word}` (a default), `${VAR:+word}` / `${VAR+word}` (an alternative),
`${VAR:?message}` / `${VAR?message}` (an error), single quotes literal, double quotes
expanding, `\\` escaping the next character, the quotes removed. RUN, CMD and ENTRYPOINT are
not expanded (their shell does it)."""

from __future__ import annotations

from pyc.errors import InvalidArgument

_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class _Lexer:
    __slots__ = ("text", "pos", "env", "used", "escape")

    def __init__(self, text: str, env: dict[str, str], used: set[str], escape: str) -> None:
        self.text, self.pos, self.env, self.used, self.escape = text, 0, env, used, escape

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def word(self, stop: str = "") -> str:
        """Up to the end of the text or an unquoted `stop` character (`}` inside `${...}`)."""
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.peek()
            if ch in stop and stop:
                break
            self.pos += 1
            if ch == "'":
                end = self.text.find("'", self.pos)
                if end < 0:
                    raise InvalidArgument(f"unterminated single quote in {self.text!r}")
                out.append(self.text[self.pos : end])
                self.pos = end + 1
            elif ch == '"':
                out.append(self.double_quoted())
            elif ch == self.escape:
                out.append(self.next())
            elif ch == "$":
                out.append(self.variable())
            else:
                out.append(ch)
        return "".join(out)

    def double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise InvalidArgument(f"unterminated double quote in {self.text!r}")
            ch = self.next()
            if ch == '"':
                return "".join(out)
            if ch == self.escape:
                nxt = self.peek()
                if nxt in ('"', "$", self.escape) and nxt:
                    out.append(self.next())
                else:
                    out.append(ch)
            elif ch == "$":
                out.append(self.variable())
            else:
                out.append(ch)

    def lookup(self, name: str) -> str | None:
        self.used.add(name)
        return self.env.get(name)

    def variable(self) -> str:
        ch = self.peek()
        if ch == "{":
            self.pos += 1
            return self.braced()
        start = self.pos
        while self.peek() in _NAME and self.peek():
            self.pos += 1
        name = self.text[start : self.pos]
        if not name:
            return "$"
        return self.lookup(name) or ""

    def braced(self) -> str:
        start = self.pos
        while self.peek() in _NAME and self.peek():
            self.pos += 1
        name = self.text[start : self.pos]
        if not name:
            raise InvalidArgument(f"bad substitution in {self.text!r}: ${{}} needs a variable name")
        ch = self.next()
        if ch == "}":
            return self.lookup(name) or ""
        if not ch:
            raise InvalidArgument(f"missing '}}' in {self.text!r}")
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+", "?"):
            raise InvalidArgument(f"unsupported modifier in {self.text!r}: use ${{{name}:-default}}, ${{{name}:+alternative}} or ${{{name}:?message}}")
        arg = self.word(stop="}")
        if self.next() != "}":
            raise InvalidArgument(f"missing '}}' in {self.text!r}")
        value = self.lookup(name)
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set and value is not None else arg
        if ch == "+":
            return arg if is_set else ""
        if not is_set:
            raise InvalidArgument(f"{name}: {arg or 'is not set'}")
        return value or ""


def expand(word: str, env: dict[str, str], used: set[str] | None = None, escape: str = "\\") -> str:
    """`word` expanded with `env`, its quotes and escapes removed; the names looked up are
    added to `used` (what a build step's cache key depends on). `escape`: the Dockerfile's
    escape character (`# escape=`), \\ or `."""
    return _Lexer(word, env, used if used is not None else set(), escape).word()
