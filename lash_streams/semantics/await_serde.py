"""TM-2: a selected value read as lash reads it,
``serde_json::from_value::<ProcessAwaitOutput>(value)``, into the canonical
JSON our decoder takes, or ``None`` where serde fails (the value is then
mapped by the declared state).

serde's derived visitors read more than serde writes, and lash reads a
payload's value with them, so these forms count as serialized await outputs
(each checked against lash's materialization compiled from cc4a0e3b):

- a struct, or a variant's fields, as a JSON array in declaration order, where
  trailing ``#[serde(default)]`` fields may be left out and extra elements fail;
- a nested internally tagged enum's tag as the variant's index (a
  non-negative integer); the outermost tag must be a string;
- a unit enum (``class``, ``source``, ``writer``) as ``{"name": null}``;
- ``null`` for an ``Option`` field, which is then absent (``raw: null`` reads
  as no ``raw``).

Integers must be integers in range (``3.0`` and ``-1`` fail a ``u64``)."""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi
from msgspec import NODEFAULT

from lash_streams.model import ProcessAwaitOutput


class _NotSerde(Exception):
    """serde would fail here: the value is not a serialized await output."""


# A field: (name, reader, required). A reader takes the JSON value and returns
# its canonical form, or _ABSENT for an Option given null.
_ABSENT = object()


def _string(value: Any) -> Any:
    if type(value) is not str:
        raise _NotSerde
    return value


def _integer(bound: int) -> Any:
    def read(value: Any) -> Any:
        if type(value) is not int or not 0 <= value < bound:
            raise _NotSerde
        return value

    return read


def _any(value: Any) -> Any:
    return value


def _option(inner: Any) -> Any:
    def read(value: Any) -> Any:
        return _ABSENT if value is None else inner(value)

    return read


def _list(value: Any) -> Any:
    if type(value) is not list:
        raise _NotSerde
    return value


def _unit(names: frozenset[str]) -> Any:
    def read(value: Any) -> Any:
        if type(value) is str and value in names:
            return value
        if type(value) is dict and len(value) == 1:
            [(name, content)] = value.items()
            if name in names and content is None:
                return name
        raise _NotSerde

    return read


def _fields(content: Any, fields: tuple[tuple[str, Any, bool], ...]) -> dict[str, Any]:
    """A struct's (or a variant's) fields from an object or an array."""
    out: dict[str, Any] = {}
    if type(content) is dict:
        pairs = [
            (name, read, required, content.get(name, _ABSENT)) for name, read, required in fields
        ]
    elif type(content) is list:
        if len(content) > len(fields):
            raise _NotSerde
        pairs = [
            (name, read, required, content[i] if i < len(content) else _ABSENT)
            for i, (name, read, required) in enumerate(fields)
        ]
    else:
        raise _NotSerde
    for name, read, required, value in pairs:
        if value is _ABSENT:
            if required:
                raise _NotSerde
            continue
        value = read(value)
        if value is not _ABSENT:
            out[name] = value
    return out


def _struct(fields: tuple[tuple[str, Any, bool], ...]) -> Any:
    return lambda value: _fields(value, fields)


def _tagged(
    tag: str, variants: tuple[tuple[str, tuple[tuple[str, Any, bool], ...]], ...], *, nested: bool
) -> Any:
    names = [name for name, _ in variants]

    def variant(key: Any) -> int:
        if type(key) is str and key in names:
            return names.index(key)
        if nested and type(key) is int and 0 <= key < len(names):
            return key
        raise _NotSerde

    def read(value: Any) -> Any:
        if type(value) is dict:
            if tag not in value:
                raise _NotSerde
            index = variant(value[tag])
            content: Any = {k: v for k, v in value.items() if k != tag}
        elif type(value) is list and value:
            index = variant(value[0])
            content = value[1:]
        else:
            raise _NotSerde
        name, fields = variants[index]
        return {tag: name, **_fields(content, fields)}

    return read


def _field(field: mi.Field) -> tuple[str, Any, bool]:
    """A model field as serde reads it: ``None``- or ``UNSET``-defaulted
    fields are serde ``Option``s (null reads as absent); other defaulted ones
    (``#[serde(default)]``) may be left out but not given null."""
    read = _reader(field.type)
    optional = field.default_factory is NODEFAULT and field.default in (None, NODEFAULT)
    return (
        field.encode_name,
        _option(read) if optional and not field.required else read,
        field.required,
    )


def _reader(info: mi.Type, *, nested: bool = True) -> Any:
    """The reader of a model type, from the model's own definition: field
    order, defaults, tags and variant order are lash's (the wire golden
    tests pin them to lash's serde)."""
    if isinstance(info, mi.UnionType):
        members = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(members) == 1:
            return _reader(members[0], nested=nested)
        structs = [t for t in members if isinstance(t, mi.StructType)]
        tag = structs[0].tag_field if structs and len(structs) == len(members) else None
        if tag is None:
            raise TypeError(f"no serde reading of {info}")  # not in the await output types
        variants = tuple((str(t.tag), tuple(_field(f) for f in t.fields)) for t in structs)
        return _tagged(tag, variants, nested=nested)
    if isinstance(info, mi.StructType):
        return _struct(tuple(_field(f) for f in info.fields))
    if isinstance(info, mi.EnumType):
        return _unit(frozenset(member.value for member in info.cls))
    if isinstance(info, mi.IntType):
        return _integer(info.le + 1 if info.le is not None else 2**64)
    if isinstance(info, mi.StrType):
        return _string
    if isinstance(info, mi.ListType):
        return _list
    if isinstance(info, mi.AnyType):
        return _any
    raise TypeError(f"no serde reading of {info}")


_AWAIT_OUTPUT = _reader(mi.type_info(ProcessAwaitOutput), nested=False)


def serde_await_output(value: Any) -> dict[str, Any] | None:
    """``value`` as the canonical JSON of the await output serde reads from
    it, or ``None`` where serde fails. Tool values (``finish`` values, a tool
    failure's ``raw``) are checked by the decoder that takes the result."""
    try:
        result: dict[str, Any] = _AWAIT_OUTPUT(value)
    except _NotSerde:
        return None
    return result


__all__ = ["serde_await_output"]
