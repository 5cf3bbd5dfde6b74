"""Pipelined appends: many events, many processes, one round trip.

Validate first, then write:

1. Every item is planned before anything is sent, against its process's state
   with the batch's earlier items applied (a second terminal is
   ``AlreadyTerminal``). An invalid item raises its typed error and
   nothing is written; a failure planned against a cached state is confirmed
   against the server first, as for one append.
2. One ``append_batch`` script call commits the batch in one atomic step:
   each process's items in order, stopping at the first item the process
   refuses (so none lands after an earlier one of the batch failed), and,
   on a single server, delivers their wakes in that step (``inline_wakes``). The call
   is made inside the retried step, so a keyed batch retried after a dropped
   connection resends every item (replays for those that landed).
3. Each reply is settled. An item the server refused gets its typed error and
   the later items of its process ``BatchItemSkipped``; a process that was
   re-registered meanwhile, or whose call did not run (``NOSCRIPT``), goes
   through the ordinary path, item by item, in order. If anything was not
   written the call raises: the first item's error when nothing was written,
   else ``BatchPartlyApplied`` with every item's outcome.

On a cluster the processes live in different slots: the same validation, then
one call per process, pipelined per node, the nodes concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import AskError, RedisError

from lash_streams import observability as obs
from lash_streams.errors import (
    BackendError,
    BatchItemSkipped,
    BatchPartlyApplied,
    InvalidType,
    LashStreamsError,
    UnknownProcess,
)
from lash_streams.model import ProcessEventAppendRequest, ProcessEventAppendResult
from lash_streams.semantics.inputs import json_problem, require
from lash_streams.store.append import append, finish, prepare, replay_lookup, settle
from lash_streams.store.core import ProcessState, StoreCore, text
from lash_streams.store.inline_wakes import InlineWakes, observe
from lash_streams.store.retry import never_ran, server_error
from lash_streams.store.scripts import is_noscript

Item = tuple[str, ProcessEventAppendRequest]
#: Per item: its plan, its process's script keys, its ten script arguments.
Plans = list[tuple[Any, list[str], list[Any]]]
#: Per process: its id, script keys and ``append_batch`` arguments (hash,
#: item count, items).
Call = tuple[str, list[str], list[Any]]
Outcome = ProcessEventAppendResult | LashStreamsError | None


class _PlanFailed(Exception):
    def __init__(self, index: int, error: LashStreamsError) -> None:
        self.index = index
        self.error = error


class _ReplayInBatch(Exception):
    """A keyed item that fails validation is a replay (EV-2.3): the batch
    takes the ordinary path, which answers each item as one append would."""


class BatchOps(StoreCore):
    async def append_events(self, items: Sequence[Item]) -> list[ProcessEventAppendResult]:
        """Append ``(process_id, request)`` items; results in input order.

        Nothing is written when an item is invalid. Items without a replay key
        are sent once (RX-18): if the connection drops mid-batch the call raises
        ``WriteOutcomeUnknown``; with every item keyed, the batch is retried."""
        items = list(items)
        for index, item in enumerate(items):
            require(item, tuple, f"item {index}")
            if len(item) != 2:
                raise InvalidType(f"item {index} must be a (process_id, request) pair")
            require(item[0], str, f"item {index} process id")
            require(item[1], ProcessEventAppendRequest, f"item {index} request")
        if not items:
            return []
        states = await self._batch_states(items)
        try:
            planned = await self._plan_batch(items, states)
        except _ReplayInBatch:
            planned = None
        if planned is None:
            outcomes = await self._append_in_order(items, range(len(items)))
        else:
            outcomes = await self._commit(items, planned, states)
        return _results(outcomes)

    async def _batch_states(self, items: list[Item]) -> dict[str, tuple[ProcessState, bool]]:
        """Each process's planning state and whether it was read just now;
        the uncached ones in one pipelined read."""
        states: dict[str, tuple[ProcessState, bool]] = {}
        missing: list[str] = []
        for pid in dict.fromkeys(pid for pid, _ in items):
            cached = self.cached_state(pid)
            if cached is None:
                missing.append(pid)
            else:
                states[pid] = (cached, False)
        states.update(await self._read_states(missing))
        return states

    async def _read_states(self, pids: list[str]) -> dict[str, tuple[ProcessState, bool]]:
        rows = await self.record_fields_many(pids)
        states: dict[str, tuple[ProcessState, bool]] = {}
        for pid, fields in zip(pids, rows, strict=True):
            if not fields:
                self.forget(pid)
                raise UnknownProcess(pid)
            states[pid] = (self.remember(pid, fields), True)
        return states

    async def _plan_batch(
        self, items: list[Item], states: dict[str, tuple[ProcessState, bool]]
    ) -> Plans:
        try:
            return self._plan(items, states)
        except _PlanFailed as failed:
            stale = [pid for pid, (_, fresh) in states.items() if not fresh]
            if not stale:
                await self._replay_decides(items[failed.index])
                raise failed.error from None
        # Planned against a cache: the server's state decides (it may have changed).
        states.update(await self._read_states(stale))
        try:
            return self._plan(items, states)
        except _PlanFailed as failed:
            await self._replay_decides(items[failed.index])
            raise failed.error from None

    def _plan(self, items: list[Item], states: dict[str, tuple[ProcessState, bool]]) -> Plans:
        simulated = {pid: state.copy() for pid, (state, _) in states.items()}
        planned: Plans = []
        for index, (pid, request) in enumerate(items):
            state = simulated[pid]
            try:
                planned_item, keys, item = prepare(self, pid, request, state)
            except LashStreamsError as err:
                raise _PlanFailed(index, err) from None
            if planned_item.plan.status_update is not None:
                state.terminal = True  # a later terminal of this batch is refused
            planned.append((planned_item, keys, item))
        return planned

    async def _replay_decides(self, item: Item) -> None:
        """EV-2.3: an existing replay key decides before validation, so an
        invalid keyed item may be a replay; the ordinary path then answers
        each item as one append would."""
        pid, request = item
        key = request.replay.key if request.replay is not None else None
        if key is None or json_problem(key) is not None:
            return  # an unstorable key was never stored: no replay to find
        if await replay_lookup(self, pid, request, key) is not None:
            raise _ReplayInBatch

    async def _commit(
        self,
        items: list[Item],
        planned: Plans,
        states: dict[str, tuple[ProcessState, bool]],
    ) -> list[Outcome]:
        # One script call per process: its items, in input order.
        groups: dict[str, list[int]] = {}
        for index, (pid, _) in enumerate(items):
            groups.setdefault(pid, []).append(index)
        calls: list[Call] = []
        # A single server: the script delivers the wakes too (inline_wakes),
        # their keys after every process's.
        inline = None if self.cluster else InlineWakes(self, 8 * len(groups) + 1)
        for pid, indexes in groups.items():
            state = states[pid][0]
            record = state.planning_record() if inline is not None else None
            args: list[Any] = [state.registration_hash, len(indexes)]
            for position, index in enumerate(indexes):
                item = planned[index][2]
                args += item
                if record is None or inline is None or item[0][2] != "1":
                    args.append(b"")
                    continue
                seq = state.seq + position + 1
                args.append(inline.pack(record, items[index][1], planned[index][0], item[9], seq))
            calls.append((pid, planned[indexes[0]][1], args))

        async def run() -> list[Any]:
            if self.cluster:
                return await self._run_per_node(calls)
            # A single server: one call, one atomic step for the whole batch.
            keys = [key for _, call_keys, _ in calls for key in call_keys]
            keys += inline.keys if inline is not None else []
            args = [self.wake_dedupe_window_ms, len(calls)]
            args += [arg for _, _, call_args in calls for arg in call_args]
            replies: list[Any] = await self.scripts.append_batch(keys=keys, args=args)
            return replies

        keyed = all(request.replay is not None for _, request in items)
        what = f"append a batch of {len(items)} events"
        replies = await (self.retry.idempotent(what, run) if keyed else self.retry.once(what, run))
        outcomes: list[Outcome] = [None] * len(items)
        rerun: list[int] = []
        terminals: dict[str, int] = {}
        deliveries: list[tuple[Any, bytes]] = []
        delivered_here: list[tuple[Any, bool]] = []
        tally = {"appended": 0, "replayed": 0}
        for (pid, indexes), reply in zip(groups.items(), replies, strict=True):
            state = states[pid][0]
            if is_noscript(reply) or isinstance(reply, AskError) or never_ran(reply):
                # Did not run: the ordinary path reloads the scripts, follows the
                # slot, retries a refusal such as TRYAGAIN (a slot's keys split
                # over two nodes while it moves).
                rerun += indexes
                continue
            if isinstance(reply, Exception):
                first = items[indexes[0]][1]
                what = f"append `{first.event_type}` to process `{pid}`"
                outcomes[indexes[0]] = (
                    server_error(what, reply)
                    if isinstance(reply, RedisError)
                    else BackendError(f"{what}: {reply}", process_id=pid)
                )
                _skip_after(outcomes, pid, indexes, 0)
                continue
            status = text(reply[0])
            if status != "ITEMS":
                # NOPROC raises UnknownProcess for the first item; STALE (the
                # registration changed) forgets the cache and reruns them all.
                try:
                    settle(self, pid, items[indexes[0]][1], state, planned[indexes[0]][0], reply)
                except LashStreamsError as err:
                    outcomes[indexes[0]] = err
                    _skip_after(outcomes, pid, indexes, 0)
                    continue
                rerun += indexes
                continue
            now_ms, wt = reply[1], reply[2]
            for position, item_reply in enumerate(reply[3:]):
                if type(item_reply) is int:  # a plain OK: its sequence alone
                    item_reply = [b"OK", item_reply, now_ms, wt, b""]
                index = indexes[position]
                request = items[index][1]
                plan = planned[index][0]
                try:
                    result = settle(self, pid, request, state, plan, item_reply, tally)
                except LashStreamsError as err:
                    outcomes[index] = err
                    _skip_after(outcomes, pid, indexes, position)
                    break
                assert isinstance(result, ProcessEventAppendResult)
                outcomes[index] = result
                if text(item_reply[0]) == "OK":
                    if plan.plan.status_update is not None:
                        terminals[pid] = int(item_reply[2])
                    if result.wake_delivery is not None and item_reply[4]:
                        deliveries.append((result.wake_delivery, item_reply[4]))
                    elif result.wake_delivery is not None and len(item_reply) > 5:
                        delivered_here.append((result.wake_delivery, text(item_reply[5]) == "NEW"))
        if obs.hooks is not None:
            for settled, count in tally.items():
                if count:
                    obs.hooks.append_settled(settled, count)
        await observe(delivered_here)
        await finish(self, terminals, deliveries)
        if rerun:
            again = await self._append_in_order(items, sorted(rerun))
            for index, outcome in enumerate(again):
                if outcome is not None:
                    outcomes[index] = outcome
        return outcomes

    async def _run_per_node(self, calls: list[Call]) -> list[Any]:
        """On a cluster: one call per process (its keys share a slot), one
        pipeline per node (a plain client of that node, redis-py's cluster
        pipeline refuses scripts), the nodes concurrently. A call the node
        redirects (the slot moved) did not run: the ordinary path takes its
        items. Per call: its process's reply, or the error it got."""
        by_node: dict[int, tuple[Any, list[int]]] = {}
        for position, (_, keys, _) in enumerate(calls):
            client = self.blocking_for(keys[0])
            by_node.setdefault(id(client), (client, []))[1].append(position)
        replies: list[Any] = [None] * len(calls)

        async def send(client: Any, positions: list[int]) -> None:
            pipe = client.pipeline(transaction=False)
            for position in positions:
                _, keys, args = calls[position]
                args = [self.wake_dedupe_window_ms, 1, *args]
                await self.scripts.append_batch(keys=keys, args=args, client=pipe)
            answers = await pipe.execute(raise_on_error=False)
            for position, reply in zip(positions, answers, strict=True):
                replies[position] = reply if isinstance(reply, Exception) else reply[0]

        await asyncio.gather(*(send(client, positions) for client, positions in by_node.values()))
        # A redirected call needs no new node clients: the route comes from the
        # cluster client's slot map, which the ordinary path's redirections
        # update. Closing them would cut other calls' commands in flight (an
        # unkeyed batch would get WriteOutcomeUnknown for a slot it never used).
        return replies

    async def _append_in_order(self, items: list[Item], indexes: Sequence[int]) -> list[Outcome]:
        """The ordinary path for ``indexes``: in order per process, processes
        concurrently; after a failure, that process's later items are skipped."""
        by_process: dict[str, list[int]] = {}
        for index in indexes:
            by_process.setdefault(items[index][0], []).append(index)
        outcomes: list[Outcome] = [None] * len(items)

        async def run(pid: str, chain: list[int]) -> None:
            for position, index in enumerate(chain):
                try:
                    outcomes[index] = await append(self, pid, items[index][1])
                except LashStreamsError as err:
                    outcomes[index] = err
                    for later in chain[position + 1 :]:
                        outcomes[later] = _skipped(pid, index)
                    return

        await asyncio.gather(*(run(pid, chain) for pid, chain in by_process.items()))
        return outcomes


def _skip_after(outcomes: list[Outcome], pid: str, indexes: list[int], position: int) -> None:
    """The items of ``pid`` after the refused one at ``position`` did not run."""
    for later in indexes[position + 1 :]:
        outcomes[later] = _skipped(pid, indexes[position])


def _skipped(pid: str, refused_index: int) -> BatchItemSkipped:
    return BatchItemSkipped(
        f"not written: item {refused_index} of process `{pid}` in this batch was refused",
        process_id=pid,
    )


def _results(outcomes: list[Outcome]) -> list[ProcessEventAppendResult]:
    results = [o for o in outcomes if isinstance(o, ProcessEventAppendResult)]
    if len(results) == len(outcomes):
        return results
    errors = [o for o in outcomes if isinstance(o, LashStreamsError)]
    if not results:
        raise errors[0]
    raise BatchPartlyApplied(
        f"{len(results)} of {len(outcomes)} batch items written or replayed; "
        f"{len(errors)} not written (see .outcomes)",
        outcomes=list(outcomes),
    )


__all__ = ["BatchOps"]
