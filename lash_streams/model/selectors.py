"""Value selectors and wake dedupe keys: externally tagged serde enums.

``"payload"``, ``{"pointer": "/x"}``, ``{"const": v}``,
``{"template": {"template": "...", "fields": {...}}}``, ``{"present": "/x"}``;
dedupe keys ``"event_identity"``, ``{"selector": sel}``, ``{"const": "c"}``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lash_streams.model._codec import JsonValue, canonical_json, register_hook


class _Value:
    """Value semantics for the hook-encoded classes."""

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        names: tuple[str, ...] = self.__slots__
        return tuple(getattr(self, name) for name in names)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and canonical_json(other) == canonical_json(self)

    def __hash__(self) -> int:
        return hash((type(self).__name__, canonical_json(self)))

    def __repr__(self) -> str:
        args = ", ".join(repr(v) for v in self._key())
        return f"{type(self).__name__}({args})"


class ProcessValueSelector(_Value):
    __slots__ = ()


class SelPayload(ProcessValueSelector):
    __slots__ = ()


class SelPointer(ProcessValueSelector):
    __slots__ = ("pointer",)

    def __init__(self, pointer: str) -> None:
        self.pointer = pointer


class SelConst(ProcessValueSelector):
    __slots__ = ("value",)

    def __init__(self, value: JsonValue) -> None:
        self.value = value


class SelTemplate(ProcessValueSelector):
    __slots__ = ("fields", "template")

    def __init__(
        self, template: str, fields: dict[str, ProcessValueSelector] | None = None
    ) -> None:
        self.template = template
        self.fields = dict(fields or {})


class SelPresent(ProcessValueSelector):
    __slots__ = ("pointer",)

    def __init__(self, pointer: str) -> None:
        self.pointer = pointer


class _TemplateBody(msgspec.Struct):
    template: str
    fields: dict[str, ProcessValueSelector] = {}


def _encode_selector(obj: ProcessValueSelector) -> Any:
    if isinstance(obj, SelPayload):
        return "payload"
    if isinstance(obj, SelPointer):
        return {"pointer": obj.pointer}
    if isinstance(obj, SelConst):
        return {"const": obj.value}
    if isinstance(obj, SelTemplate):
        return {"template": _TemplateBody(obj.template, obj.fields)}
    assert isinstance(obj, SelPresent)
    return {"present": obj.pointer}


def _one_key(obj: Any, what: str) -> tuple[str, Any]:
    if isinstance(obj, dict) and len(obj) == 1:
        ((tag, body),) = obj.items()
        return str(tag), body
    raise ValueError(f"{what} must be a variant name or a single-key object, got {obj!r}")


def _string(body: Any, what: str) -> str:
    if not isinstance(body, str):
        raise ValueError(f"{what} expects a string, got {body!r}")
    return body


def decode_selector(obj: Any) -> ProcessValueSelector:
    if obj == "payload":
        return SelPayload()
    tag, body = _one_key(obj, "selector")
    if tag == "payload" and body is None:
        return SelPayload()
    if tag == "pointer":
        return SelPointer(_string(body, "pointer selector"))
    if tag == "const":
        return SelConst(body)
    if tag == "present":
        return SelPresent(_string(body, "present selector"))
    if tag == "template":
        if not isinstance(body, dict) or "template" not in body:
            raise ValueError('template selector expects {"template": ..., "fields": {...}}')
        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            raise ValueError("template selector fields must be an object")
        return SelTemplate(
            _string(body["template"], "template"),
            {str(k): decode_selector(v) for k, v in fields.items()},
        )
    raise ValueError(f"unknown selector variant `{tag}`")


register_hook(ProcessValueSelector, _encode_selector, decode_selector)


class ProcessWakeDedupeKey(_Value):
    __slots__ = ()


class DedupeEventIdentity(ProcessWakeDedupeKey):
    __slots__ = ()


class DedupeSelector(ProcessWakeDedupeKey):
    __slots__ = ("selector",)

    def __init__(self, selector: ProcessValueSelector) -> None:
        self.selector = selector


class DedupeConst(ProcessWakeDedupeKey):
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value


def _encode_dedupe(obj: ProcessWakeDedupeKey) -> Any:
    if isinstance(obj, DedupeEventIdentity):
        return "event_identity"
    if isinstance(obj, DedupeSelector):
        return {"selector": obj.selector}
    assert isinstance(obj, DedupeConst)
    return {"const": obj.value}


def _decode_dedupe(obj: Any) -> ProcessWakeDedupeKey:
    if obj == "event_identity":
        return DedupeEventIdentity()
    tag, body = _one_key(obj, "wake dedupe key")
    if tag == "event_identity" and body is None:
        return DedupeEventIdentity()
    if tag == "selector":
        return DedupeSelector(decode_selector(body))
    if tag == "const":
        return DedupeConst(_string(body, "const dedupe key"))
    raise ValueError(f"unknown wake dedupe key variant `{tag}`")


register_hook(ProcessWakeDedupeKey, _encode_dedupe, _decode_dedupe)

__all__ = [
    "DedupeConst",
    "DedupeEventIdentity",
    "DedupeSelector",
    "ProcessValueSelector",
    "ProcessWakeDedupeKey",
    "SelConst",
    "SelPayload",
    "SelPointer",
    "SelPresent",
    "SelTemplate",
    "decode_selector",
]
