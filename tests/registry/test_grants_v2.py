"""Grants across prune and re-registration (issue 11, item 4; GR-1..GR-3, PR-3, PR-4).

A grant row lives in its scope's slot, the process in its own: prune and
grant writes are several steps. Whatever step a writer dies at, and whatever
runs in between, a grant of a pruned process never applies to a process
registered later under the same id, and the next prune (or a reader) finishes
the clean-up. The pruner or granter "dies" here by raising ``Killed`` (a
``BaseException`` nothing in the store catches) right at the step boundary;
one test SIGKILLs a real OS process there, the way ``test_faults.py`` does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from lash_streams import errors
from lash_streams.model import ProcessHandleDescriptor, ProcessHandleGrant
from lash_streams.model._codec import encode

from ..conformance.fixtures import S, frame, reg, scope

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OLD = ProcessHandleDescriptor(kind="old", label="granted to the pruned process")
NEW = ProcessHandleDescriptor(kind="new", label="granted to the new process")
EVERYTHING = 2**63 - 1


class Killed(BaseException):
    """The writer dies here: nothing after this point runs."""


def kill_pruner_after_its_script(bus: Any) -> None:
    """The pruner dies right after the process-slot script committed, before
    any of its cross-slot follow-ups (scope rows, session targets, indexes)."""
    real = bus.scripts.prune_process

    async def prune_then_die(keys: Any = None, args: Any = None) -> Any:
        await real(keys=keys, args=args)
        raise Killed

    bus.scripts.prune_process = prune_then_die


async def interrupted_prune(reopen: Any, cutoff: int = EVERYTHING) -> None:
    pruner = await reopen()
    kill_pruner_after_its_script(pruner)
    with pytest.raises(Killed):
        await pruner.prune_terminal_processes(cutoff)


async def raw_row(bus: Any, session_scope: Any, pid: str) -> bytes | None:
    row: bytes | None = await bus.redis.hget(bus.keys.scope_grants(session_scope.id()), pid)
    return row


async def assert_no_grant(bus: Any, session_scope: Any, pid: str) -> None:
    assert not await bus.has_handle_grant(session_scope, pid)
    assert await bus.list_handle_grants(session_scope) == []
    assert await bus.list_live_handle_grants(session_scope) == []


async def test_pruner_killed_after_its_script_grants_nothing_to_the_new_process(bus, reopen):
    """Defect 1: the pruner dies between its script and the scope-side clean-up;
    the id is registered again: no session holds a handle on the new process."""
    holder, holder_frame = scope("holder"), frame("holder", "f1")
    await bus.register_process(reg("p"))
    await bus.grant_handle(holder, "p", OLD)
    await bus.grant_handle(holder_frame, "p", OLD)
    await bus.complete_process("p", S(None))
    await interrupted_prune(reopen)
    assert await bus.get_process("p") is None
    assert not await bus.has_handle_grant(holder, "p")  # PR-3, even before the clean-up

    await bus.register_process(reg("p"))  # PR-4: a brand-new process
    await assert_no_grant(bus, holder, "p")
    await assert_no_grant(bus, holder_frame, "p")
    assert await bus.handle_grants_for_process("p") == []
    with pytest.raises(errors.GrantMissing):
        await bus.transfer_handle_grants(holder, scope("thief"), ["p"])
    assert await bus.list_handle_grants(scope("thief")) == []
    report = await bus.delete_session_process_state("holder")
    assert report.revoked_handle_count == 0
    assert report.orphaned_process_ids == [] and report.preserved_process_ids == []

    # The new process's own grants are its own.
    await bus.grant_handle(scope("other"), "p", NEW)
    assert [(g.session_id, g.descriptor) for g in await bus.handle_grants_for_process("p")] == [
        ("other", NEW)
    ]
    await assert_no_grant(bus, holder, "p")


async def test_the_next_prune_finishes_an_interrupted_one(bus, reopen):
    """Prune is resumable: the process slot keeps what is left to do, and the
    next prune pass finishes it; the pruned id is unknown meanwhile (PR-3)."""
    holder = scope("holder")
    await bus.register_process(reg("p"))
    await bus.grant_handle(holder, "p", OLD)
    await bus.complete_process("p", S(None))
    await interrupted_prune(reopen)
    with pytest.raises(errors.UnknownProcess):
        await bus.handle_grants_for_process("p")

    again = await bus.prune_terminal_processes(EVERYTHING)
    assert again.pruned_processes == 0  # PR-2: counted once, by the pass that deleted it
    assert await raw_row(bus, holder, "p") is None
    assert not await bus.redis.exists(bus.keys.process("p").grants)
    assert b"p" not in await bus.redis.zrange(bus.keys.index_terminal, 0, -1)
    assert b"p" not in await bus.redis.zrange(bus.keys.index_all, 0, -1)


async def test_a_prune_after_re_registration_finishes_the_old_clean_up_only(bus, reopen):
    """The id is registered again before anything finished the interrupted prune
    and the new process is granted to one of the old scopes: the next prune
    drops the old process's leftover rows and keeps the new grant."""
    kept, dropped = scope("kept"), scope("dropped")
    await bus.register_process(reg("p"))
    await bus.grant_handle(kept, "p", OLD)
    await bus.grant_handle(dropped, "p", OLD)
    await bus.complete_process("p", S(None))
    await interrupted_prune(reopen)

    await bus.register_process(reg("p"))
    await bus.grant_handle(kept, "p", NEW)
    await bus.prune_terminal_processes(EVERYTHING)  # the new process is running: not pruned
    assert await bus.get_process("p") is not None
    assert await raw_row(bus, dropped, "p") is None
    assert await bus.has_handle_grant(kept, "p")
    [(grant, record)] = await bus.list_handle_grants(kept)
    assert grant == ProcessHandleGrant(session_id="kept", process_id="p", descriptor=NEW)
    assert record.id == "p" and not record.is_terminal()
    assert [g.session_id for g in await bus.handle_grants_for_process("p")] == ["kept"]

    # And the new process, once terminal, is pruned whole, grants included.
    await bus.complete_process("p", S(None))
    assert (await bus.prune_terminal_processes(EVERYTHING)).pruned_processes == 1
    assert await raw_row(bus, kept, "p") is None
    assert not await bus.redis.exists(bus.keys.process("p").grants)


async def test_a_grant_in_flight_across_prune_and_re_registration_never_applies(bus, reopen):
    """Defect 3: a grant that found the old process, then lost the race with
    prune + re-registration, lands its scope row last; the row names the old
    process's incarnation, so it never counts for the new one."""
    holder = scope("holder")
    other = await reopen()
    await bus.register_process(reg("p"))
    row_key = bus.keys.scope_grants(holder.id())
    real_hset = bus.redis.hset
    reached, release = asyncio.Event(), asyncio.Event()

    async def paused_hset(name: Any, *args: Any, **kwargs: Any) -> Any:
        if name == row_key:
            reached.set()
            await release.wait()
        return await real_hset(name, *args, **kwargs)

    bus.redis.hset = paused_hset
    grant = asyncio.create_task(bus.grant_handle(holder, "p", OLD))
    await asyncio.wait_for(reached.wait(), 30)
    await other.complete_process("p", S(None))
    assert (await other.prune_terminal_processes(EVERYTHING)).pruned_processes == 1
    await other.register_process(reg("p"))
    release.set()
    await asyncio.wait_for(grant, 30)
    del bus.redis.hset

    for reader in (bus, other):
        await assert_no_grant(reader, holder, "p")
        assert await reader.handle_grants_for_process("p") == []
    assert (await bus.delete_session_process_state("holder")).revoked_handle_count == 0


async def test_transfer_to_the_same_scope_keeps_the_grants(bus):
    """Defect 2 / GR-2: from == to is a no-op after the existence check."""
    for session_scope in (scope("s"), frame("s", "f")):
        for pid in ("a", "b"):
            await bus.register_process(reg(pid))
            await bus.grant_handle(session_scope, pid, OLD)
        await bus.transfer_handle_grants(session_scope, session_scope, ["a", "b"])
        assert [g.process_id for g, _ in await bus.list_handle_grants(session_scope)] == ["a", "b"]
        assert await bus.has_handle_grant(session_scope, "a")
        with pytest.raises(errors.GrantMissing):
            await bus.transfer_handle_grants(session_scope, session_scope, ["a", "missing"])
        assert [g.process_id for g, _ in await bus.list_handle_grants(session_scope)] == ["a", "b"]
        assert [g.descriptor for g in await bus.handle_grants_for_process("a")] == [OLD]
        await bus.revoke_handle(session_scope, "a")
        await bus.revoke_handle(session_scope, "b")
    # A transfer between two scopes of one session still moves (GR-2).
    await bus.grant_handle(scope("s"), "a", OLD)
    await bus.transfer_handle_grants(scope("s"), frame("s", "f"), ["a"])
    assert await bus.list_handle_grants(scope("s")) == []
    assert [g.descriptor for g, _ in await bus.list_handle_grants(frame("s", "f"))] == [OLD]


@pytest.mark.parametrize("dies_before", ["process grant index", "session index", "scope row"])
async def test_a_granter_killed_at_any_step_leaves_nothing_half_visible(bus, dies_before):
    """Each grant write is ordered so that a granter killed before any of them
    leaves either no grant at all or a fully indexed one: visible to every
    reader alike, revoked by session deletion, and gone with prune."""
    holder = scope("holder")
    await bus.register_process(reg("p"))
    target = {
        "process grant index": bus.keys.process("p").grants,
        "session index": bus.keys.session_scopes("holder"),
        "scope row": bus.keys.scope_grants(holder.id()),
    }[dies_before]
    # Every write a grant makes: plain commands on the client, scripts through
    # ``scripts.send`` (``EVALSHA sha numkeys keys... args...``).
    writers = {"sadd": bus.redis, "hset": bus.redis, "send": bus.scripts}

    def killing(owner: Any, method: str) -> Any:
        real = getattr(owner, method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            touched = args[3 : 3 + int(args[2])] if method == "send" else args[:1]
            if target in [k.decode() if isinstance(k, bytes) else k for k in touched]:
                raise Killed
            return await real(*args, **kwargs)

        return call

    saved = {method: getattr(owner, method) for method, owner in writers.items()}
    for method, owner in writers.items():
        setattr(owner, method, killing(owner, method))
    try:
        with pytest.raises(Killed):
            await bus.grant_handle(holder, "p", OLD)
    finally:
        for method, owner in writers.items():
            if method == "send":
                owner.send = saved[method]
            else:
                delattr(owner, method)

    visible = await bus.has_handle_grant(holder, "p")
    listed = [g.process_id for g, _ in await bus.list_handle_grants(holder)]
    indexed = [g.session_id for g in await bus.handle_grants_for_process("p")]
    assert (listed, indexed) == ((["p"], ["holder"]) if visible else ([], []))
    report = await bus.delete_session_process_state("holder")
    assert report.revoked_handle_count == (1 if visible else 0)
    await assert_no_grant(bus, holder, "p")
    await bus.complete_process("p", S(None))
    assert (await bus.prune_terminal_processes(EVERYTHING)).pruned_processes == 1
    assert await raw_row(bus, holder, "p") is None


async def test_grants_stored_before_incarnations_still_read(bus):
    """Records and grants written by the previous layout (no incarnation on the
    record, the bare grant JSON in the scope row, bare scope JSON in the reverse
    index) keep working; a bare row the process does not index is stale."""
    held, stale = scope("held"), scope("stale")
    await bus.register_process(reg("p"))
    pkeys = bus.keys.process("p")
    await bus.redis.hdel(pkeys.record, "inc")
    for session_scope, indexed in ((held, True), (stale, False)):
        grant = ProcessHandleGrant(
            session_id=session_scope.session_id, process_id="p", descriptor=OLD
        )
        row = encode(grant)
        await bus.redis.hset(bus.keys.scope_grants(session_scope.id()), "p", row)
        session_key = bus.keys.session_scopes(session_scope.session_id)
        await bus.redis.sadd(session_key, encode(session_scope))
        if indexed:
            await bus.redis.sadd(pkeys.grants, encode(session_scope))

    assert await bus.has_handle_grant(held, "p")
    assert [g.process_id for g, _ in await bus.list_handle_grants(held)] == ["p"]
    assert [g.session_id for g in await bus.handle_grants_for_process("p")] == ["held"]
    await assert_no_grant(bus, stale, "p")
    await bus.transfer_handle_grants(held, held, ["p"])
    assert await bus.has_handle_grant(held, "p")
    await bus.grant_handle(scope("new"), "p", NEW)  # a new grant on an old record
    assert [g.session_id for g in await bus.handle_grants_for_process("p")] == ["held", "new"]
    await bus.revoke_handle(held, "p")
    assert not await bus.has_handle_grant(held, "p")
    assert [g.session_id for g in await bus.handle_grants_for_process("p")] == ["new"]
    await bus.complete_process("p", S(None))
    assert (await bus.prune_terminal_processes(EVERYTHING)).pruned_processes == 1
    await bus.register_process(reg("p"))
    for session_scope in (held, stale, scope("new")):
        await assert_no_grant(bus, session_scope, "p")
    assert await bus.handle_grants_for_process("p") == []


_PRUNER = textwrap.dedent(
    """
    import asyncio, dataclasses, os, signal, sys
    sys.path.insert(0, {root!r})
    import lash_streams as ls
    from lash_streams.model import ProcessHandleDescriptor
    from tests.conformance.fixtures import S, reg, scope

    async def main():
        bus = await ls.connect({url!r}, namespace={ns!r})
        await bus.register_process(reg("victim"))
        await bus.grant_handle(scope("holder"), "victim", ProcessHandleDescriptor(kind="old"))
        await bus.complete_process("victim", S("done"))
        real = bus.scripts.prune_process

        async def prune_then_die(keys=None, args=None):
            # The pruner dies right after its process-slot script committed,
            # before any cross-slot clean-up.
            await real(keys=keys, args=args)
            os.kill(os.getpid(), signal.SIGKILL)

        bus.scripts.prune_process = prune_then_die
        print("pruning", flush=True)
        await bus.prune_terminal_processes(2**63 - 1)

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_pruner_sigkilled_between_its_steps(real_bus, namespace):
    """The same as the first test with a real OS process SIGKILLed in the gap."""
    bus, url = real_bus
    code = _PRUNER.format(root=_ROOT, url=url, ns=namespace)
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=90
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "pruning" in proc.stdout
    holder = scope("holder")
    assert await bus.get_process("victim") is None
    await bus.register_process(reg("victim"))
    await assert_no_grant(bus, holder, "victim")
    assert await bus.handle_grants_for_process("victim") == []
    assert (await bus.delete_session_process_state("holder")).revoked_handle_count == 0
    await bus.prune_terminal_processes(EVERYTHING)
    assert await raw_row(bus, holder, "victim") is None
