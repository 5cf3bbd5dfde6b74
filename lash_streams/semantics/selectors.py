"""Value selectors (SEL-1..SEL-8) over a JSON payload."""

from __future__ import annotations

from typing import Any

from lash_streams.errors import SelectorError
from lash_streams.model import (
    ProcessValueSelector,
    SelConst,
    SelPayload,
    SelPointer,
    SelPresent,
    SelTemplate,
)
from lash_streams.model._codec import encode

_MISSING = object()


def resolve_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """RFC 6901, as serde_json's ``Value::pointer``: ``""`` is the whole
    document, any other pointer must start with ``/``; array indices are
    decimal without leading zeros (or exactly ``0``)."""
    if pointer == "":
        return True, document
    if not pointer.startswith("/"):
        return False, None
    current = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict):
            if token not in current:
                return False, None
            current = current[token]
        elif isinstance(current, list):
            if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
                return False, None
            index = int(token)
            if index >= len(current):
                return False, None
            current = current[index]
        else:
            return False, None
    return True, current


def stringify(value: Any) -> str:
    """SEL-7: a string's raw text, anything else as compact serde JSON."""
    return value if isinstance(value, str) else encode(value).decode("utf-8")


def is_truthy(value: Any) -> bool:
    """SEL-8 (quirk kept): every number is truthy, 0 included."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


def select_value(payload: Any, selector: ProcessValueSelector) -> Any:
    if isinstance(selector, SelPayload):
        return payload
    if isinstance(selector, SelPointer):
        found, value = resolve_pointer(payload, selector.pointer)
        if not found:
            raise SelectorError(f"payload pointer `{selector.pointer}` did not match")
        return value
    if isinstance(selector, SelConst):
        return selector.value
    if isinstance(selector, SelTemplate):
        rendered = selector.template
        for name in sorted(selector.fields, key=lambda n: n.encode("utf-8")):
            value = select_value(payload, selector.fields[name])
            rendered = rendered.replace("{" + name + "}", stringify(value))
        return rendered
    if isinstance(selector, SelPresent):
        return resolve_pointer(payload, selector.pointer)[0]
    raise SelectorError(f"unknown selector {selector!r}")
