"""Value selectors over a JSON payload (SEL-1..SEL-8)."""

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


def _array_index(token: str) -> int | None:
    """serde_json's index rule: plain ASCII decimal, no sign, no leading zero
    except ``0`` itself (``str.isdigit`` alone would admit ``"²"`` or ``"٣"``)."""
    if not token or not token.isascii() or not token.isdigit():
        return None
    if len(token) > 1 and token[0] == "0":
        return None
    return int(token)


def resolve_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """RFC 6901 as serde_json's ``Value::pointer`` reads it: ``""`` is the whole
    document; any other pointer must start with ``/`` or it matches nothing;
    ``~1`` unescapes before ``~0`` (so ``~01`` is the key ``~1``); malformed
    escapes stay literal."""
    if pointer == "":
        return True, document
    if not pointer.startswith("/"):
        return False, None
    current = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict):
            if token not in current:
                return False, None
            current = current[token]
        elif isinstance(current, list):
            index = _array_index(token)
            if index is None or index >= len(current):
                return False, None
            current = current[index]
        else:
            return False, None
    return True, current


def stringify(value: Any) -> str:
    """SEL-7: a string's raw text; anything else its compact serde JSON (maps
    key-sorted, as serde_json without ``preserve_order`` writes them)."""
    if isinstance(value, str):
        return value
    return encode(value).decode("utf-8")


def is_truthy(value: Any) -> bool:
    """SEL-8 (quirk kept): ``null`` is false, booleans are themselves, strings,
    arrays and objects are true iff non-empty, and every number is true, 0
    included."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


def select_value(payload: Any, selector: ProcessValueSelector) -> Any:
    """SEL-2..SEL-6. A ``pointer`` that does not resolve raises
    :class:`~lash_streams.errors.SelectorError`; ``present`` never does."""
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
        # Fields are a BTreeMap in lash: ascending by code point, which is
        # Python's str order. Each pass rewrites the text produced so far, so a
        # value that itself contains `{later}` is replaced by the later field.
        rendered = selector.template
        for name in sorted(selector.fields):
            text = stringify(select_value(payload, selector.fields[name]))
            rendered = rendered.replace("{" + name + "}", text)
        return rendered
    if isinstance(selector, SelPresent):
        return resolve_pointer(payload, selector.pointer)[0]
    raise TypeError(f"not a process value selector: {selector!r}")
