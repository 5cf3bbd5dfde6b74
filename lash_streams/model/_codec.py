"""serde_json-compatible JSON for the wire model.

lash's serde_json has no ``preserve_order``: JSON objects (``serde_json::Value``
maps, ``BTreeMap``) serialize with keys sorted by code point while structs keep
declaration order; ``order="deterministic"`` gives exactly that. msgspec's string
escaping (``\\n \\t \\r \\b \\f``, other controls as lowercase ``\\u00XX``; ``/``, DEL
and non-ASCII verbatim) equals serde_json's, and so do its float digits and layout
(shortest round-trip, ``1.0``, ``0.00001``, ``1e-6``); lash's serde_json 1.0.149 adds
a ``+`` to non-negative exponents (``1e+16``), which :func:`encode` puts in.
``tests/model`` pins all of it.

The enum representations msgspec lacks (externally and adjacently tagged) are
plain :class:`HookValue` classes that each model module teaches this codec
through :func:`register_hook`.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Callable
from typing import Annotated, Any, TypeAlias, TypeVar

import msgspec

from lash_streams.errors import DecodeError

#: Any JSON value (``serde_json::Value``).
JsonValue: TypeAlias = Any

#: Rust's unsigned integers: serde rejects negatives and overflow on decode.
#: msgspec bounds must fit an int64, so ``U64`` checks only the sign.
U64: TypeAlias = Annotated[int, msgspec.Meta(ge=0)]
U32: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]

T = TypeVar("T")


class Wire(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A lash wire struct. ``None``-defaulted fields are omitted when ``None``
    (serde ``skip_serializing_if = "Option::is_none"``); fields declared with
    :func:`always` are written even when they hold their default.

    ``gc=False``: instances are not tracked by Python's cyclic garbage
    collector. A job or an append builds dozens of them; tracked, they were
    most of the allocations that trigger a collection, whose pauses are the
    tail of a worker's latency. Frozen values of strings, numbers and other
    wire values form no cycle; only JSON data that contains itself could make
    one through them, and such data is refused (nested too deep) before
    anything is stored: at worst that one value is never freed."""


def always(factory: Callable[[], T]) -> T:
    """A serde ``#[serde(default)]`` field without ``skip_serializing_if``:
    filled in when missing on decode, yet always written.

    ``omit_defaults`` drops a field equal to a literal default and even an empty
    ``list``/``dict`` from a builtin factory; an opaque factory is never compared,
    so wrapping it keeps such a field on the wire."""

    def make() -> T:
        return factory()

    result: Any = msgspec.field(default_factory=make)
    return result  # type: ignore[no-any-return]


class HookValue:
    """Base of the hook-encoded enum variants: immutable, and equal/hashable by
    their serde JSON, so ``SelConst(1) != SelConst(1.0)`` like serde_json's
    ``Number`` and ``SelConst(True) != SelConst(1)`` unlike Python."""

    __slots__ = ()

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return _ENCODER.encode(self) == _ENCODER.encode(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, _ENCODER.encode(self)))

    def __repr__(self) -> str:
        names: tuple[str, ...] = type(self).__slots__
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({args})"


_encoders: dict[type, Callable[[Any], Any]] = {}
_decoders: dict[type, Callable[[Any], Any]] = {}


def register_hook(cls: type, encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> None:
    """Teach the codec a custom enum representation (its base class + hooks).
    ``decode`` raises ``ValueError`` (see :func:`fail`) on a malformed value."""
    _encoders[cls] = encode
    _decoders[cls] = decode


def _enc_hook(obj: Any) -> Any:
    for cls in type(obj).__mro__:
        hook = _encoders.get(cls)
        if hook is not None:
            return hook(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__} as lash JSON")


def _dec_hook(tp: type, obj: Any) -> Any:
    hook = _decoders.get(tp)
    if hook is None:
        raise NotImplementedError(f"cannot decode {tp!r}")
    return hook(obj)


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook, order="deterministic")
_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}
_AT = " - at `$"


# lash pins serde_json 1.0.149 (zmij): the same digits and layout as msgspec,
# but a non-negative exponent carries a "+" (1e+16, 1.7976931348623157e+308;
# 1e-7 stays). Outside strings, a digit, "e" and a digit only occur in such a
# float; a JSON string token is matched whole first, so its text is never
# rewritten. Cheap tests keep the common output (no such float) away from the
# rewrite: "e" and a digit (a pattern that starts with a literal is searched
# for by it; a character class first costs 10 ns a byte), then a number token
# (after "[", ":" or ",", or first; msgspec writes no spaces) holding a digit,
# "e" and a digit, found as "0e0" once every digit reads as 0, so the hex
# digests inside strings (wake ids) rarely reach the rewrite.
_E_DIGIT = re.compile(rb"e[0-9]")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_STRING_OR_EXPONENT = re.compile(rb'"(?:[^"\\]|\\.)*"|(?<=[0-9])e(?=[0-9])', re.DOTALL)


def _plus(match: re.Match[bytes]) -> bytes:
    token = match.group()
    return token if token[:1] == b'"' else b"e+"


def _number_with_exponent(zeroed: bytes) -> bool:
    """Whether a number token with a digit, "e" and a digit (after "[", ":" or
    ",", or first) may be in the output, read with every digit as 0: each
    "0e0" (a few per wake id) is looked at from its start. Wider than such a
    token (".0.0e0" passes), never narrower: the rewrite itself tells a number
    from a string's text."""
    at = zeroed.find(b"0e0")
    while at != -1:
        start = at
        while start > 0 and zeroed[start - 1] in b"0.":
            start -= 1
        if start > 0 and zeroed[start - 1] == 45:  # "-"
            start -= 1
        if start == 0 or zeroed[start - 1] in b"[:,":
            return True
        at = zeroed.find(b"0e0", at + 1)
    return False


def _lash_text(out: bytes) -> bytes:
    if _E_DIGIT.search(out) is None or not _number_with_exponent(out.translate(_DIGITS_AS_ZERO)):
        return out
    return _STRING_OR_EXPONENT.sub(_plus, out)


# serde_json (lash's pin, without arbitrary_precision or float_roundtrip)
# reads an integer past u64 as f64: the first digits that fit a u64, as f64,
# times the power of ten for the digits left (a second rounding, so not always
# the nearest f64), and "number out of range" when that overflows; one below
# i64 becomes f64 of its magnitude, negated; "-0" becomes -0.0. msgspec keeps
# all of them as exact ints, so their text is rewritten to serde's floats
# before msgspec reads it. Cheap tests keep that away from ordinary input:
# "-0" not followed by more of a number, or 19 digits in a row (read with
# every digit as 0); the rewrite matches string tokens whole so their text is
# never changed. Other numbers read as msgspec reads them, correctly rounded,
# so every float text either side writes reads back as written; serde's best
# effort reads about one in ten 17-digit texts one unit in the last place away,
# and that is not copied (docs/guarantees.md, "Replay keys").
_MINUS_ZERO = re.compile(rb"-0(?![0-9.eE])")
_NINETEEN_DIGITS = b"0" * 19
_STRING_OR_INTEGER = re.compile(
    rb'"(?:[^"\\]|\\.)*"|(?<![0-9.eE+\-])-?[0-9]+(?![0-9.eE])', re.DOTALL
)
_U64_MAX = 2**64 - 1


class _OutOfRange(ValueError):
    pass


def _serde_number(digits: bytes, negative: bool) -> int | float | None:
    """The number serde_json reads from an integer's text, when msgspec reads
    another (None: the same int)."""
    value = int(digits)
    if value <= _U64_MAX:
        if not negative or 0 < value <= 2**63:
            return None
        return -float(value)  # -0.0 for "-0"
    # No leading zeros in JSON: 20 digits fit a u64 unless they pass its max.
    kept = 20 if int(digits[:20]) <= _U64_MAX else 19
    rest = len(digits) - kept
    if rest > 308:
        raise _OutOfRange
    f = float(int(digits[:kept])) * float(f"1e{rest}")
    if math.isinf(f):
        raise _OutOfRange
    return -f if negative else f


def _serde_integer(match: re.Match[bytes]) -> bytes:
    token = match.group()
    if token[:1] == b'"' or (len(token) < 19 and token != b"-0"):
        return token
    negative = token[:1] == b"-"
    number = _serde_number(token[1:] if negative else token, negative)
    return token if number is None else _lash_text(_ENCODER.encode(number))


def _serde_integers(data: bytes | str) -> bytes | str:
    """``data`` with serde's floats for the integer text it reads as floats."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _MINUS_ZERO.search(raw) is None and _NINETEEN_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        return data
    return _STRING_OR_INTEGER.sub(_serde_integer, raw)


def encode(obj: Any) -> bytes:
    """serde_json bytes of a model value or of plain JSON builtins, with lash's
    float text."""
    return _lash_text(_ENCODER.encode(obj))


def canonical_json(value: Any) -> bytes:
    """GEN-3 canonical JSON (sorted keys, compact, UTF-8): the same encoder."""
    return encode(value)


def to_builtins(obj: Any) -> Any:
    """A model value as plain JSON builtins (the decoded serde JSON)."""
    return msgspec.json.decode(_ENCODER.encode(obj))


def fail(message: str, at: str = "") -> ValueError:
    """A hook's decode error; ``at`` is the path inside the hooked value
    (``".Busy.holder"``), joined to msgspec's outer path by :func:`decode`."""
    return ValueError(f"{message}{_AT}{at}`" if at else message)


def convert(obj: Any, tp: type[T], at: str = "") -> T:
    """Already-decoded JSON into ``tp``, for use inside decode hooks."""
    try:
        result: T = msgspec.convert(obj, tp, dec_hook=_dec_hook)
    except msgspec.ValidationError as err:
        message, path = _split_path(str(err))
        raise fail(message, at + path) from None
    return result


def _split_path(text: str) -> tuple[str, str]:
    """Peel msgspec's `` - at `$...` `` suffixes (outermost last) into one path."""
    path = ""
    while True:
        head, sep, tail = text.rpartition(_AT)
        if not sep or not tail.endswith("`") or "`" in tail[:-1]:
            return text, path
        path += tail[:-1]
        text = head


def _type_name(tp: Any) -> str:
    if isinstance(tp, types.UnionType):
        return " | ".join(_type_name(arg) for arg in tp.__args__)
    if isinstance(tp, type) and not isinstance(tp, types.GenericAlias):
        return tp.__name__
    return str(tp).replace("lash_streams.model.", "").replace("typing.", "")


def _decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(tp)
    if decoder is None:
        decoder = _DECODERS[tp] = msgspec.json.Decoder(tp, dec_hook=_dec_hook)
    return decoder


def decode(data: bytes | str, tp: type[T]) -> T:
    """Decode lash JSON into ``tp``. Malformed JSON, wrong types, missing
    fields and unknown enum tags raise ``errors.DecodeError`` naming the type
    and the JSON path, never a msgspec error."""
    try:
        result: T = _decoder(tp).decode(_serde_integers(data))
    except _OutOfRange:
        raise DecodeError(f"cannot decode {_type_name(tp)}: number out of range") from None
    except msgspec.ValidationError as err:
        message, path = _split_path(str(err))
        raise DecodeError(f"cannot decode {_type_name(tp)} at `${path}`: {message}") from None
    except msgspec.DecodeError as err:
        raise DecodeError(f"cannot decode {_type_name(tp)}: {err}") from None
    except (ValueError, TypeError, KeyError) as err:  # defensive: a hook bug
        raise DecodeError(f"cannot decode {_type_name(tp)}: {err}") from None
    return result


__all__ = [
    "U32",
    "U64",
    "HookValue",
    "JsonValue",
    "Wire",
    "always",
    "canonical_json",
    "convert",
    "decode",
    "encode",
    "fail",
    "register_hook",
    "to_builtins",
]
