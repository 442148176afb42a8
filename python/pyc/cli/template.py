"""The part of Go's text/template that `docker inspect --format` is mostly used with:
`{{.Field.Sub}}`, `{{json .Field}}`, `{{upper .F}}`, `{{lower .F}}`, literal text between."""

from __future__ import annotations

import json
import re

from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")


class GoStruct(dict[str, "Any"]):
    """A Go struct as a template sees it: its fields by their Go names (`.ID`, `.Status`), while
    `json` prints `as_json`, its JSON (by its json tags: `id`, `status`), as Go does."""

    def __init__(self, fields: dict[str, Any], as_json: object) -> None:
        super().__init__(fields)
        self.as_json = as_json


_FUNCS = {"json": lambda v: json.dumps(v.as_json if isinstance(v, GoStruct) else v), "upper": lambda v: _text(v).upper(), "lower": lambda v: _text(v).lower()}


def _text(value: Any) -> str:
    """As Go prints a value: true/false, <no value> for a missing one, maps as map[k:v]."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_text(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_text(v) for v in value) + "]"
    return str(value)


def _lookup(obj: Any, path: str, template: str) -> Any:
    if path == ".":
        return obj
    if not path.startswith("."):
        raise InvalidArgument(f"template {template!r}: cannot evaluate {path!r} (use .Field.Sub, json, upper, lower)")
    for part in path[1:].split("."):
        if not isinstance(obj, dict):
            raise InvalidArgument(f"template {template!r}: can't evaluate field {part}")
        obj = obj.get(part)
    return obj


def render(template: str, obj: Any) -> str:
    def action(m: re.Match[str]) -> str:
        words = m.group(1).split()
        if len(words) == 1:
            return _text(_lookup(obj, words[0], template))
        if len(words) == 2 and words[0] in _FUNCS:
            return str(_FUNCS[words[0]](_lookup(obj, words[1], template)))
        raise InvalidArgument(f"template {template!r}: unsupported action {m.group(0)!r}")

    return _ACTION.sub(action, template)


def print_each(rows: list[dict[str, str]], format: str) -> None:
    """A list command's --format: `json` (a JSON object a line), or the template for each row."""
    for row in rows:
        print(json.dumps(row) if format == "json" else render(format, row))
