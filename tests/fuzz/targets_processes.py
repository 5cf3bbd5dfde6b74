"""Fuzz targets: registration, facets and the per-process reads."""

from __future__ import annotations

import msgspec
from hypothesis import strategies as st

from lash_streams.bus import Bus
from lash_streams.model import (
    AbandonRequest,
    LeaseOwnerIdentity,
    ProcessExternalRef,
    ProcessListFilter,
    ProcessRegistration,
    ProcessStarted,
    ProcessStatusFilter,
    WaitSignal,
    WaitState,
)

from ..conformance.fixtures import plain, reg, wake
from .harness import call, fresh, is_text_id, target, unique
from .strategies import id_text, ids, numbers, payloads, scopes


async def registered(bus: Bus) -> str:
    pid = fresh("p")
    await bus.register_process(reg(pid, plain("x"), wake("w")))
    return pid


@target("register_process")
async def fuzz_register(bus: Bus, data: st.DataObject) -> None:
    pid = unique(data.draw(ids, "id"))
    metadata = data.draw(payloads, "metadata")
    registration = ProcessRegistration.external(pid, metadata=metadata)
    if data.draw(st.booleans(), "with a hostile wake target"):
        registration = msgspec.structs.replace(registration, wake_target=data.draw(scopes))
    record, err = await call(bus, lambda: bus.register_process(registration))
    if err is None:
        assert is_text_id(pid), f"accepted the id {pid!r}"
        stored = await bus.get_process(pid)
        assert stored == record and stored.id == pid


@target("schedule_process")
async def fuzz_schedule(bus: Bus, data: st.DataObject) -> None:
    pid = unique(data.draw(ids, "id"))
    at = data.draw(numbers, "not_before_ms")
    registration = ProcessRegistration.external(pid)
    record, err = await call(bus, lambda: bus.schedule_process(registration, at))
    if err is None:
        assert is_text_id(pid) and isinstance(at, int) and not isinstance(at, bool)
        assert (await bus.get_process(pid)) == record


@target(
    "get_process",
    "get_process_lease",
    "handle_grants_for_process",
    "clear_process_wait",
    "relay_outbox",
    "record_fields",
    "load_state",
    "state",
    "require_exists",
    "require_record",
    "cached_state",
    "forget",
)
async def fuzz_one_id(bus: Bus, data: st.DataObject) -> None:
    """Every method taking a bare process id, on a hostile id (refused or
    unknown) and on a registered process with a hostile id (answered)."""
    raw = data.draw(ids, "id")
    pid = unique(raw)
    if data.draw(st.booleans(), "register it first") and is_text_id(pid):
        await bus.register_process(reg(pid))
    for name in (
        "get_process",
        "get_process_lease",
        "handle_grants_for_process",
        "record_fields",
        "cached_state",
        "forget",
        "relay_outbox",
        "require_exists",
        "require_record",
        "load_state",
        "state",
        "clear_process_wait",
    ):
        method = getattr(bus, name)
        result, err = await call(bus, lambda method=method: method(pid))
        if err is None and name == "get_process" and result is not None:
            assert result.id == pid


@target("set_external_ref", "record_first_started", "request_process_abandon", "set_process_wait")
async def fuzz_facets(bus: Bus, data: st.DataObject) -> None:
    pid = await registered(bus)
    text = data.draw(id_text, "text")
    n = data.draw(numbers, "number")
    meta = data.draw(payloads, "metadata")
    owner = LeaseOwnerIdentity.opaque(data.draw(id_text), data.draw(id_text))
    facets = {
        "set_external_ref": lambda: bus.set_external_ref(
            pid, ProcessExternalRef(backend=text, id=text, metadata=meta)
        ),
        "record_first_started": lambda: bus.record_first_started(
            pid, ProcessStarted(owner=owner, started_at_ms=n)
        ),
        "request_process_abandon": lambda: bus.request_process_abandon(
            pid, AbandonRequest(requested_by=text, requested_at_ms=n, reason=text)
        ),
        "set_process_wait": lambda: bus.set_process_wait(
            pid,
            WaitState(kind=WaitSignal(name=text, event_type=text, key=text, ordinal=n), since_ms=n),
        ),
    }
    for make in facets.values():
        record, err = await call(bus, make)
        if err is None:
            assert await bus.get_process(pid) == record


@target("ack_wake", "defer_sweep", "defer_sweeps")
async def fuzz_process_numbers(bus: Bus, data: st.DataObject) -> None:
    pid = unique(data.draw(ids, "id")) if data.draw(st.booleans()) else await registered(bus)
    n = data.draw(numbers, "number")
    await call(bus, lambda: bus.ack_wake(pid, n))
    await call(bus, lambda: bus.defer_sweep(pid, n))
    key = pid if isinstance(pid, str) else repr(pid)  # a dict key: hashable
    many = data.draw(st.sampled_from([{key: n}, {key: n, "other": 1}, {}, [pid], {1: key}]))
    await call(bus, lambda: bus.defer_sweeps(many))


@target("list_processes", "list_non_terminal", "gather_records", "record_fields_many")
async def fuzz_listings(bus: Bus, data: st.DataObject) -> None:
    status = data.draw(st.sampled_from([*ProcessStatusFilter, None, "running", 3]))
    definition = data.draw(payloads, "definition")
    waiting = data.draw(st.sampled_from([None, True, False, "yes", 1]))
    listing = ProcessListFilter(definition=definition, status=status, waiting=waiting)
    await call(bus, lambda: bus.list_processes(listing), write=False)
    await call(bus, bus.list_non_terminal, write=False)
    many = data.draw(st.lists(ids, max_size=3) | ids, "ids")
    await call(bus, lambda: bus.gather_records(many), write=False)
    await call(bus, lambda: bus.record_fields_many(many), write=False)
