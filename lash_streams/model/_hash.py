"""Stable hashes over the wire text (GEN-3): SHA-256 of a value's serde JSON,
what lash's ``stable_json_sha256_hex`` digests. In the model because lash's
own constructors use it (``ProcessEventAppendRequest::cancel_requested``);
``semantics.canonical`` re-exports it for the rules that need it."""

from __future__ import annotations

import hashlib
from typing import Any

from lash_streams.model._codec import encode


def stable_sha256_hex(value: Any) -> str:
    """Lowercase hex SHA-256 of the value's canonical JSON."""
    return hashlib.sha256(encode(value)).hexdigest()


def pair_hash(first_json: bytes, second_json: bytes) -> str:
    """The hash of the two-element array of two encoded values: its JSON is
    theirs joined (lash's float text is per number, so it reads the same)."""
    return hashlib.sha256(b"[" + first_json + b"," + second_json + b"]").hexdigest()


def payload_hash(event_type: str, payload: Any) -> str:
    """EV-2 step 2: the hash of the two-element array ``[event_type, payload]``
    (a Rust tuple serializes as a JSON array)."""
    return stable_sha256_hex([event_type, payload])
