"""Stable hashes (GEN-3): SHA-256 over the serde JSON of a value, which is what
lash's ``stable_json_sha256_hex`` digests. serde_json here has no
``preserve_order``, so JSON maps are key-sorted while structs keep their field
order; the model codec writes exactly that, for Structs and builtins alike."""

from __future__ import annotations

from typing import Any

from lash_streams.model._codec import encode
from lash_streams.model._hash import payload_hash, stable_sha256_hex

__all__ = ["canonical_json", "payload_hash", "stable_sha256_hex"]


def canonical_json(value: Any) -> bytes:
    """GEN-3 canonical JSON: UTF-8, sorted map keys, compact, struct field order."""
    return encode(value)
