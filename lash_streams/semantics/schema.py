"""Payload schemas: lash's JSON-Schema subset (ET-4), validated by fastjsonschema.

lash validates with its own subset reader. We translate a lash schema into a
standard draft-04 schema that fastjsonschema enforces with the same meaning:

- only the subset's keywords survive (type, enum, anyOf/oneOf, minimum,
  maximum, minLength, maxLength, minItems, maxItems, items, required,
  properties, additionalProperties); lash ignores every other keyword;
- ``anyOf``/``oneOf`` (lash reads them alike, and a matching branch accepts the
  value without checking the schema's other keywords) become a bare ``anyOf``;
- a ``type`` naming an unknown type matches everything in lash, so it is dropped;
- ``additionalProperties`` only applies when ``properties`` is present, where
  anything but ``true`` or a schema means "reject unknown properties" (the ET-4
  quirk), always exempting lash's internal ``__session_id__`` argument;
- draft-04's ``integer`` rejects ``1.0`` as lash does.

Known difference: draft-04 applies ``minimum``/``maximum`` to booleans (Python
``bool`` is an ``int``) where lash skips them; a schema bounding a field that
also admits booleans is the only case where the two can disagree.

``enum`` is checked here, not by the library: lash compares ``serde_json``
values, where ``1 != 1.0`` and ``true != 1``, and Python's ``==`` does not.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import fastjsonschema
import msgspec

from lash_streams.errors import InvalidPayload
from lash_streams.model import LashSchema
from lash_streams.model._codec import canonical_json

_TYPES = frozenset({"null", "boolean", "string", "integer", "number", "array", "object"})
_COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems")
_INTERNAL_ARGUMENT = "^__session_id__$"
# Draft 04: its ``integer`` is Python ``int`` only, so ``1.0`` is rejected as lash does.
_DRAFT_04 = "http://json-schema.org/draft-04/schema#"


def translate(schema: Any) -> dict[str, Any]:
    """A lash subset schema as an equivalent standard draft-04 schema."""
    if not isinstance(schema, dict):
        return {}
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        branches = schema.get("oneOf")
    if isinstance(branches, list):
        return {"anyOf": [translate(branch) for branch in branches]}
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _TYPES:
        out["type"] = kind
    elif isinstance(kind, list):
        names = [k for k in kind if isinstance(k, str)]
        if names and all(k in _TYPES for k in names):
            out["type"] = names
        elif not names:
            out["not"] = {}  # an array naming no type matches nothing in lash
    for keyword in ("minimum", "maximum"):  # lash reads them as f64: any number
        value = schema.get(keyword)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[keyword] = value
    for keyword in _COUNT_KEYWORDS:  # lash reads them as u64: non-negative integers only
        value = schema.get(keyword)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            out[keyword] = value
    if isinstance(schema.get("items"), dict):
        out["items"] = translate(schema["items"])
    required = schema.get("required")
    if isinstance(required, list):
        names = [r for r in required if isinstance(r, str)]
        if names:
            out["required"] = names
    properties = schema.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {name: translate(sub) for name, sub in properties.items()}
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            out["additionalProperties"] = translate(additional)
            out["patternProperties"] = {_INTERNAL_ARGUMENT: {}}
        elif additional is not True:
            out["additionalProperties"] = False
            out["patternProperties"] = {_INTERNAL_ARGUMENT: {}}
            forbidden = [
                r for r in out.get("required", []) if r not in properties and r != "__session_id__"
            ]
            if forbidden:
                # Required yet forbidden: lash accepts the schema and rejects
                # every object, which draft-04 can only say this way.
                for key in ("required", "properties", "additionalProperties", "patternProperties"):
                    out.pop(key)
                out["not"] = {"type": "object"}
    return out


def _same_json(a: Any, b: Any) -> bool:
    """serde_json ``Value`` equality: types must match (1 != 1.0, true != 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, float) and isinstance(b, float):
        return a == b
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _enum_error(schema: Any, value: Any, path: str) -> str | None:
    """lash's enum rule, walked alongside the structure the library checks."""
    if not isinstance(schema, dict):
        return None
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        branches = schema.get("oneOf")
    if isinstance(branches, list):
        return (
            None
            if any(_enum_error(b, value, path) is None for b in branches)
            else (f"{path or 'arguments'}: no branch matched")
        )
    options = schema.get("enum")
    if isinstance(options, list) and not any(_same_json(o, value) for o in options):
        shown = ", ".join(canonical_json(o).decode() for o in options)
        return (
            f"{path or 'arguments'}: expected one of {shown}, got {canonical_json(value).decode()}"
        )
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            error = _enum_error(schema["items"], item, f"{path}[{index}]")
            if error:
                return error
    properties = schema.get("properties")
    if isinstance(value, dict) and isinstance(properties, dict):
        for name, sub in properties.items():
            if name in value:
                error = _enum_error(sub, value[name], f"{path}.{name}" if path else name)
                if error:
                    return error
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for name, item in value.items():
                if name not in properties and name != "__session_id__":
                    error = _enum_error(additional, item, f"{path}.{name}" if path else name)
                    if error:
                        return error
    return None


@lru_cache(maxsize=1024)
def _compiled(schema_json: bytes) -> Any:
    standard = {**translate(msgspec.json.decode(schema_json)), "$schema": _DRAFT_04}
    return fastjsonschema.compile(standard, use_default=False)


def _has_enum(schema: Any) -> bool:
    return b'"enum"' in canonical_json(schema)


def validate_payload(
    schema: LashSchema, payload: Any, *, event_type: str, process_id: str | None = None
) -> None:
    """Raise ``InvalidPayload`` ("invalid `<t>` payload: <detail>") on a mismatch."""
    if schema.schema == {}:
        return
    key = canonical_json(schema.schema)
    try:
        _compiled(key)(payload)
    except fastjsonschema.JsonSchemaValueException as err:
        detail = err.message.replace("data.", "", 1).replace("data ", "arguments ", 1)
        raise InvalidPayload(
            f"invalid `{event_type}` payload: {detail}", process_id=process_id
        ) from None
    if _has_enum(schema.schema):
        error = _enum_error(schema.schema, payload, "")
        if error is not None:
            raise InvalidPayload(f"invalid `{event_type}` payload: {error}", process_id=process_id)
