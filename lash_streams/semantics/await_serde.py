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

from lash_streams.model import AbandonWriter, ToolFailureClass, ToolFailureSource


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


_CLASS = _unit(frozenset(c.value for c in ToolFailureClass))
_SOURCE = _unit(frozenset(s.value for s in ToolFailureSource))
_WRITER = _unit(frozenset(w.value for w in AbandonWriter))
_U64 = _integer(2**64)
_U32 = _integer(2**32)

_LIVENESS = _tagged(
    "kind",
    (
        (
            "local_process",
            (
                ("host_id", _string, True),
                ("boot_id", _string, True),
                ("pid", _U32, True),
                ("process_start", _string, True),
            ),
        ),
        ("opaque", ()),
    ),
    nested=True,
)
_OWNER = _struct(
    (
        ("owner_id", _string, True),
        ("incarnation_id", _string, True),
        ("liveness", _LIVENESS, False),
    )
)
_EVIDENCE = _struct(
    (("writer", _WRITER, True), ("owner", _option(_OWNER), False), ("epoch_ms", _U64, True))
)
_RETRY = _tagged(
    "type",
    (
        ("never", ()),
        ("safe", (("after_ms", _option(_U64), False),)),
        ("exhausted", (("attempts", _U32, True),)),
    ),
    nested=True,
)
_FAILURE = _struct(
    (
        ("class", _CLASS, True),
        ("code", _string, True),
        ("message", _string, True),
        ("source", _SOURCE, True),
        ("retry", _RETRY, True),
        ("raw", _option(_any), False),
    )
)
_CONTROL = _option(
    _tagged(
        "type",
        (
            (
                "switch_agent_frame",
                (
                    ("frame_id", _string, True),
                    ("initial_nodes", _list, False),
                    ("task", _option(_string), False),
                ),
            ),
            ("finish", (("value", _any, True),)),
            ("fail", (("failure", _FAILURE, True),)),
        ),
        nested=True,
    )
)
_AWAIT_OUTPUT = _tagged(
    "type",
    (
        ("success", (("value", _any, True), ("control", _CONTROL, False))),
        (
            "failure",
            (
                ("class", _CLASS, True),
                ("code", _string, True),
                ("message", _string, True),
                ("raw", _option(_any), False),
                ("control", _CONTROL, False),
            ),
        ),
        (
            "cancelled",
            (
                ("message", _string, True),
                ("raw", _option(_any), False),
                ("control", _CONTROL, False),
            ),
        ),
        ("abandoned", (("evidence", _EVIDENCE, True), ("control", _CONTROL, False))),
    ),
    nested=False,
)


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
