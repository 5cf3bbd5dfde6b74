"""The append path (EV-2, RX-3, RX-4), signals and cancel requests (SG-*, CN-*)
and completion (CP-*).

Validation and materialization run here, in the client, against the cached
registration; the ``append_event`` script then does existence, replay lookup,
the terminal check and the insert atomically, guarded by a compare-and-set on
the registration hash, and assigns the sequence itself (last + 1): concurrent
appenders never race on it. A validation failure against a cached state is confirmed against
the server (existence, registration, terminal, replay key: one round trip)
before it is raised.

Once the script answered OK the call returns its result (RX-18, GEN-5): the
cross-slot follow-ups (the worklist move of a terminal, the wake delivery) are
attempted once and, if they fail, logged and counted; the worklist repair and
the outbox relay finish them.

The planning and settling steps are functions over the core, shared with the
pipelined batch path (``batch``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from lash_streams import observability as obs
from lash_streams.errors import (
    AlreadyTerminal,
    BackendError,
    LashStreamsError,
    PayloadTooLarge,
    ReplayConflict,
    UnknownProcess,
)
from lash_streams.model import (
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessEventSemantics,
    ProcessLease,
    ProcessWakeDelivery,
    SessionScope,
    SystemTime,
)
from lash_streams.model._codec import decode, encode
from lash_streams.semantics.append import AppendPlan, plan_append
from lash_streams.semantics.canonical import payload_hash
from lash_streams.semantics.inputs import json_problem
from lash_streams.semantics.wake import build_wake_delivery

# Modules, not names: fault tests replace a follow-up step to kill the writer there.
from lash_streams.store import delivery, worklist
from lash_streams.store.core import ProcessState, StoreCore, fence_args, fenced_error, text
from lash_streams.store.events import event_from_entry, event_from_fields, fields_of
from lash_streams.store.keys import encode_id

#: Largest encoded payload accepted, in bytes. Larger payloads belong in a
#: blob store with a reference in the payload.
MAX_EVENT_BYTES = 4 * 1024 * 1024
_DEFAULT_SEMANTICS = ProcessEventSemantics()
#: Attempts of one append while its planning state keeps turning out stale
#: (another client pruning and re-registering the id in between, each time).
_MAX_ROUNDS = 16

log = logging.getLogger("lash_streams.store")


class Appended(NamedTuple):
    """A settled append: its result and, for a terminal request, the record's
    fields as the commit script read them (``complete_process`` answers from them)."""

    result: ProcessEventAppendResult
    record_fields: dict[bytes, bytes] | None = None


def _fields_after(reply: list[Any], start: int) -> dict[bytes, bytes] | None:
    if len(reply) <= start:
        return None
    return {reply[i]: reply[i + 1] for i in range(start, len(reply), 2)}


async def finish(
    core: StoreCore,
    terminals: dict[str, int],
    deliveries: Sequence[tuple[ProcessWakeDelivery, str | bytes | None]],
) -> None:
    """The cross-slot steps after committed appends. Never raises: the writes
    committed, and a step that fails here is finished by the worklist repair
    (every reader of the worklist) or by the outbox relay (``relay_pending``)."""
    for pid, at in terminals.items():
        try:
            await worklist.index_terminal(core, pid, at)
        except Exception as err:
            _follow_up_failed("index_terminal", pid, err)
    if deliveries and core.cluster:
        try:
            await delivery.mark_pending(core, [d.process_id for d, box in deliveries if box])
        except Exception as err:
            _follow_up_failed("mark_pending", deliveries[0][0].process_id, err)
    if deliveries:
        try:
            await delivery.deliver_wakes(core, deliveries)
        except Exception as err:
            _follow_up_failed("deliver_wake", deliveries[0][0].process_id, err)


def _follow_up_failed(step: str, process_id: str, err: Exception) -> None:
    log.warning(
        "process `%s`: `%s` after a committed append failed (%s); left to the %s",
        process_id,
        step,
        err,
        {
            "index_terminal": "worklist repair",
            "mark_pending": "full outbox relay",
        }.get(step, "outbox relay"),
    )
    if obs.hooks is not None:
        obs.hooks.follow_up_failed(step)


async def append(
    core: StoreCore,
    process_id: str,
    request: ProcessEventAppendRequest,
    lease: ProcessLease | None = None,
) -> ProcessEventAppendResult:
    """One append as ``append_event`` makes it, observed when observability is on."""
    return (await appended(core, process_id, request, lease)).result


async def appended(
    core: StoreCore,
    process_id: str,
    request: ProcessEventAppendRequest,
    lease: ProcessLease | None = None,
    *,
    release: bool = False,
) -> Appended:
    """``release`` (a terminal under ``lease``): the same step releases the
    lease and, on a single server, moves the id out of the worklist
    (``lua/complete_job-10.lua``)."""
    if obs.hooks is None or obs.hooks.inside_append():
        return await append_one(core, process_id, request, lease, release)
    settled: list[Appended] = []

    async def call() -> ProcessEventAppendResult:
        settled.append(await append_one(core, process_id, request, lease, release))
        return settled[0].result

    await obs.hooks.append(call(), process_id, request.event_type, lease is not None)
    return settled[0]


async def append_one(
    core: StoreCore,
    process_id: str,
    request: ProcessEventAppendRequest,
    lease: ProcessLease | None,
    release: bool = False,
) -> Appended:
    state = core.cached_state(process_id)
    fresh = state is None
    if state is None:
        state = await core.load_state(process_id)
    for _ in range(_MAX_ROUNDS):
        outcome = await try_append(
            core, process_id, request, state, lease, fresh=fresh, release=release
        )
        if isinstance(outcome, Appended):
            return outcome
        state, fresh = outcome, True
    raise BackendError(
        f"append to process `{process_id}`: its registration changed {_MAX_ROUNDS} times "
        "while appending",
        process_id=process_id,
    )


class Planned(NamedTuple):
    """An append planned for an unknown sequence: ``plan.event`` carries
    ``placeholder`` wherever the sequence goes, and the script puts the real
    one there (last + 1, assigned atomically with the insert)."""

    plan: AppendPlan
    placeholder: int


def prepare(
    core: StoreCore,
    process_id: str,
    request: ProcessEventAppendRequest,
    state: ProcessState,
) -> tuple[Planned, list[str], list[Any]]:
    """Plan an insert: the plan, the script keys and the item's ten script
    arguments (``lua/_append.lua``). Raises the typed validation errors (EV-2
    steps 4-7). What the script stores is compact (``events``): the type, the
    payload JSON and, when not the default, the materialized semantics, with
    the placeholder standing where the sequence goes."""
    keys = core.keys.process(process_id)
    has_key = request.replay is not None
    replay_key = request.replay.key if request.replay is not None else ""
    record = state.planning_record()
    for _ in range(3):
        placeholder = random.randrange(10**18, 10**19)
        plan = plan_append(record, request, sequence=placeholder, occurred_at_ms=0)
        semantics = plan.event.semantics
        stand_in = ""
        if semantics == _DEFAULT_SEMANTICS:
            semantics_json = b""
            break
        # Only an event-identity wake dedupe key holds the sequence; anywhere
        # else the number is user data (drawn again).
        semantics_json = encode(semantics)
        identity = _identity_dedupe(plan, process_id, placeholder)
        if semantics_json.count(str(placeholder).encode()) == identity:
            stand_in = str(placeholder) if identity else ""
            break
    else:  # pragma: no cover - a random 19-digit number in the payload three times
        raise BackendError(f"cannot plan an append to `{process_id}`", process_id=process_id)
    payload_json = plan.payload_json
    if len(payload_json) > MAX_EVENT_BYTES:
        raise PayloadTooLarge(
            f"process `{process_id}` event `{request.event_type}` payload encodes to "
            f"{len(payload_json)} bytes; the limit is {MAX_EVENT_BYTES}",
            process_id=process_id,
        )
    terminal = plan.status_update is not None
    waking = semantics.wake is not None
    field = encode_id(request.event_type)
    item: list[Any] = [
        _FLAGS[has_key, terminal, waking],
        replay_key,
        plan.payload_hash if has_key else "",  # only a replay row holds it
        encode(plan.status_update) if plan.status_update is not None else b"",
        request.event_type,
        "" if field == request.event_type else field,
        payload_json,
        semantics_json,
        stand_in,
        encode(request.wake_target_scope) if request.wake_target_scope is not None else b"",
    ]
    script_keys = [
        keys.record,
        keys.events,
        keys.replay,
        keys.type_counts,
        keys.wakes,
        keys.outbox,
        keys.lease,
        # The pending-outbox index, marked in the same step on a single
        # server; on a cluster it lives in another slot (delivery.py marks it).
        keys.record if core.cluster else core.keys.index_of("ob", process_id),
    ]
    return Planned(plan, placeholder), script_keys, item


_FLAGS = {
    (keyed, terminal, waking): f"{keyed:d}{terminal:d}{waking:d}"
    for keyed in (False, True)
    for terminal in (False, True)
    for waking in (False, True)
}


def _identity_dedupe(plan: AppendPlan, process_id: str, placeholder: int) -> bool:
    wake = plan.event.semantics.wake
    return wake is not None and wake.dedupe_key == f"{process_id}:{placeholder}"


def sequenced(planned: Planned, seq: int, now_ms: int) -> ProcessEvent:
    """The planned event with its real sequence and time: what the script stored."""
    event = planned.plan.event
    subject = msgspec.structs.replace(event.invocation.subject, sequence=seq)
    invocation = msgspec.structs.replace(event.invocation, subject=subject)
    semantics = event.semantics
    if semantics.wake is not None and _identity_dedupe(
        planned.plan, event.process_id, planned.placeholder
    ):
        wake = msgspec.structs.replace(semantics.wake, dedupe_key=f"{event.process_id}:{seq}")
        semantics = msgspec.structs.replace(semantics, wake=wake)
    return msgspec.structs.replace(
        event,
        sequence=seq,
        invocation=invocation,
        semantics=semantics,
        occurred_at=SystemTime(
            secs_since_epoch=now_ms // 1000, nanos_since_epoch=(now_ms % 1000) * 1_000_000
        ),
    )


async def try_append(
    core: StoreCore,
    process_id: str,
    request: ProcessEventAppendRequest,
    state: ProcessState,
    lease: ProcessLease | None = None,
    *,
    fresh: bool = True,
    release: bool = False,
) -> Appended | ProcessState:
    """One attempt: an ``Appended`` when settled, else the state to re-plan with."""
    try:
        planned, script_keys, item = prepare(core, process_id, request, state)
    except LashStreamsError:
        if not fresh:
            # A cached state may be stale (pruned, re-registered, no longer
            # terminal): the server decides before any error is raised.
            return await confirm(core, process_id, request)
        # EV-2.3: an existing replay key decides before any validation (a key
        # that cannot be stored was never stored: nothing to look up).
        if request.replay is not None and json_problem(request.replay.key) is None:
            replayed = await replay_lookup(core, process_id, request, request.replay.key)
            if replayed is not None:
                return replayed
        raise

    args = [state.registration_hash, *item]
    if lease is not None:
        args += fence_args(lease)
    script = core.scripts.append_event
    moved = release and not core.cluster  # the script moves the id (a single server)
    if release:
        script = core.scripts.complete_job
        ks, pid = core.keys, process_id
        indexes = [ks.index_of("run", pid), ks.index_of("term", pid)] if moved else []
        indexes = indexes or [script_keys[0]] * 2
        script_keys = [*script_keys, *indexes]
        args.append(process_id)

    def call() -> Any:
        if release:  # jobs ending together share a round trip (group commit)
            return script.together(keys=script_keys, args=args)
        return script(keys=script_keys, args=args)

    what = f"append `{request.event_type}` to process `{process_id}`"
    keyed = request.replay is not None
    reply = await (core.retry.idempotent(what, call) if keyed else core.retry.once(what, call))
    outcome = settle(core, process_id, request, state, planned, reply)
    if isinstance(outcome, ProcessEventAppendResult):
        if text(reply[0]) == "OK":
            terminals = {}
            if outcome.event.semantics.terminal is not None and not moved:
                terminals[process_id] = int(reply[2])
            deliveries = []
            if outcome.wake_delivery is not None and reply[4]:
                deliveries.append((outcome.wake_delivery, reply[4]))
            await finish(core, terminals, deliveries)
        return Appended(outcome, _fields_after(reply, 5))
    if outcome is None:
        return await core.load_state(process_id)
    return outcome


async def confirm(
    core: StoreCore, process_id: str, request: ProcessEventAppendRequest
) -> Appended | ProcessState:
    """The server's state of the process and, for a keyed request, its replay
    key, in one round trip: a replay, or a fresh state to plan again with."""
    keys = core.keys.process(process_id)
    key = request.replay.key if request.replay is not None else None
    if key is not None and json_problem(key) is not None:
        key = None  # a key that cannot be stored was never stored

    async def run() -> list[Any]:
        pipe = core.redis.pipeline(transaction=False)
        pipe.hgetall(keys.record)
        if key is not None:
            pipe.hget(keys.replay, key)
        result: list[Any] = await pipe.execute()
        return result

    replies = await core.retry.idempotent(f"read process `{process_id}`", run)
    fields: dict[bytes, bytes] = replies[0]
    if not fields:
        core.forget(process_id)
        raise UnknownProcess(process_id)
    state = core.remember(process_id, fields)
    stored = replies[1] if key is not None else None
    if stored is None:
        return state
    result = await replayed(core, process_id, request, state, stored, fields.get(b"wt") or b"")
    return Appended(result, fields)


def settle(
    core: StoreCore,
    process_id: str,
    request: ProcessEventAppendRequest,
    state: ProcessState,
    planned: Planned,
    reply: list[Any],
    tally: dict[str, int] | None = None,
) -> ProcessEventAppendResult | None:
    """Interpret the script's answer: a result, or None when the registration
    changed and must be reloaded. An appended or replayed outcome is counted
    in ``tally`` when given (a batch observes its counts once), else observed."""
    status = text(reply[0])
    if status == "OK":
        seq, now_ms, wt = int(reply[1]), int(reply[2]), reply[3]
        event = sequenced(planned, seq, now_ms)
        state.seq = seq
        if planned.plan.status_update is not None:
            state.terminal = True
        if tally is not None:
            tally["appended"] += 1
        elif obs.hooks is not None:
            obs.hooks.append_settled("appended")
        return result_of(core, state, event, request, wt)
    if status == "REPLAY":
        if tally is not None:
            tally["replayed"] += 1
        elif obs.hooks is not None:
            obs.hooks.append_settled("replayed")
        stored = event_from_fields(process_id, int(reply[1]), fields_of(reply[2]))
        return result_of(core, state, stored, request, reply[4])
    if status == "CONFLICT":
        raise _conflict(process_id, request)
    if status == "TERMINAL":
        state.terminal = True
        raise AlreadyTerminal(f"process `{process_id}` is already terminal", process_id=process_id)
    if status == "NOPROC":
        core.forget(process_id)
        raise UnknownProcess(process_id)
    if status == "FENCED":
        raise fenced_error(process_id, request.event_type)
    # STALE: the registration changed under us (prune + re-register).
    core.forget(process_id)
    return None


def _conflict(process_id: str, request: ProcessEventAppendRequest) -> ReplayConflict:
    """EV-2.3: the replay key is taken by an event with another payload."""
    if obs.hooks is not None:
        obs.hooks.append_settled("conflict")
    key = request.replay.key if request.replay is not None else ""
    return ReplayConflict(
        f"process `{process_id}` event replay key `{key}` conflicts with an existing event",
        process_id=process_id,
    )


def result_of(
    core: StoreCore,
    state: ProcessState,
    event: ProcessEvent,
    request: ProcessEventAppendRequest,
    stored_wake_target: bytes,
) -> ProcessEventAppendResult:
    if event.semantics.wake is None:
        return ProcessEventAppendResult(event=event)  # no wake, no delivery (WK-8)
    # WK-5 / EV-6: the request's scope, else the record's current target.
    target = request.wake_target_scope
    if target is None and stored_wake_target:
        target = decode(stored_wake_target, SessionScope)
    record = state.planning_record()
    delivery = build_wake_delivery(record, event, target)
    return ProcessEventAppendResult(event=event, wake_delivery=delivery)


async def replay_lookup(
    core: StoreCore, process_id: str, request: ProcessEventAppendRequest, replay_key: str
) -> Appended | None:
    keys = core.keys.process(process_id)

    async def run() -> list[Any]:
        pipe = core.redis.pipeline(transaction=False)
        pipe.hget(keys.replay, replay_key)
        pipe.hmget(keys.record, ["wt"])
        result: list[Any] = await pipe.execute()
        return result

    stored, (wt,) = await core.retry.idempotent("replay lookup", run)
    if stored is None:
        return None
    state = await core.state(process_id)
    return Appended(await replayed(core, process_id, request, state, stored, wt or b""))


async def replayed(
    core: StoreCore,
    process_id: str,
    request: ProcessEventAppendRequest,
    state: ProcessState,
    stored: bytes,
    wake_target: bytes,
) -> ProcessEventAppendResult:
    """EV-6 for a replay key found outside the script: the stored event, or
    ``ReplayConflict`` when the payload differs."""
    seq_text, _, stored_hash = text(stored).partition("|")
    if stored_hash != payload_hash(request.event_type, request.payload):
        raise _conflict(process_id, request)
    keys = core.keys.process(process_id)
    entries = await core.retry.idempotent(
        "read replayed event",
        lambda: core.redis.xrange(keys.events, f"{seq_text}-0", f"{seq_text}-0"),
    )
    if obs.hooks is not None:
        obs.hooks.append_settled("replayed")
    return result_of(core, state, event_from_entry(process_id, entries[0]), request, wake_target)
