"""Ids that can be stored: valid UTF-8, bounded length (DESIGN "Cluster-safe keys")."""

from __future__ import annotations

from lash_streams.errors import InvalidId

#: Longest id accepted, in UTF-8 bytes (process ids, session ids, frame ids).
MAX_ID_BYTES = 512


def id_bytes(kind: str, value: str) -> bytes:
    """UTF-8 bytes of an id, or a typed error for ids Redis keys cannot hold."""
    if not isinstance(value, str):
        raise InvalidId(f"{kind} must be a string, got {type(value).__name__}")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidId(f"{kind} `{value!r}` is not valid UTF-8 ({err.reason})") from None
    if len(raw) > MAX_ID_BYTES:
        raise InvalidId(
            f"{kind} is {len(raw)} bytes long; at most {MAX_ID_BYTES} UTF-8 bytes are allowed",
        )
    return raw
