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

``enum`` members become typed alternatives, because lash compares
``serde_json`` values, where ``1 != 1.0`` and ``true != 1`` (members nested in
arrays or objects still compare with Python's ``==``).
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


def _enum_option(value: Any) -> dict[str, Any]:
    """One enum member as a typed schema: lash compares ``serde_json`` values,
    where ``1 != 1.0`` and ``true != 1``; Python's ``==`` alone would not."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean", "enum": [value]}
    if isinstance(value, int):
        return {"type": "integer", "enum": [value]}
    if isinstance(value, float):
        return {"type": "number", "not": {"type": "integer"}, "enum": [value]}
    if isinstance(value, str):
        return {"type": "string", "enum": [value]}
    return {"enum": [value]}


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
    options = schema.get("enum")
    if isinstance(options, list):
        out["allOf"] = [{"anyOf": [_enum_option(o) for o in options]} if options else {"not": {}}]
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


@lru_cache(maxsize=1024)
def _compiled(schema_json: bytes) -> Any:
    standard = {**translate(msgspec.json.decode(schema_json)), "$schema": _DRAFT_04}
    return fastjsonschema.compile(standard, use_default=False)


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
