"""Section D: wake materialization and target resolution (WK-*)."""

from __future__ import annotations

import msgspec
import pytest

from lash_streams import errors
from lash_streams.model import (
    CausalTriggerOccurrence,
    DedupeConst,
    DedupeSelector,
    LashSchema,
    OriginatorHost,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessProvenance,
    ProcessWakeSpec,
    SelConst,
    SelPayload,
    SelPointer,
    SelTemplate,
)

from .fixtures import frame, reg, req, scope, wake


def wake_type(name: str, spec: ProcessWakeSpec) -> ProcessEventType:
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(wake=spec),
    )


async def test_s_wk_01_wake_semantics_matrix_materializes_declared_wakes(bus):
    """S-WK-01 · WK-1..WK-3, WK-6, WK-9, WA-1, SEL-2..SEL-5."""
    types = [
        wake_type(
            "matrix.when_false",
            ProcessWakeSpec(when=SelConst(False), input=SelConst("must not wake")),
        ),
        wake_type("matrix.payload", ProcessWakeSpec(input=SelPayload())),
        wake_type("matrix.const_input", ProcessWakeSpec(input=SelConst("constant wake input"))),
        wake_type(
            "matrix.template",
            ProcessWakeSpec(
                input=SelTemplate(
                    "line {line} #{n}", {"line": SelPointer("/line"), "n": SelPointer("/n")}
                )
            ),
        ),
        wake_type(
            "matrix.selector_dedupe",
            ProcessWakeSpec(
                input=SelPointer("/wake_input"), dedupe_key=DedupeSelector(SelPointer("/dedupe"))
            ),
        ),
        wake_type(
            "matrix.const_dedupe",
            ProcessWakeSpec(
                input=SelPointer("/wake_input"), dedupe_key=DedupeConst("constant-dedupe")
            ),
        ),
    ]
    await bus.register_process(reg("proc-wake-matrix", *types))
    rows = [
        ("matrix.when_false", {}, None, None, None),
        (
            "matrix.payload",
            "payload wake",
            "payload wake",
            "proc-wake-matrix:2",
            "30b52463052db6098c4f58bf0f0188b53a8bf71bbc338ee682f5e66496f3f2be",
        ),
        (
            "matrix.const_input",
            {},
            "constant wake input",
            "proc-wake-matrix:3",
            "2858e3a6cdc31219612881998bb1df0fc34de4255ce602711efcd3ea1e265cd4",
        ),
        (
            "matrix.template",
            {"line": "done", "n": 7},
            "line done #7",
            "proc-wake-matrix:4",
            "35dd4910dd8040e31bc3ff353135a6eb3bc571172cbc3a0a51d0358583242af9",
        ),
        (
            "matrix.selector_dedupe",
            {"wake_input": "selector one", "dedupe": "group-a"},
            "selector one",
            "group-a",
            "47638cea38923830386dd823b3b19b9ddc3dfdf6b2ac798f1be01f2400b61634",
        ),
        (
            "matrix.selector_dedupe",
            {"wake_input": "selector two", "dedupe": "group-a"},
            "selector two",
            "group-a",
            "47638cea38923830386dd823b3b19b9ddc3dfdf6b2ac798f1be01f2400b61634",
        ),
        (
            "matrix.const_dedupe",
            {"wake_input": "const one"},
            "const one",
            "constant-dedupe",
            "51dc335ff38dc3983b509f481f410868c1305dc00a8be990e1f123898d829e7d",
        ),
        (
            "matrix.const_dedupe",
            {"wake_input": "const two"},
            "const two",
            "constant-dedupe",
            "51dc335ff38dc3983b509f481f410868c1305dc00a8be990e1f123898d829e7d",
        ),
    ]
    deliveries = []
    for seq, (event_type, payload, wake_input, dedupe, wake_hex) in enumerate(rows, start=1):
        result = await bus.append_event(
            "proc-wake-matrix", req(event_type, payload, target=scope("root"))
        )
        assert result.event.sequence == seq
        if wake_input is None:
            assert result.wake_delivery is None
            continue
        d = result.wake_delivery
        assert (d.input, d.dedupe_key, d.wake_id) == (wake_input, dedupe, f"wake:{wake_hex}")
        deliveries.append(d)
    wakes = await bus.wake_events_after("proc-wake-matrix", 0)
    assert [e.sequence for e in wakes] == [2, 3, 4, 5, 6, 7, 8]
    assert len(deliveries) == 7
    assert len({d.wake_id for d in deliveries}) == 5


async def test_s_wk_02_keyed_events_materialize_idempotent_wakes(bus):
    """S-WK-02 · EV-6, EV-7, WK-8."""
    await bus.register_process(reg("proc-wake", wake("process.wake")))
    request = req(
        "process.wake",
        {"message": "deploy failed", "wake_input": "Process wake: deploy failed"},
        key="wake:deploy failed",
        target=scope("session"),
    )
    a = await bus.append_event("proc-wake", request)
    b = await bus.append_event("proc-wake", request)
    assert a.event.sequence == b.event.sequence == 1
    assert a.wake_delivery == b.wake_delivery
    d = a.wake_delivery
    assert d.input == "Process wake: deploy failed"
    assert (d.target_scope_id, d.process_id, d.sequence) == ("session:session", "proc-wake", 1)
    assert d.wake_id == "wake:9139c975e42a7d703f7e1fae04306248789f18b2af461fea0c8af565c1b9a700"
    with pytest.raises(errors.ReplayConflict):
        await bus.append_event(
            "proc-wake",
            req(
                "process.wake",
                {"message": "other", "wake_input": "Process wake: other"},
                key="wake:deploy failed",
            ),
        )
    assert len(await bus.events_after("proc-wake", 0)) == 1


async def test_s_wk_03_wake_semantic_events_without_target_record_without_delivery(bus):
    """S-WK-03 · WK-4, WK-5, WK-8, WA-1."""
    await bus.register_process(reg("proc-missing-wake-target", wake("process.wake")))
    result = await bus.append_event(
        "proc-missing-wake-target",
        req(
            "process.wake",
            {"message": "target missing", "wake_input": "Process wake: target missing"},
            key="wake:missing-target",
        ),
    )
    assert result.event.sequence == 1 and result.wake_delivery is None
    events = await bus.events_after("proc-missing-wake-target", 0)
    assert len(events) == 1 and events[0].semantics.wake is not None
    assert len(await bus.wake_events_after("proc-missing-wake-target", 0)) == 1


async def test_s_wk_04_request_scope_overrides_the_record_wake_target(bus):
    """S-WK-04 · WK-5, WK-7, ID-4."""
    caused_by = CausalTriggerOccurrence(occurrence_id="occ-1")
    registration = msgspec.structs.replace(
        reg("p", wake("w"), wake_target=scope("home")),
        provenance=ProcessProvenance(originator=OriginatorHost(), caused_by=caused_by),
    )
    await bus.register_process(registration)
    a = (await bus.append_event("p", req("w", {"wake_input": "a"}))).wake_delivery
    assert (a.target_scope_id, a.target_session_id) == ("session:home", "home")
    assert a.process_caused_by == caused_by
    b = (
        await bus.append_event("p", req("w", {"wake_input": "b"}, target=frame("other", "f1")))
    ).wake_delivery
    assert (b.target_scope_id, b.target_session_id) == ("session:other/frame:f1", "other")


async def test_s_wk_05_a_replay_re_resolves_the_target(bus):
    """S-WK-05 · EV-6, WK-5, WK-6."""
    await bus.register_process(reg("p", wake("w")))
    first = await bus.append_event("p", req("w", {"wake_input": "x"}, key="k", target=scope("a")))
    again = await bus.append_event("p", req("w", {"wake_input": "x"}, key="k", target=scope("b")))
    assert again.event.sequence == 1
    assert again.wake_delivery.target_scope_id == "session:b"
    assert again.wake_delivery.wake_id != first.wake_delivery.wake_id
    assert again.wake_delivery.created_at_ms == first.event.occurred_at_ms
    assert len(await bus.events_after("p", 0)) == 1
