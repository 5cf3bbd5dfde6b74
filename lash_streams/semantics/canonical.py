"""Stable hashes (GEN-3): SHA-256 over the serde JSON of a value, which is what
lash's ``stable_json_sha256_hex`` digests. serde_json here has no
``preserve_order``, so JSON maps are key-sorted while structs keep their field
order; the model codec writes exactly that, for Structs and builtins alike."""

from __future__ import annotations

import hashlib
from typing import Any

from lash_streams.model._codec import encode


def canonical_json(value: Any) -> bytes:
    """GEN-3 canonical JSON: UTF-8, sorted map keys, compact, struct field order."""
    return encode(value)


def stable_sha256_hex(value: Any) -> str:
    """Lowercase hex SHA-256 of :func:`canonical_json`."""
    return hashlib.sha256(encode(value)).hexdigest()


def payload_hash(event_type: str, payload: Any) -> str:
    """EV-2 step 2: the hash of the two-element array ``[event_type, payload]``
    (a Rust tuple serializes as a JSON array)."""
    return stable_sha256_hex([event_type, payload])
