"""`Record`: a typed class declared as a dataclass is (annotated fields with defaults), with
slots, a keyword-only `__init__`, `__eq__`, `__repr__`, `replace`, and `to_dict` / `from_dict`
to and from plain data (what msgpack carries), checked against the annotations on the way in.

Not `dataclasses`: it imports `inspect` (10 ms), and records are made on every `pyc run`. mypy
sees a Record as a dataclass through `dataclass_transform`. A field's annotation is evaluated at
class creation (no `from __future__ import annotations` in modules that declare records) and may
be a builtin scalar, `list[...]`, `dict[str, ...]`, `X | None`, `object` (any plain data, for
documents such as an OCI spec) or another Record."""

import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self, dataclass_transform
else:

    def dataclass_transform(**_options: object) -> object:
        return lambda cls: cls


class BadRecord(ValueError):
    """Data that does not have a record's shape: a field missing or of the wrong type."""


@dataclass_transform(kw_only_default=True, eq_default=True)
class RecordType(type):
    """The metaclass: the class body's annotations become its slots; their values, defaults."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, object]) -> "RecordType":
        hints = namespace.get("__annotations__", {})
        assert isinstance(hints, dict)
        fields = tuple(str(f) for f in hints)
        defaults = {f: namespace.pop(f) for f in fields if f in namespace}
        namespace["__slots__"] = fields
        cls = super().__new__(mcs, name, bases, namespace)
        cls._fields = fields
        cls._defaults = defaults
        cls._hints = {f: hints[f] for f in fields}
        return cls

    _fields: tuple[str, ...]
    _defaults: dict[str, object]
    _hints: dict[str, object]


def _fresh(value: object) -> object:
    """A default's own copy, so no two records share one list, dict or record."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, Record):
        return type(value)(**{f: _fresh(getattr(value, f)) for f in type(value)._fields})
    return value


class Record(metaclass=RecordType):
    __slots__ = ()

    def __init__(self, **values: object) -> None:
        cls = type(self)
        for f in cls._fields:
            if f in values:
                value = values.pop(f)
            elif f in cls._defaults:
                value = _fresh(cls._defaults[f])
            else:
                raise TypeError(f"{cls.__name__}: missing field {f!r}")
            object.__setattr__(self, f, value)
        if values:
            raise TypeError(f"{cls.__name__}: unknown fields {sorted(values)}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, f) == getattr(other, f) for f in type(self)._fields)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass without frozen=True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{f}={getattr(self, f)!r}' for f in type(self)._fields)})"

    def replace(self, **changes: object) -> "Self":
        """A copy with `changes`; nested records and lists are shared, not copied."""
        values = {f: getattr(self, f) for f in type(self)._fields}
        values.update(changes)
        return type(self)(**values)

    def to_dict(self) -> dict[str, object]:
        """Plain data, by field name; nested records as dicts."""
        return {f: _plain(getattr(self, f)) for f in type(self)._fields}

    @classmethod
    def from_dict(cls, data: "Mapping[str, object]") -> "Self":
        """The record of `data` (keys its fields; others are ignored, missing ones take their
        default); BadRecord when a value is not of its field's type."""
        values: dict[str, object] = {}
        for f in cls._fields:
            if f in data:
                values[f] = _typed(data[f], cls._hints[f], f"{cls.__name__}.{f}")
            elif f not in cls._defaults:
                raise BadRecord(f"{cls.__name__}: no {f!r}")
        return cls(**values)


def _plain(value: object) -> object:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _typed(value: object, hint: object, where: str) -> object:
    """`value` checked against `hint` (records made from their dicts)."""
    if hint is object:
        return value
    if isinstance(hint, type) and issubclass(hint, Record):
        if not isinstance(value, dict):
            raise BadRecord(f"{where}: expected a map, got {type(value).__name__}")
        return hint.from_dict(value)
    if isinstance(hint, types.UnionType):
        if value is None and type(None) in hint.__args__:
            return None
        for option in hint.__args__:
            if option is not type(None):
                try:
                    return _typed(value, option, where)
                except BadRecord:
                    pass
        raise BadRecord(f"{where}: expected {hint}, got {type(value).__name__}")
    if isinstance(hint, types.GenericAlias):
        origin, args = hint.__origin__, hint.__args__
        if origin is list and isinstance(value, list):
            return [_typed(v, args[0], where) for v in value]
        if origin is dict and isinstance(value, dict):
            return {str(k): _typed(v, args[1], where) for k, v in value.items()}
        raise BadRecord(f"{where}: expected {hint}, got {type(value).__name__}")
    if hint is float and isinstance(value, int):
        return float(value)
    if not isinstance(hint, type) or not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise BadRecord(f"{where}: expected {getattr(hint, '__name__', hint)}, got {type(value).__name__}")
    return value
