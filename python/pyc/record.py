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
    from collections.abc import Callable, Mapping
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
    _checks: "tuple[tuple[str, Callable[[object], object]], ...]"


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
        checks = cls.__dict__.get("_checks")
        if checks is None:  # made once per class, at its first use: `pyc ps` reads a record per row
            checks = tuple((f, _checker(cls._hints[f], f"{cls.__name__}.{f}")) for f in cls._fields)
            cls._checks = checks
        record = object.__new__(cls)
        for f, check in checks:
            if f in data:
                value = check(data[f])
            elif f in cls._defaults:
                value = _fresh(cls._defaults[f])
            else:
                raise BadRecord(f"{cls.__name__}: no {f!r}")
            object.__setattr__(record, f, value)
        return record


def _plain(value: object) -> object:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _checker(hint: object, where: str) -> "Callable[[object], object]":
    """A function that checks a value against `hint` and returns it (records made from their
    dicts, floats from ints), or raises BadRecord."""

    def bad(value: object) -> BadRecord:
        return BadRecord(f"{where}: expected {getattr(hint, '__name__', hint)}, got {type(value).__name__}")

    if hint is object:
        return lambda value: value
    if isinstance(hint, type) and issubclass(hint, Record):
        record_type = hint

        def record(value: object) -> object:
            if type(value) is not dict:
                raise bad(value)
            return record_type.from_dict(value)

        return record
    if isinstance(hint, types.UnionType):
        options = [o for o in hint.__args__ if o is not type(None)]
        nullable = len(options) < len(hint.__args__)
        checks = [_checker(o, where) for o in options]

        def union(value: object) -> object:
            if value is None and nullable:
                return None
            for check in checks:
                try:
                    return check(value)
                except BadRecord:
                    pass
            raise bad(value)

        return union
    if isinstance(hint, types.GenericAlias):
        origin, args = hint.__origin__, hint.__args__
        item = _checker(args[-1], where)
        if origin is list:
            plain = args[0] in (str, int, bool, bytes)

            def items(value: object) -> object:
                if type(value) is not list:
                    raise bad(value)
                if plain and all(type(v) is args[0] for v in value):
                    return value
                return [item(v) for v in value]

            return items
        if origin is dict:

            def mapping(value: object) -> object:
                if type(value) is not dict:
                    raise bad(value)
                return value if args[1] is object else {str(k): item(v) for k, v in value.items()}

            return mapping
    if hint is float:

        def number(value: object) -> object:
            if type(value) is float or type(value) is int:
                return float(value)
            raise bad(value)

        return number
    if not isinstance(hint, type):
        raise TypeError(f"{where}: a Record field cannot be {hint!r}")
    exact = hint

    def scalar(value: object) -> object:
        if type(value) is not exact:  # exactly: a bool is no int here
            raise bad(value)
        return value

    return scalar
