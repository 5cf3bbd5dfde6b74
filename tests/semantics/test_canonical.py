"""Canonical JSON and stable hashes (GEN-3, CN-1, WK-6)."""

from __future__ import annotations

import pytest

from lash_streams.model import RuntimeReplay, SessionScope
from lash_streams.semantics import canonical_json, payload_hash, stable_sha256_hex, wake_id

# The precomputed table of lash-conformance-scenarios.md ("Precomputed values").
WAKE_IDS = [
    ("session:s1", "proc-1:1", "c802f969650a1dc287fadd49ea2a5fbbf697a1ecf020e75191cbf0172a2acd58"),
    (
        "session:target-session/frame:target-frame",
        "proc-provenance:1",
        "46cb109adef9ba0513a94be3a54c1a0adf5e05fcbbe38b46ba57e14f546b1e00",
    ),
    (
        "session:root",
        "proc-stream:2",
        "eb935899e15afe327614d6eee36250ca21ae4afb416be30ced974af0161c4a1c",
    ),
    (
        "session:root",
        "proc-wake-matrix:2",
        "30b52463052db6098c4f58bf0f0188b53a8bf71bbc338ee682f5e66496f3f2be",
    ),
    (
        "session:root",
        "proc-wake-matrix:3",
        "2858e3a6cdc31219612881998bb1df0fc34de4255ce602711efcd3ea1e265cd4",
    ),
    (
        "session:root",
        "proc-wake-matrix:4",
        "35dd4910dd8040e31bc3ff353135a6eb3bc571172cbc3a0a51d0358583242af9",
    ),
    ("session:root", "group-a", "47638cea38923830386dd823b3b19b9ddc3dfdf6b2ac798f1be01f2400b61634"),
    (
        "session:root",
        "constant-dedupe",
        "51dc335ff38dc3983b509f481f410868c1305dc00a8be990e1f123898d829e7d",
    ),
    (
        "session:session",
        "proc-wake:1",
        "9139c975e42a7d703f7e1fae04306248789f18b2af461fea0c8af565c1b9a700",
    ),
]


@pytest.mark.parametrize(("scope_id", "dedupe_key", "digest"), WAKE_IDS)
def test_precomputed_wake_ids(scope_id: str, dedupe_key: str, digest: str) -> None:
    """WK-6 / GEN-3: ``wake:`` + sha256 of the canonical two-string array."""
    assert wake_id(scope_id, dedupe_key) == f"wake:{digest}"


def test_precomputed_wake_id_of_a_frame_scope_uses_the_scope_id() -> None:
    """WK-6, ID-2: the frame scope's id is what is hashed."""
    scope = SessionScope(session_id="target-session", agent_frame_id="target-frame")
    assert wake_id(scope.id(), "proc-provenance:1") == f"wake:{WAKE_IDS[1][2]}"


@pytest.mark.parametrize(
    ("reason", "digest"),
    [
        ("stop", "85a6238fa9840bc3105d1a06ca03df61803080fefa838ab687d36662275be019"),
        (None, "5532b5f3befaa3efc27b125b501ee870e6405e058b099410f23165e543d2a782"),
    ],
)
def test_cn_1_precomputed_cancel_hashes(reason: str | None, digest: str) -> None:
    """CN-1, EV-2 step 2: ``sha256(canonical(["process.cancel_requested", payload]))``."""
    assert payload_hash("process.cancel_requested", {"reason": reason}) == digest


def test_gen_3_canonical_json_sorts_map_keys_and_keeps_struct_order() -> None:
    """GEN-3: maps key-sorted by code point, compact, non-ASCII verbatim;
    struct fields in declaration order."""
    assert canonical_json({"b": 1, "a": [True, None], "é": "ü"}) == (
        '{"a":[true,null],"b":1,"é":"ü"}'.encode()
    )
    scope = SessionScope(session_id="s", agent_frame_id="f")
    assert canonical_json(scope) == b'{"session_id":"s","agent_frame_id":"f"}'
    assert canonical_json({"z": RuntimeReplay(key="k")}) == b'{"z":{"key":"k"}}'


def test_gen_3_hash_is_insensitive_to_dict_insertion_order() -> None:
    """GEN-3: equal JSON maps hash equally whatever their construction order."""
    assert stable_sha256_hex({"a": 1, "b": 2}) == stable_sha256_hex({"b": 2, "a": 1})
    assert payload_hash("t", {"a": 1}) != payload_hash("u", {"a": 1})
    assert payload_hash("t", 1) != payload_hash("t", 1.0)  # serde: 1 and 1.0 differ
