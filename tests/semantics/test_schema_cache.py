"""Issue 11: the payload-schema validator cache held 1,024 schemas, so a
namespace with more distinct schemas compiled one on every append (1.5 ms
each). Now thousands stay compiled, and a schema object seen before is found
without encoding it again."""

from __future__ import annotations

import fastjsonschema
import pytest

from lash_streams.errors import InvalidPayload
from lash_streams.model import LashSchema
from lash_streams.semantics import schema as schema_module
from lash_streams.semantics.schema import validate_payload


def test_many_distinct_schemas_are_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = 0
    real = fastjsonschema.compile

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal compiled
        compiled += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(schema_module.fastjsonschema, "compile", counting)
    schemas = [
        LashSchema(schema={"type": "object", "properties": {f"f{i}": {"type": "integer"}}})
        for i in range(1_500)
    ]
    for _ in range(2):
        for i, schema in enumerate(schemas):
            validate_payload(schema, {f"f{i}": i}, event_type="t")
    assert compiled <= 1_500
    # An equal schema in a new object reuses the compiled validator too.
    before = compiled
    again = LashSchema(schema={"type": "object", "properties": {"f7": {"type": "integer"}}})
    with pytest.raises(InvalidPayload):
        validate_payload(again, {"f7": "no"}, event_type="t")
    assert compiled == before
