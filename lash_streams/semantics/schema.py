"""Payload schemas: lash's JSON-Schema subset (ET-4), enforced by fastjsonschema.

lash validates with its own reader of a small JSON-Schema subset. We translate
a lash schema into a standard draft-04 schema with the same meaning, compile it
once (cached by canonical schema JSON) and let fastjsonschema decide. Quirks the
translation reproduces, each in its own helper below:

- keywords outside the subset (``pattern``, ``format``, ``$ref``, ...) are
  ignored, as is every keyword of a schema that is not a JSON object (lash
  reads ``false`` as "anything goes");
- ``anyOf`` (else ``oneOf``) short-circuits: a matching branch accepts the
  value and the schema's other keywords are never read; ``oneOf`` is ``anyOf``;
- ``type`` names outside the seven known ones match everything; a type list
  holding no string matches nothing; ``integer`` is an integer *literal*
  within serde_json's i64/u64 range (``1.0`` is not one; a larger literal
  is an f64 to serde_json);
- ``enum`` compares serde_json values, where ``1 != 1.0`` and ``true != 1``
  (Python's ``==`` says otherwise, even inside arrays and objects);
- ``minimum``/``maximum`` judge numbers only (Python's ``bool`` is an ``int``)
  and compare as f64, so an integer beyond 2**53 is rounded first;
- length/count keywords are read as u64 (``2.0`` or ``-1`` is ignored);
- ``additionalProperties`` is read only next to ``properties``; there,
  anything but ``true`` or a schema rejects unknown properties (even when
  absent), always exempting lash's internal ``__session_id__`` argument; a
  name both required and so forbidden rejects every object (a schema
  fastjsonschema would refuse to compile, so it is said another way).

A schema relying on any of these quirks is accepted, with one warning when it
is compiled (:mod:`lash_streams.semantics.schema_warnings`, docs/schemas.md).

fastjsonschema's errors name the translated schema, not the author's, so the
error detail comes from :func:`explain`, which words the first violation as
lash does ("<path>: expected <what>, got <value>").
"""

from __future__ import annotations

import math
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import fastjsonschema
import msgspec

from lash_streams.errors import InvalidPayload, InvalidRegistration
from lash_streams.model import LashSchema
from lash_streams.model._codec import canonical_json, encode
from lash_streams.semantics.schema_warnings import warn_about

_DRAFT_04 = "http://json-schema.org/draft-04/schema#"
_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1
_EXACT = 2.0**53  # below this every integer is an exact f64
_NEVER: dict[str, Any] = {"not": {}}
# `\A..\Z`, not `^..$`: Python's `$` also matches before a trailing newline.
_INTERNAL_ARGUMENT = r"\A__session_id__\Z"
_INTERNAL_NAME = "__session_id__"

_TYPE_SCHEMAS: dict[str, dict[str, Any]] = {
    "null": {"type": "null"},
    "boolean": {"type": "boolean"},
    "string": {"type": "string"},
    "integer": {"type": "integer", "minimum": _I64_MIN, "maximum": _U64_MAX},
    "number": {"type": "number"},
    "array": {"type": "array"},
    "object": {"type": "object"},
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_u64(value: Any) -> int | None:
    """serde_json ``Value::as_u64``."""
    return value if _is_int(value) and 0 <= value <= _U64_MAX else None


def _as_f64(value: Any) -> float | None:
    """serde_json ``Value::as_f64``: any number, never a boolean."""
    if _is_int(value):
        try:
            return float(value)
        except OverflowError:  # serde_json refuses such literals; saturate
            return math.inf if value > 0 else -math.inf
    return value if isinstance(value, float) else None


def _branches(schema: dict[str, Any]) -> list[Any] | None:
    """``anyOf`` if present (an array or not), else ``oneOf``: a non-array
    ``anyOf`` hides ``oneOf`` in lash."""
    found = schema["anyOf"] if "anyOf" in schema else schema.get("oneOf")
    return found if isinstance(found, list) else None


# --- translation ---------------------------------------------------------------------


def _enum_schema(candidates: list[Any]) -> dict[str, Any]:
    """Members grouped by serde_json kind, so equality never crosses kinds."""
    groups: dict[str, list[Any]] = {}
    options: list[dict[str, Any]] = []
    for value in candidates:
        if value is None:
            options.append({"type": "null"})
        elif isinstance(value, bool):
            groups.setdefault("boolean", []).append(value)
        elif _is_int(value) and _I64_MIN <= value <= _U64_MAX:
            groups.setdefault("integer", []).append(value)
        elif _is_int(value) or isinstance(value, float):
            options.append({"type": "number", "not": {"type": "integer"}, "enum": [_as_f64(value)]})
            if _is_int(value):  # the same out-of-range literal parses to the same f64
                options.append({"type": "integer", "enum": [value]})
        elif isinstance(value, str):
            groups.setdefault("string", []).append(value)
        else:
            options.append(_exact(value))
    for kind, members in groups.items():
        options.append({"type": kind, "enum": members})
    return {"anyOf": options} if options else dict(_NEVER)


def _exact(value: Any) -> dict[str, Any]:
    """A schema matching exactly the serde_json values equal to ``value``."""
    if isinstance(value, list):
        if not value:
            return {"type": "array", "maxItems": 0}
        return {
            "type": "array",
            "items": [_exact(item) for item in value],
            "additionalItems": False,
            "minItems": len(value),
        }
    if isinstance(value, dict):
        if not value:
            return {"type": "object", "maxProperties": 0}
        return {
            "type": "object",
            "properties": {key: _exact(item) for key, item in value.items()},
            "required": list(value),
            "additionalProperties": False,
        }
    return _enum_schema([value])


def _type_schema(kind: Any) -> dict[str, Any] | None:
    """``None`` when ``kind`` constrains nothing."""
    if isinstance(kind, str):
        return _TYPE_SCHEMAS.get(kind)
    if not isinstance(kind, list):
        return None
    names = list(dict.fromkeys(k for k in kind if isinstance(k, str)))
    if any(name not in _TYPE_SCHEMAS for name in names):
        return None
    if not names:
        return dict(_NEVER)
    if len(names) == 1:
        return _TYPE_SCHEMAS[names[0]]
    return {"anyOf": [_TYPE_SCHEMAS[name] for name in names]}


def _largest_int_at_most(limit: float) -> int:
    """The largest integer whose f64 rounding is ``<= limit`` (``|limit| >= 2**53``,
    so ``limit`` is integral and the answer sits at the round-half-even midpoint)."""
    base = int(limit)
    above = math.nextafter(limit, math.inf)
    if math.isinf(above):
        return base
    half = base + (int(above) - base) // 2
    return half if float(half) <= limit else half - 1


def _upper(limit: float) -> dict[str, Any]:
    """Reject numbers whose f64 exceeds ``limit``."""
    if math.isinf(limit):
        return {} if limit > 0 else {"not": {"type": "number"}}
    if abs(limit) < _EXACT:  # exact comparison then agrees with f64 rounding
        return {"maximum": limit}
    return {
        "anyOf": [
            {"type": "integer", "maximum": _largest_int_at_most(limit)},
            {"not": {"type": "integer"}, "maximum": limit},
        ]
    }


def _lower(limit: float) -> dict[str, Any]:
    """Reject numbers whose f64 is below ``limit`` (mirror of :func:`_upper`)."""
    if math.isinf(limit):
        return {} if limit < 0 else {"not": {"type": "number"}}
    if abs(limit) < _EXACT:
        return {"minimum": limit}
    return {
        "anyOf": [
            {"type": "integer", "minimum": -_largest_int_at_most(-limit)},
            {"not": {"type": "integer"}, "minimum": limit},
        ]
    }


def _bounds_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    maximum, minimum = _as_f64(schema.get("maximum")), _as_f64(schema.get("minimum"))
    bounds = [_upper(maximum)] if maximum is not None else []
    if minimum is not None:
        bounds.append(_lower(minimum))
    if not bounds:
        return None
    # fastjsonschema bounds Python ints, bools included; lash bounds numbers only.
    return {"anyOf": [{"not": {"type": "number"}}, {"allOf": bounds}]}


def translate(schema: Any) -> dict[str, Any]:
    """A lash subset schema as an equivalent standard draft-04 schema."""
    if not isinstance(schema, dict):
        return {}
    branches = _branches(schema)
    if branches is not None:
        return {"anyOf": [translate(b) for b in branches]} if branches else dict(_NEVER)
    out: dict[str, Any] = {}
    conjuncts: list[dict[str, Any]] = []
    if isinstance(schema.get("enum"), list):
        conjuncts.append(_enum_schema(schema["enum"]))
    type_schema = _type_schema(schema.get("type"))
    if type_schema is not None:
        conjuncts.append(type_schema)
    bounds = _bounds_schema(schema)
    if bounds is not None:
        conjuncts.append(bounds)
    for keyword in ("minLength", "maxLength", "minItems", "maxItems"):
        count = _as_u64(schema.get(keyword))
        if count is not None:
            out[keyword] = count
    if isinstance(schema.get("items"), dict):
        out["items"] = translate(schema["items"])
    if isinstance(schema.get("required"), list):
        names = list(dict.fromkeys(r for r in schema["required"] if isinstance(r, str)))
        if names:
            out["required"] = names
    properties = schema.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {name: translate(sub) for name, sub in properties.items()}
        additional = schema.get("additionalProperties")
        closed = additional is not True and not isinstance(additional, dict)
        extra = translate(additional) if isinstance(additional, dict) else {}
        if closed or extra:
            out["additionalProperties"] = False if closed else extra
            out["patternProperties"] = {_INTERNAL_ARGUMENT: {}}
        forbidden = [
            name
            for name in out.get("required", [])
            if name not in properties and name != _INTERNAL_NAME
        ]
        if closed and forbidden:
            # Required yet never allowed: lash rejects every object, and
            # fastjsonschema refuses to compile the schema that says so.
            for keyword in ("required", "properties", "additionalProperties", "patternProperties"):
                del out[keyword]
            conjuncts.append({"not": {"type": "object"}})
    if conjuncts:
        out["allOf"] = conjuncts
    return out


#: Distinct schemas whose compiled validator is kept. A fleet declares a few
#: per tool; the bound is for a namespace of thousands of distinct ones.
VALIDATOR_CACHE_SIZE = 16_384


@lru_cache(maxsize=VALIDATOR_CACHE_SIZE)
def _validator(schema_json: bytes) -> Callable[[Any], Any]:
    raw = msgspec.json.decode(schema_json)
    standard = {**translate(raw), "$schema": _DRAFT_04}
    validate: Callable[[Any], Any] = fastjsonschema.compile(standard, use_default=False)
    # Here, once per distinct schema rather than per append; after compiling, so a
    # schema refused at registration is reported by its error alone.
    warn_about(raw)
    return validate


# The same LashSchema object comes back on every append of a type (the store
# caches registrations), so its validator is found by identity first, without
# encoding the schema again. The entry holds the schema, so its id stays its own.
_by_schema: OrderedDict[int, tuple[LashSchema, Callable[[Any], Any]]] = OrderedDict()


def _validator_of(schema: LashSchema, raw: dict[str, Any]) -> Callable[[Any], Any]:
    found = _by_schema.get(id(schema))
    if found is not None and found[0] is schema:
        _by_schema.move_to_end(id(schema))
        return found[1]
    validate = _validator(canonical_json(raw))
    _by_schema[id(schema)] = (schema, validate)
    if len(_by_schema) > VALIDATOR_CACHE_SIZE:
        _by_schema.popitem(last=False)
    return validate


def check_schema(schema: LashSchema, event_type: str, process_id: str) -> None:
    """At registration: a payload schema the validator cannot compile would
    register, then fail every append of its type (fastjsonschema generates
    Python code; a deep enough schema does not compile)."""
    raw = schema.schema
    if not isinstance(raw, dict) or not raw:
        return
    try:
        _validator_of(schema, raw)
    except Exception as err:
        raise InvalidRegistration(
            f"process `{process_id}` event type `{event_type}` has a payload schema that "
            f"cannot be compiled: {type(err).__name__}: {err}",
            process_id=process_id,
        ) from None


def validate_payload(
    schema: LashSchema, payload: Any, *, event_type: str, process_id: str | None = None
) -> None:
    """EV-2 step 6: raise ``InvalidPayload`` ("invalid `<t>` payload: <detail>")
    unless ``payload`` satisfies ``schema``."""
    raw = schema.schema
    if not isinstance(raw, dict) or not raw:
        return
    try:
        _validator_of(schema, raw)(payload)
    except fastjsonschema.JsonSchemaValueException as err:
        detail = explain(raw, payload) or f"arguments: {err.message}"
        raise InvalidPayload(
            f"invalid `{event_type}` payload: {detail}", process_id=process_id
        ) from None


# --- lash's error wording ----------------------------------------------------------------


def _serde_number(value: Any) -> Any:
    return float(value) if _is_int(value) and not _I64_MIN <= value <= _U64_MAX else value


def serde_equal(left: Any, right: Any) -> bool:
    """serde_json ``Value`` equality: numbers of different kinds never match."""
    left, right = _serde_number(left), _serde_number(right)
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(map(serde_equal, left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(
            serde_equal(v, right[k]) for k, v in left.items()
        )
    return bool(left == right)


def _matches_type(kind: Any, value: Any) -> bool:
    if isinstance(kind, list):
        return any(_matches_single(k, value) for k in kind if isinstance(k, str))
    return _matches_single(kind, value) if isinstance(kind, str) else True


def _matches_single(kind: str, value: Any) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "null": lambda v: v is None,
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: _is_int(v) and _I64_MIN <= v <= _U64_MAX,
        "number": lambda v: _as_f64(v) is not None,
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    check = checks.get(kind)
    return check(value) if check is not None else True


def _debug_str(text: str) -> str:
    """Rust's ``{:?}`` of a str (grapheme-extend approximated by Mn/Me)."""
    out = ['"']
    named = {"\0": "\\0", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", '"': '\\"'}
    for ch in text:
        if ch in named:
            out.append(named[ch])
            continue
        category = unicodedata.category(ch)
        hidden = category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs") and ch != " "
        out.append(f"\\u{{{ord(ch):x}}}" if hidden or category in ("Mn", "Me") else ch)
    out.append('"')
    return "".join(out)


def _display(value: Any) -> str:
    return _debug_str(value) if isinstance(value, str) else encode(value).decode("utf-8")


def _display_path(path: str) -> str:
    return path or "arguments"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _expected(schema: dict[str, Any]) -> str:
    parts: list[str] = []
    if "type" in schema:
        kind = schema["type"]
        if isinstance(kind, str):
            parts.append(kind)
        elif isinstance(kind, list):
            parts.append(" or ".join(k for k in kind if isinstance(k, str)))
        else:
            parts.append("valid value")
    elif "anyOf" in schema or "oneOf" in schema:
        parts.append("matching schema")
    for keyword, label in (
        ("minimum", ">= "),
        ("maximum", "<= "),
        ("minLength", "length >= "),
        ("maxLength", "length <= "),
        ("minItems", "items >= "),
        ("maxItems", "items <= "),
    ):
        if keyword in schema:
            parts.append(label + _display(schema[keyword]))
    return " ".join(parts) if parts else "valid value"


def explain(schema: Any, value: Any, path: str = "") -> str | None:
    """The first violation in lash's check order and wording, or ``None``."""
    if not isinstance(schema, dict):
        return None
    mismatch = f"{_display_path(path)}: expected {_expected(schema)}, got {_display(value)}"
    branches = _branches(schema)
    if branches is not None:
        return None if any(explain(b, value, path) is None for b in branches) else mismatch
    enum = schema.get("enum")
    if isinstance(enum, list) and not any(serde_equal(c, value) for c in enum):
        options = ", ".join(_display(c) for c in enum)
        return f"{_display_path(path)}: expected one of {options}, got {_display(value)}"
    if "type" in schema and not _matches_type(schema["type"], value):
        return mismatch
    number = _as_f64(value)
    if number is not None:
        maximum, minimum = _as_f64(schema.get("maximum")), _as_f64(schema.get("minimum"))
        if (maximum is not None and number > maximum) or (minimum is not None and number < minimum):
            return mismatch
    if isinstance(value, str):
        longest, shortest = _as_u64(schema.get("maxLength")), _as_u64(schema.get("minLength"))
        if (longest is not None and len(value) > longest) or (
            shortest is not None and len(value) < shortest
        ):
            return mismatch
    if isinstance(value, list):
        return _explain_array(schema, value, path)
    if isinstance(value, dict):
        return _explain_object(schema, value, path)
    return None


def _explain_array(schema: dict[str, Any], items: list[Any], path: str) -> str | None:
    most, fewest = _as_u64(schema.get("maxItems")), _as_u64(schema.get("minItems"))
    if (most is not None and len(items) > most) or (fewest is not None and len(items) < fewest):
        return f"{_display_path(path)}: expected {_expected(schema)}, got {len(items)} items"
    if "items" in schema:
        for index, item in enumerate(items):
            found = explain(schema["items"], item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _explain_object(schema: dict[str, Any], value: dict[str, Any], path: str) -> str | None:
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and name not in value:
            return f"{_join(path, name)}: required property missing"
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return None
    # serde_json maps iterate in key order (no `preserve_order`).
    for name in sorted(properties):
        if name in value:
            found = explain(properties[name], value[name], _join(path, name))
            if found is not None:
                return found
    additional = schema.get("additionalProperties")
    if additional is True:
        return None
    for name in sorted(value):
        if name == _INTERNAL_NAME or name in properties:
            continue
        if not isinstance(additional, dict):
            return f"{_join(path, name)}: unexpected property"
        found = explain(additional, value[name], _join(path, name))
        if found is not None:
            return found
    return None
