"""Spans on the append, deliver and sweep paths, read from an in-memory exporter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from opentelemetry.trace import StatusCode

from lash_streams import errors
from lash_streams.model import ProcessStarted

from ..conformance.fixtures import S, fixture_oracle, local, ob_reg, reg, req, rr_reg, scope, wake

W = local("live-worker", "host-a", "claimant-start")
D = local("dead-worker", "host-a", "not-the-current-process-start")


async def test_append_span_carries_the_event_and_its_outcome(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(reg("p"))
    await bus.append_event("p", req("process.waiting", {"n": 1}, key="k"))
    await bus.append_event("p", req("process.waiting", {"n": 1}, key="k"))
    first, replay = observed.spans("lash_streams.append")
    assert dict(first.attributes) == {
        "lash_streams.process_id": "p",
        "lash_streams.event_type": "process.waiting",
        "lash_streams.fenced": False,
        "lash_streams.sequence": 1,
        "lash_streams.replayed": False,
    }
    assert replay.attributes["lash_streams.sequence"] == 1
    assert replay.attributes["lash_streams.replayed"] is True
    assert first.instrumentation_scope.name == "lash_streams"


async def test_a_failed_append_span_records_the_error(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(reg("p"))
    await bus.append_event("p", req("process.waiting", {"n": 1}, key="k"))
    with pytest.raises(errors.ReplayConflict):
        await bus.append_event("p", req("process.waiting", {"n": 2}, key="k"))
    span = observed.spans("lash_streams.append")[-1]
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert "lash_streams.sequence" not in span.attributes


async def test_wake_delivery_is_a_child_of_its_append(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(reg("p", wake("w")))
    result = await bus.append_event("p", req("w", {"wake_input": "hi"}, target=scope("s")))
    (append,) = observed.spans("lash_streams.append")
    (deliver,) = observed.spans("lash_streams.deliver_wake")
    assert deliver.parent is not None and deliver.parent.span_id == append.context.span_id
    assert deliver.context.trace_id == append.context.trace_id
    assert deliver.attributes["lash_streams.wake_id"] == result.wake_delivery.wake_id
    assert deliver.attributes["lash_streams.scope_id"] == "session:s"
    assert deliver.attributes["lash_streams.process_id"] == "p"
    assert deliver.attributes["lash_streams.delivered"] == 1
    assert deliver.attributes["lash_streams.deduped"] == 0
    # A re-delivery of the same wake id lands nowhere.
    assert not await bus.deliver_wake(result.wake_delivery)
    assert observed.spans("lash_streams.deliver_wake")[-1].attributes["lash_streams.deduped"] == 1


async def test_sweep_span_counts_rows(obs_bus, observed):
    bus = obs_bus
    bus.death_oracle = fixture_oracle
    await bus.register_process(ob_reg("dead"))
    await bus.record_first_started("dead", ProcessStarted(owner=D, started_at_ms=1))
    await bus.claim_process_lease("dead", D, 60_000)
    await bus.register_process(rr_reg("rr"))
    await bus.register_process(reg("ext"))

    async def runner(record, lease):
        return S("ok")

    await bus.recovery(W, runner=runner).sweep_once()
    (sweep,) = observed.spans("lash_streams.sweep")
    assert dict(sweep.attributes) == {
        "lash_streams.examined": 3,
        "lash_streams.ran": 1,
        "lash_streams.abandoned": 1,
        "lash_streams.skipped": 1,
        "lash_streams.failed": 0,
    }
    # The terminals the sweep wrote are appends inside its trace.
    appends = observed.spans("lash_streams.append")
    inside = [s for s in appends if s.context.trace_id == sweep.context.trace_id]
    assert {s.attributes["lash_streams.process_id"] for s in inside} == {"dead", "rr"}
    assert all(s.attributes["lash_streams.fenced"] for s in inside)


def test_the_global_tracer_starts_emitting_once_the_application_sets_a_provider():
    """Without an SDK provider the hot paths skip spans; a provider set later
    (set once per process, hence a fresh interpreter) is followed at once."""
    script = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from lash_streams.observability import tracing
emitting = tracing.emitting(tracing.tracer())
assert emitting() is False
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
assert emitting() is True
with tracing.tracer().start_as_current_span("x"):
    pass
assert [s.name for s in exporter.get_finished_spans()] == ["x"]
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "OTEL_PYTHON_TRACER_PROVIDER"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
