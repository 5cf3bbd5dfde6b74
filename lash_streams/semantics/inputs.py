"""Checks on what a call is about to store, before any I/O (issue 15: a value
is never written that cannot be read back).

- ``require``: the argument's Python type, else ``InvalidType`` (a
  ``TypeError``) naming it;
- ``check_json``: plain JSON data as lash's serde ``Value`` holds it: ``None``,
  bools, ints from -2**63 to 2**64 - 1, finite floats, strings of valid UTF-8,
  lists and tuples, dicts with string keys, nested at most ``MAX_DEPTH`` deep
  (serde_json's recursion limit) -- no sets, bytes, dates, decimals or objects that an encoder would
  convert silently or refuse late;
- ``wire_bytes``: a model value encoded to lash's JSON and decoded back as its
  type, so out-of-range integers, wrong shapes and bad raw JSON are refused
  with the path of the offending field.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from typing import Any, TypeVar

import msgspec

from lash_streams.errors import DecodeError, InvalidType, InvalidValue, LashStreamsError
from lash_streams.model import _codec
from lash_streams.model._codec import decode, encode

#: serde_json refuses JSON nested deeper than this (its recursion limit).
MAX_DEPTH = 128

#: The integers a serde_json ``Value`` holds as integers (i64 and u64).
_I64_MIN, _U64_MAX = -(2**63), 2**64 - 1

T = TypeVar("T")


def require(value: Any, expected: Any, name: str) -> None:
    """``InvalidType`` (a ``TypeError``) unless ``value`` is an instance of ``expected``."""
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
        options = expected if isinstance(expected, tuple) else getattr(expected, "__args__", None)
        names = (
            " or ".join(t.__name__ for t in options)
            if options
            else getattr(expected, "__name__", str(expected))
        )
        raise InvalidType(f"{name} must be {names}, got {type(value).__name__}")


def require_u64(value: Any, name: str) -> int:
    """An int in lash's u64 range, else ``InvalidType``/``InvalidValue``."""
    require(value, int, name)
    if not 0 <= value < 2**64:
        raise InvalidValue(f"{name} must be between 0 and 2**64 - 1, got {value}")
    return int(value)


#: The largest millisecond setting (about 3 years): Redis takes idle times and
#: expiries up to 2**63 only, and refuses more late, mid-call.
MAX_SETTING_MS = 10**11


def require_at_least(value: Any, minimum: int, name: str, maximum: int = MAX_SETTING_MS) -> int:
    """An int (not a bool) in ``[minimum, maximum]``, else ``InvalidType`` /
    ``InvalidValue``: a setting such as ``batch`` or ``lease_ms`` checked
    before it is used."""
    require(value, int, name)
    if not minimum <= value <= maximum:
        raise InvalidValue(f"{name} must be between {minimum} and {maximum}, got {value}")
    return int(value)


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not plain JSON data, or None when it is."""
    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    if value is None or isinstance(value, bool):
        return None
    kind = type(value)
    if kind is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a string that is not valid UTF-8 (a lone surrogate)"
        return None
    if kind is int:
        if _I64_MIN <= value <= _U64_MAX:
            return None
        # serde_json holds no such integer: Rust refuses to serialize one and
        # reads its text as a float, so a Rust host would rewrite the event.
        return (
            f"an integer outside -2**63 to 2**64 - 1 (a {value.bit_length()}-bit one; "
            "serde_json reads such text as a float: pass a float if that is meant)"
        )
    if kind is float:
        return None if math.isfinite(value) else f"a non-finite number ({value})"
    # Containers check their plain leaves in place (a call per leaf is most of
    # the cost of a payload's check); the depth rule still counts each leaf.
    leaf_ok = depth < MAX_DEPTH
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"a key of type {type(key).__name__} (JSON keys are strings)"
            if not (leaf_ok and (key.isascii() or _utf8(key))):
                problem = json_problem(key, depth + 1)
                if problem is not None:
                    return problem
            if not (leaf_ok and _plain_leaf(item)):
                problem = json_problem(item, depth + 1)
                if problem is not None:
                    return problem
        return None
    if kind is list or kind is tuple:
        for item in value:
            if not (leaf_ok and _plain_leaf(item)):
                problem = json_problem(item, depth + 1)
                if problem is not None:
                    return problem
        return None
    if isinstance(value, msgspec.Raw):
        try:
            return json_problem(msgspec.json.decode(value), depth)
        except msgspec.DecodeError as err:
            return f"raw JSON that does not parse ({err})"
    if isinstance(value, msgspec.Struct):  # a model value: each field
        if seen_clean(_JSON_CLEAN, value):
            return None
        for field in value.__struct_fields__:
            item = getattr(value, field)
            if item is msgspec.UNSET:  # left out of the JSON
                continue
            problem = json_problem(item, depth + 1)
            if problem is not None:
                return f"{problem} in `{field}`"
        remember_clean(_JSON_CLEAN, value)
        return None
    if isinstance(value, enum.Enum):
        return None
    hook = _model_encoder(value)
    if hook is not None:  # a model type with its own serde form
        return json_problem(hook(value), depth)
    if isinstance(value, int | float | str | dict | list):  # subclasses: as their base
        return json_problem(_base(value), depth)
    return f"a value of type {type(value).__name__}"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain_leaf(value: Any) -> bool:
    """A leaf ``json_problem`` passes: None, a bool, an int, a finite float, a
    str that encodes (False sends it the long way, which says why)."""
    kind = type(value)
    if kind is str:
        return value.isascii() or _utf8(value)
    if kind is int:
        return bool(_I64_MIN <= value <= _U64_MAX)
    if kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    return False


# Frozen model values checked clean, by identity: the event types a fleet
# registers with are the same objects on every registration (and lash's
# defaults always are), so they are walked once. Only frozen values: their
# fields cannot be rebound (bounded; the oldest go first).
_JSON_CLEAN: OrderedDict[int, Any] = OrderedDict()
_TYPES_CLEAN: OrderedDict[int, Any] = OrderedDict()
_CLEAN_CACHED = 4_096


def seen_clean(cache: OrderedDict[int, Any], value: Any) -> bool:
    return cache.get(id(value)) is value


def remember_clean(cache: OrderedDict[int, Any], value: Any) -> None:
    if not type(value).__struct_config__.frozen:
        return
    cache[id(value)] = value
    if len(cache) > _CLEAN_CACHED:
        cache.popitem(last=False)


def _model_encoder(value: Any) -> Any:
    for cls in type(value).__mro__:
        hook = _codec._encoders.get(cls)
        if hook is not None:
            return hook
    return None


def _base(value: Any) -> Any:
    base: Any
    for base in (bool, int, float, str, dict, list):
        if isinstance(value, base):
            return base(value)
    return value  # pragma: no cover


def mistyped_field(given: Any, decoded: Any, path: str = "$") -> str | None:
    """Where ``given`` holds a value of another type than the one lash reads
    back at the same place (an enum's string, a str where a struct goes), or
    None. Lists and tuples, ints and floats that read back equal, are alike."""
    if isinstance(decoded, enum.Enum):
        return None if type(given) is type(decoded) else path
    if isinstance(decoded, msgspec.Struct):
        if type(given) is not type(decoded):
            return path
        if seen_clean(_TYPES_CLEAN, given):
            return None
        for field in decoded.__struct_fields__:
            found = mistyped_field(
                getattr(given, field), getattr(decoded, field), f"{path}.{field}"
            )
            if found is not None:
                return found
        remember_clean(_TYPES_CLEAN, given)
        return None
    if isinstance(decoded, list) and isinstance(given, list | tuple):
        for index, (a, b) in enumerate(zip(given, decoded, strict=False)):
            found = mistyped_field(a, b, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return None


def wire_bytes(value: Any, expected: Any, name: str) -> bytes:
    """``value`` as lash's JSON, checked to decode back as ``expected``;
    ``TypeError`` for another Python type, ``InvalidValue`` (with the field's
    path) for a value lash could not read back."""
    require(value, expected, name)
    problem = json_problem(value)
    if problem is not None:
        raise InvalidValue(f"{name} holds {problem}")
    try:
        data = encode(value)
    except (msgspec.EncodeError, TypeError, ValueError, OverflowError, RecursionError) as err:
        raise InvalidValue(f"{name}: cannot be stored as JSON: {err}") from None
    except NotImplementedError as err:
        raise InvalidValue(f"{name}: {err}") from None
    try:
        decoded = decode(data, expected)
    except (DecodeError, LashStreamsError) as err:
        raise InvalidValue(f"{name} would not read back: {err}") from None
    wrong = mistyped_field(value, decoded)
    if wrong is not None:
        raise InvalidType(
            f"{name}: the value at `{wrong}` is not of the type lash reads back there"
        )
    return data


__all__ = [
    "MAX_DEPTH",
    "json_problem",
    "mistyped_field",
    "remember_clean",
    "require",
    "require_at_least",
    "require_u64",
    "seen_clean",
    "wire_bytes",
]
