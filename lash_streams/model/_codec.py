"""serde_json-compatible JSON for the wire model.

lash's serde_json has no ``preserve_order``: JSON objects (``serde_json::Value``
maps, ``BTreeMap``) serialize with sorted keys, while structs keep declaration
order. ``order="deterministic"`` gives exactly that. Enum representations msgspec
lacks (externally and adjacently tagged) are plain classes handled by the
``enc_hook``/``dec_hook`` pair registered here by each model module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

import msgspec

from lash_streams.errors import DecodeError

#: Any JSON value (serde_json::Value).
JsonValue: TypeAlias = Any

T = TypeVar("T")

_encoders: dict[type, Callable[[Any], Any]] = {}
_decoders: dict[type, Callable[[Any], Any]] = {}


def register_hook(cls: type, encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> None:
    """Teach the codec a custom enum representation (base class + hooks)."""
    _encoders[cls] = encode
    _decoders[cls] = decode


def _enc_hook(obj: Any) -> Any:
    for cls in type(obj).__mro__:
        hook = _encoders.get(cls)
        if hook is not None:
            return hook(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def _dec_hook(tp: type, obj: Any) -> Any:
    hook = _decoders.get(tp)
    if hook is None:
        raise NotImplementedError(f"cannot decode {tp!r}")
    return hook(obj)


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook, order="deterministic")


def encode(obj: Any) -> bytes:
    """serde_json bytes of a model value or of plain JSON builtins."""
    return _ENCODER.encode(obj)


def canonical_json(value: Any) -> bytes:
    """GEN-3 canonical JSON (sorted keys, compact): the same encoder."""
    return _ENCODER.encode(value)


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(tp)
    if decoder is None:
        decoder = _DECODERS[tp] = msgspec.json.Decoder(tp, dec_hook=_dec_hook)
    return decoder


def decode(data: bytes | str, tp: type[T]) -> T:
    """Decode lash JSON into ``tp``; malformed input raises ``DecodeError``."""
    try:
        result: T = _decoder(tp).decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        name = getattr(tp, "__name__", repr(tp))
        raise DecodeError(f"cannot decode {name}: {err}") from None
    except (ValueError, TypeError, KeyError) as err:
        name = getattr(tp, "__name__", repr(tp))
        raise DecodeError(f"cannot decode {name}: {err}") from None
    return result


def convert(obj: Any, tp: type[T]) -> T:
    """Builtins (already-decoded JSON) into ``tp``, for the hooks themselves."""
    try:
        result: T = msgspec.convert(obj, tp, dec_hook=_dec_hook)
    except msgspec.ValidationError as err:
        raise ValueError(str(err)) from None
    return result


def to_builtins(obj: Any) -> Any:
    """A model value as plain JSON builtins (dict keys in wire order)."""
    return msgspec.json.decode(encode(obj))
