"""Payload schemas (ET-4) and materialization (TM-2, WK-2, SEL-*) against lash's
own code: each case's expected answer was printed by lash's
``schema_validation.rs`` and ``materialization.rs`` at cc4a0e3b, compiled with
serde 1.0.228 and serde_json 1.0.149 outside this repository (none of that code
is in it; docs/guarantees.md, "Wire"). The cases are generated: schemas of every
keyword lash reads, with bad bounds and unknown types; payloads with pointer
escapes, array indexes and values shaped like await outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lash_streams.errors import InvalidPayload, LashStreamsError
from lash_streams.model import LashSchema, ProcessEventSemanticsSpec, decode, encode
from lash_streams.semantics import materialize_semantics
from lash_streams.semantics.schema import validate_payload

_DATA = Path(__file__).parent / "data"


def _cases(name: str) -> list[tuple[dict[str, Any], str]]:
    """Each line's inputs, and lash's answer as the exact text it printed."""
    out = []
    for line in (_DATA / name).read_text(encoding="utf-8").split("\n")[:-1]:
        at = line.rindex(',"lash":')
        out.append((json.loads(line[:at] + "}"), line[at + len(',"lash":') : -1]))
    return out


_SCHEMA_CASES = _cases("lash_schema_cc4a0e3b.jsonl")
_MATERIALIZE_CASES = _cases("lash_materialize_cc4a0e3b.jsonl")


def test_the_case_files_are_whole() -> None:
    assert len(_SCHEMA_CASES) == 300
    assert len(_MATERIALIZE_CASES) == 300


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("case", "lash"), _SCHEMA_CASES)
def test_payload_schema_answers_as_lash(case: dict[str, Any], lash: str) -> None:
    """ET-4: accepted or refused as lash's validator, with its message."""
    try:
        validate_payload(LashSchema(schema=case["schema"]), case["value"], event_type="t")
    except InvalidPayload as err:
        assert lash != "null", "lash accepts this value"
        assert str(err) == "invalid `t` payload: " + json.loads(lash)
    else:
        assert lash == "null", f"lash refuses this value: {json.loads(lash)}"


@pytest.mark.parametrize(("case", "lash"), _MATERIALIZE_CASES)
def test_materialized_semantics_are_lash_bytes(case: dict[str, Any], lash: str) -> None:
    """TM-2/WK-2: the same semantics, byte for byte, or the same error."""
    spec = decode(json.dumps(case["spec"]), ProcessEventSemanticsSpec)
    payload = decode(json.dumps(case["payload"]), Any)
    try:
        semantics = materialize_semantics(case["pid"], case["seq"], payload, spec)
    except LashStreamsError as err:
        assert lash.startswith('{"error":'), f"lash materializes {lash}"
        assert str(err) == json.loads(lash)["error"]
    else:
        assert encode(semantics).decode() == lash
