"""Stable hashes (GEN-3): SHA-256 of the serde JSON of a value, as lash's
``stable_json_sha256_hex`` computes it."""

from __future__ import annotations

import hashlib
from typing import Any

from lash_streams.model._codec import encode


def stable_sha256_hex(value: Any) -> str:
    return hashlib.sha256(encode(value)).hexdigest()


def payload_hash(event_type: str, payload: Any) -> str:
    """EV-2 step 2: ``sha256(canonical([event_type, payload]))``."""
    return stable_sha256_hex([event_type, payload])
