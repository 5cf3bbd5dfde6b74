"""Say out loud what lash does silently to a payload schema (docs/schemas.md).

lash accepts any JSON as a payload schema and reads only a small subset of
JSON Schema (see :mod:`lash_streams.semantics.schema`). Authors who write
``pattern`` or ``format`` expect them checked, and an object schema with
``properties`` rejects unknown properties unless it says otherwise. Neither is
an error (lash accepts such schemas, and so must we), so the schema module
calls :func:`warn_about` once per distinct schema it compiles, and this module
logs one line naming what the schema relies on in vain.

The walk follows exactly the subschemas lash reads (``properties``, ``items``,
``additionalProperties`` beside ``properties``, ``anyOf``/``oneOf``
branches): a keyword inside an ignored one is ignored along with it. It is
iterative, so a schema deep enough to compile is never too deep to walk.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("lash_streams.schema")

#: Keywords lash reads.
READ = frozenset(
    {
        "type", "enum", "minimum", "maximum", "minLength", "maxLength", "minItems",
        "maxItems", "items", "required", "properties", "additionalProperties", "anyOf", "oneOf",
    }
)  # fmt: skip
#: Keywords lash ignores that validate nothing anywhere, so ignoring them loses
#: nothing; warning about them would bury the warnings that matter.
ANNOTATIONS = frozenset(
    {
        "$schema", "$id", "id", "$comment", "title", "description", "default", "examples",
        "example", "deprecated", "readOnly", "writeOnly", "definitions", "$defs",
    }
)  # fmt: skip
TYPE_NAMES = frozenset({"null", "boolean", "string", "integer", "number", "array", "object"})
COUNTS = ("minLength", "maxLength", "minItems", "maxItems")
_U64_MAX = 2**64 - 1
_INTERNAL_NAME = "__session_id__"
#: Findings listed per kind before "and N more": the line must stay readable.
SHOWN = 8


@dataclass
class Findings:
    """What a schema relies on in vain, each entry ``"<what> at <JSON pointer>"``."""

    ignored: list[str] = field(default_factory=list)
    accepts_anything: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    rejects_every_object: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.ignored or self.accepts_anything or self.closed or self.rejects_every_object
        )


def _pointer(base: str, *tokens: str | int) -> str:
    escaped = (str(t).replace("~", "~0").replace("/", "~1") for t in tokens)
    return "/".join((base, *escaped))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX


def _unusable(keyword: str, value: Any) -> str | None:
    """Why lash skips a subset keyword with this value, or ``None`` if it reads it."""
    if keyword in ("minimum", "maximum") and not _is_number(value):
        return "not a number"
    if keyword in COUNTS and not _is_count(value):
        return "not a whole number >= 0"
    if keyword in ("enum", "required") and not isinstance(value, list):
        return "not an array"
    if keyword == "properties" and not isinstance(value, dict):
        return "not an object"
    if keyword == "items" and not isinstance(value, dict) and value is not True:
        return "not a single schema"
    if keyword == "type" and not isinstance(value, str | list):
        return "not a name or a list of names"
    return None


def findings(schema: Any) -> Findings:
    """Everything in ``schema`` lash ignores or reads unlike standard JSON Schema."""
    found = Findings()
    stack: list[tuple[Any, str]] = [(schema, "#")]
    while stack:
        node, where = stack.pop()
        children = _visit(node, where, found)
        stack.extend(reversed(children))  # reversed: reported in document order
    return found


def _visit(node: Any, where: str, found: Findings) -> list[tuple[Any, str]]:
    """Record ``node``'s findings; return the subschemas lash reads in it."""
    if not isinstance(node, dict):
        # lash reads any schema that is not a JSON object, `false` included, as "anything".
        if node is not True:
            found.accepts_anything.append(f"the schema `{json.dumps(node)}` at {where}")
        return []
    branches_key = "anyOf" if "anyOf" in node else "oneOf" if "oneOf" in node else None
    if branches_key is not None and isinstance(node[branches_key], list):
        # A matching branch accepts the value: nothing beside the branches is read.
        for key in node:
            if key != branches_key and key not in ANNOTATIONS:
                found.ignored.append(f"`{key}` (beside `{branches_key}`) at {where}")
        return [(b, _pointer(where, branches_key, i)) for i, b in enumerate(node[branches_key])]
    if branches_key is not None:
        found.ignored.append(f"`{branches_key}` (not an array) at {where}")
        if branches_key == "anyOf" and "oneOf" in node:
            found.ignored.append(f"`oneOf` (hidden by `anyOf`) at {where}")
    for key, value in node.items():
        if key in ANNOTATIONS or key in ("anyOf", "oneOf"):
            continue
        if key not in READ:
            found.ignored.append(f"`{key}` at {where}")
            continue
        reason = _unusable(key, value)
        if reason is not None:
            found.ignored.append(f"`{key}` ({reason}) at {where}")
    _check_type(node.get("type"), where, found)
    children: list[tuple[Any, str]] = []
    properties = node.get("properties")
    additional = node.get("additionalProperties")
    if isinstance(properties, dict):
        children.extend((sub, _pointer(where, "properties", n)) for n, sub in properties.items())
        _check_closed(node, properties, where, found)
        if isinstance(additional, dict):
            children.append((additional, _pointer(where, "additionalProperties")))
    elif "additionalProperties" in node and additional is not True and additional != {}:
        found.ignored.append(f"`additionalProperties` (without `properties`) at {where}")
    if isinstance(node.get("items"), dict):
        children.append((node["items"], _pointer(where, "items")))
    return children


def _check_type(kind: Any, where: str, found: Findings) -> None:
    names = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    unknown = [n for n in names if isinstance(n, str) and n not in TYPE_NAMES]
    if unknown:
        listed = ", ".join(f"`{n}`" for n in unknown)
        found.accepts_anything.append(f"unknown type {listed} at {where}")


def _check_closed(
    node: dict[str, Any], properties: dict[str, Any], where: str, found: Findings
) -> None:
    additional = node.get("additionalProperties")
    if additional is True or isinstance(additional, dict):
        return
    if additional is not False:  # `false` says it; anything else closes silently
        found.closed.append(where)
    required = node.get("required")
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and name not in properties and name != _INTERNAL_NAME:
            found.rejects_every_object.append(f"required `{name}` at {where}")


def _listed(entries: list[str]) -> str:
    shown = ", ".join(entries[:SHOWN])
    return shown if len(entries) <= SHOWN else f"{shown} and {len(entries) - SHOWN} more"


def message(found: Findings) -> str:
    """One line, plain words, pointing to the documentation."""
    parts: list[str] = []
    if found.ignored:
        parts.append(f"lash ignores (does not validate) {_listed(found.ignored)}")
    if found.accepts_anything:
        parts.append(f"accepts any value: {_listed(found.accepts_anything)}")
    if found.closed:
        parts.append(
            "an object schema with `properties` and no `additionalProperties` rejects "
            f"unknown properties at {_listed(found.closed)}"
        )
    if found.rejects_every_object:
        parts.append(
            "rejects every object (a required name missing from `properties` of a closed "
            f"object): {_listed(found.rejects_every_object)}"
        )
    return f"payload schema: {'; '.join(parts)}; see docs/schemas.md"


def warn_about(schema: Any) -> None:
    """Log one warning for ``schema`` if it relies on something lash ignores."""
    found = findings(schema)
    if found:
        log.warning("%s", message(found))
