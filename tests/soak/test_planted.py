"""Defects planted directly in Redis, under histories written by a small
in-process workload: the checker reads the bus and names each one (on Valkey,
Redis and the cluster)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

import lash_streams as ls
from lash_streams.model import AwaitSuccess, ProcessEventAppendRequest, ProcessRegistration
from lash_streams.soak.checker import OKAY, VIOLATED, RunFacts, Verdict, check
from lash_streams.soak.history import OK, Writer, read_folder
from lash_streams.soak.observe import observe
from lash_streams.soak.role import VALUE_TYPE, scope_of, value_type

PID = "a1.0.p1"


@pytest.fixture
async def bus(any_backend, namespace):
    async with ls.connect(any_backend.connect_url, namespace=namespace) as bus:
        yield bus


async def seed(
    bus: ls.Bus, folder: Path, *, unknown: set[int] = frozenset(), complete: bool = False
) -> None:  # type: ignore[assignment]
    """Register PID and append v1..v4, acknowledged (those in ``unknown``
    without a result line, as if the appender died waiting for the reply)."""
    history = Writer(folder / "a1.jsonl", "a1", 0)
    registration = ProcessRegistration.external(
        PID, event_types=[value_type()], wake_target=scope_of("a1")
    )
    entry = history.intent("register", "r1", pid=PID)
    await bus.register_process(registration)
    history.result(entry, OK)
    for n in range(1, 5):
        value = f"v{n}"
        request = ProcessEventAppendRequest.new(VALUE_TYPE, {"v": value}).with_replay_key(value)
        entry = history.intent("append", value, pid=PID, value=value, key=value)
        result = await bus.append_event(PID, request)
        if n not in unknown:
            history.result(entry, OK, seq=result.event.sequence)
    if complete:
        entry = history.intent("complete", "c1", pid=PID)
        await bus.complete_process(PID, AwaitSuccess(value=1))
        history.result(entry, OK)
    history.close()


async def verdicts(bus: ls.Bus, folder: Path) -> dict[str, Verdict]:
    found = check(read_folder(folder), await observe(bus), RunFacts())
    return {v.name: v for v in found}


def failing(found: dict[str, Verdict]) -> set[str]:
    return {name for name, v in found.items() if v.status != OKAY}


async def entry_fields(bus: ls.Bus, seq: int) -> dict[bytes, bytes]:
    entries = await bus.redis.xrange(bus.keys.process(PID).events, f"{seq}-0", f"{seq}-0")
    fields: dict[bytes, bytes] = entries[0][1]
    return fields


async def plant(bus: ls.Bus, seq: int, fields: dict[bytes, bytes]) -> None:
    await bus.redis.xadd(bus.keys.process(PID).events, fields, id=f"{seq}-0")


async def test_the_seeded_log_passes(bus, tmp_path):
    await seed(bus, tmp_path, complete=True)
    assert failing(await verdicts(bus, tmp_path)) == set()


async def test_an_acknowledged_event_deleted_is_lost(bus, tmp_path):
    await seed(bus, tmp_path)
    await bus.redis.xdel(bus.keys.process(PID).events, "4-0")
    found = await verdicts(bus, tmp_path)
    assert failing(found) == {"acknowledged_appends_present"}
    assert found["acknowledged_appends_present"].status == VIOLATED
    assert found["acknowledged_appends_present"].examples == ["v4 (acknowledged, not in the log)"]


async def test_a_deleted_event_in_the_middle_is_lost_and_a_gap(bus, tmp_path):
    await seed(bus, tmp_path)
    await bus.redis.xdel(bus.keys.process(PID).events, "2-0")
    found = await verdicts(bus, tmp_path)
    assert failing(found) == {"acknowledged_appends_present", "sequences_gapless"}
    assert found["sequences_gapless"].examples == [f"{PID}: sequences [1, 3, 4]"]


async def test_a_gap_where_the_outcome_was_unknown_is_a_gap_only(bus, tmp_path):
    await seed(bus, tmp_path, unknown={2})
    await bus.redis.xdel(bus.keys.process(PID).events, "2-0")
    found = await verdicts(bus, tmp_path)
    assert failing(found) == {"sequences_gapless"}
    assert found["acknowledged_appends_present"].counts["unknown"] == 1


async def test_a_value_copied_under_a_second_sequence_is_duplicated(bus, tmp_path):
    await seed(bus, tmp_path)
    await plant(bus, 5, await entry_fields(bus, 1))
    found = await verdicts(bus, tmp_path)
    assert failing(found) == {"no_duplicates"}
    assert found["no_duplicates"].examples == [f"v1 at {PID}#1, {PID}#5"]


async def test_an_event_nobody_wrote_is_unexpected(bus, tmp_path):
    await seed(bus, tmp_path)
    fields = await entry_fields(bus, 1)
    payload = msgspec.json.decode(fields[b"p"])
    assert payload == {"v": "v1"}
    fields[b"p"] = msgspec.json.encode({"v": "ghost"})
    fields.pop(b"k", None)
    await plant(bus, 5, fields)
    found = await verdicts(bus, tmp_path)
    assert failing(found) == {"no_unexpected"}
    assert found["no_unexpected"].examples == [f"ghost at {PID}#5 (nobody wrote it)"]


async def test_a_second_terminal_is_named(bus, tmp_path):
    await seed(bus, tmp_path, complete=True)
    await plant(bus, 6, await entry_fields(bus, 5))
    found = await verdicts(bus, tmp_path)
    assert failing(found) == {"one_terminal"}
    assert found["one_terminal"].examples == [f"{PID}: 2 terminals (completed, completed)"]
