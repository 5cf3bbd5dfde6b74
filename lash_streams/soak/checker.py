"""The history checker: pure functions over the workload's histories and what
was read from the bus afterwards (observe.py).

Every value an append carried is classified, as Jepsen's queue checkers do:
acknowledged and present, lost (acknowledged, absent), duplicated (present
under two sequences), unexpected (present, yet nobody wrote it or its write
was refused) or unknown (outcome unknown: present or not, both fine). Each
invariant then gets a verdict: ``ok``, ``violated``, or ``within_tier`` for a
loss the server's settings allow (RunFacts.loss_allowed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import msgspec

from lash_streams.soak.history import OK, UNKNOWN, Entry, Op, ops_of
from lash_streams.soak.observe import Observed, StoredEvent

OKAY, VIOLATED, WITHIN_TIER = "ok", "violated", "within_tier"
VALUE_OPS = ("append", "job_append", "stale_append")
EXAMPLES = 5

MEANING = {
    "acknowledged_appends_present": "every append the server acknowledged is in the log",
    "no_duplicates": "no value is in the log twice (replay keys made retries one event)",
    "no_unexpected": "nothing is in the log that nobody wrote, or whose write was refused",
    "sequences_gapless": "each process's sequences are 1, 2, 3, ... with no gap, and "
    "each acknowledged sequence holds the value it was acknowledged for",
    "one_terminal": "a process has at most one terminal, last, matching its status; "
    "an acknowledged completion is there",
    "wakes_delivered": "every wake-bearing event reached a consumer at least once",
    "no_phantom_wakes": "no consumer got a wake for an event that is not in the log",
    "no_terminal_from_time": "`abandoned` only for work whose owner was killed or stopped",
    "stale_writes_refused": "a write under a lease another owner took over is refused",
    "owner_bound_runs_once": "a started owner-bound job never runs in a second worker "
    "incarnation (it is abandoned instead)",
}


class RunFacts(msgspec.Struct, frozen=True):
    """What the run knows besides the histories."""

    #: The server may lose acknowledged writes in this run (no fsync on every
    #: write and a server restart or failover seen): losses are within tier.
    loss_allowed: bool = False
    tier_note: str = ""
    #: (actor, incarnation) of every process SIGKILLed during the run.
    killed: frozenset[tuple[str, int]] = frozenset()


class Verdict(msgspec.Struct):
    name: str
    status: str
    counts: dict[str, int]
    examples: list[str]
    meaning: str


def _verdict(
    name: str, counts: dict[str, int], bad: list[str], *, lossy: bool = False, facts: RunFacts
) -> Verdict:
    status = OKAY
    if bad:
        status = WITHIN_TIER if lossy and facts.loss_allowed else VIOLATED
    return Verdict(name, status, counts, bad[:EXAMPLES], MEANING[name])


def _values(observed: Observed) -> dict[str, list[StoredEvent]]:
    found: dict[str, list[StoredEvent]] = defaultdict(list)
    for events in observed.events.values():
        for event in events:
            if event.value is not None:
                found[event.value].append(event)
    return found


def _at(observed: Observed, pid: str | None, seq: int | None) -> StoredEvent | None:
    events = observed.events.get(pid or "", [])
    if seq is None or not 1 <= seq <= len(events) or events[seq - 1].seq != seq:
        return next((e for e in events if e.seq == seq), None)
    return events[seq - 1]


def classify(ops: Iterable[Op], observed: Observed) -> dict[str, list[str]]:
    """Value -> its class, for every value written or found."""
    written: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.entry.op in VALUE_OPS and op.entry.value is not None:
            written[op.entry.value].append(op)
    found = _values(observed)
    classes: dict[str, list[str]] = defaultdict(list)
    for value in sorted(set(written) | set(found)):
        mine, there = written.get(value, []), found.get(value, [])
        acked = any(o.outcome == OK for o in mine)
        unknown = any(o.outcome == UNKNOWN for o in mine)
        where = ", ".join(f"{e.pid}#{e.seq}" for e in there)
        if len(there) > 1:
            classes["duplicated"].append(f"{value} at {where}")
        elif not mine:
            classes["unexpected"].append(f"{value} at {where} (nobody wrote it)")
        elif there and not acked and not unknown:
            classes["unexpected"].append(f"{value} at {where} (its write was refused)")
        elif acked and not there:
            classes["lost"].append(f"{value} (acknowledged, not in the log)")
        elif acked:
            classes["acknowledged_present"].append(value)
        elif unknown:
            classes["unknown"].append(value)
        else:
            classes["refused_absent"].append(value)
    return classes


def check(entries: Iterable[Entry], observed: Observed, facts: RunFacts) -> list[Verdict]:
    ops = ops_of(entries)
    classes = classify(ops, observed)
    counts = {k: len(classes.get(k, [])) for k in (
        "acknowledged_present", "lost", "duplicated", "unexpected", "unknown", "refused_absent",
    )}  # fmt: skip
    written_pids = {
        o.entry.pid for o in ops if o.entry.op in ("register", "submit") and o.entry.pid
    }
    strangers = [
        f"process {p} (nobody registered it)" for p in observed.statuses if p not in written_pids
    ]
    return [
        _verdict(
            "acknowledged_appends_present", counts, classes.get("lost", []), lossy=True, facts=facts
        ),
        _verdict(
            "no_duplicates",
            {"duplicated": counts["duplicated"]},
            classes.get("duplicated", []),
            facts=facts,
        ),
        _verdict(
            "no_unexpected",
            {"unexpected": counts["unexpected"], "unexpected_processes": len(strangers)},
            classes.get("unexpected", []) + strangers,
            facts=facts,
        ),
        check_sequences(ops, observed, facts),
        check_terminals(ops, observed, facts),
        *check_wakes(ops, observed, facts),
        check_abandonments(ops, observed, facts),
        check_stale(ops, observed, facts),
        check_owner_bound(ops, facts),
    ]


def check_sequences(ops: list[Op], observed: Observed, facts: RunFacts) -> Verdict:
    bad = []
    for pid, events in sorted(observed.events.items()):
        seqs = [e.seq for e in events]
        if seqs != list(range(1, len(seqs) + 1)):
            bad.append(f"{pid}: sequences {seqs[:12]}{'...' if len(seqs) > 12 else ''}")
    mismatched = []
    for op in ops:
        e = op.entry
        if e.op in VALUE_OPS and op.outcome == OK and e.seq is not None:
            stored = _at(observed, e.pid, e.seq)
            if stored is not None and stored.value != e.value:
                mismatched.append(
                    f"{e.pid}#{e.seq} acknowledged for {e.value}, holds {stored.value}"
                )
    counts = {"processes": len(observed.events), "gaps": len(bad), "seq_mismatch": len(mismatched)}
    return _verdict("sequences_gapless", counts, bad + mismatched, facts=facts)


def check_terminals(ops: list[Op], observed: Observed, facts: RunFacts) -> Verdict:
    bad, missing = [], []
    terminal_count = 0
    for pid, events in sorted(observed.events.items()):
        terminals = [e for e in events if e.terminal is not None]
        terminal_count += len(terminals)
        status = observed.statuses.get(pid, "running")
        if len(terminals) > 1:
            states = ", ".join(t.terminal or "" for t in terminals)
            bad.append(f"{pid}: {len(terminals)} terminals ({states})")
        elif terminals and terminals[0] is not events[-1]:
            bad.append(f"{pid}: events after its terminal #{terminals[0].seq}")
        elif terminals and terminals[0].terminal != status:
            bad.append(f"{pid}: terminal {terminals[0].terminal}, status {status}")
        elif not terminals and status != "running":
            bad.append(f"{pid}: status {status} without a terminal event")
    for op in ops:
        if op.entry.op == "complete" and op.outcome == OK:
            events = observed.events.get(op.entry.pid or "", [])
            if not any(e.terminal for e in events):
                missing.append(f"{op.entry.pid}: completion acknowledged, no terminal")
    counts = {"terminals": terminal_count, "bad": len(bad), "acknowledged_missing": len(missing)}
    verdict = _verdict("one_terminal", counts, bad + missing, lossy=not bad, facts=facts)
    return verdict


def check_wakes(ops: list[Op], observed: Observed, facts: RunFacts) -> list[Verdict]:
    bearing = {(pid, e.seq) for pid, events in observed.events.items() for e in events if e.wake}
    consumed: dict[tuple[str, int], int] = defaultdict(int)
    for op in ops:
        if op.entry.op == "wake" and op.entry.pid is not None and op.entry.seq is not None:
            consumed[(op.entry.pid, op.entry.seq)] += 1
    undelivered = [f"{p}#{s} never reached a consumer" for p, s in sorted(bearing - set(consumed))]
    phantom = [
        f"{p}#{s} consumed, not a wake-bearing event in the log"
        for p, s in sorted(set(consumed) - bearing)
    ]
    again = sum(n - 1 for n in consumed.values())
    return [
        _verdict(
            "wakes_delivered",
            {"wake_events": len(bearing), "undelivered": len(undelivered), "redelivered": again},
            undelivered,
            lossy=True,
            facts=facts,
        ),
        _verdict(
            "no_phantom_wakes",
            {"consumed": len(consumed), "phantom": len(phantom)},
            phantom,
            lossy=True,
            facts=facts,
        ),
    ]


def check_abandonments(ops: list[Op], observed: Observed, facts: RunFacts) -> Verdict:
    """The incarnation that started the job must be the one killed or
    stopped; a job whose start line was never written (its worker died
    first) falls back to the owner the evidence names, any incarnation."""
    starters: dict[str, set[tuple[str, int]]] = defaultdict(set)
    gone = set(facts.killed)
    for op in ops:
        if op.entry.op == "job_start" and op.entry.pid:
            starters[op.entry.pid].add((op.entry.actor, op.entry.inc))
        elif op.entry.op == "shutdown":
            gone.add((op.entry.actor, op.entry.inc))
    gone_names = {name for name, _ in gone}
    bad, abandoned = [], 0
    for pid, events in sorted(observed.events.items()):
        for e in events:
            if e.terminal != "abandoned":
                continue
            abandoned += 1
            owner = e.owner.split(":")[0] if e.owner else None
            started = {s for s in starters.get(pid, set()) if owner is None or s[0] == owner}
            explained = bool(started & gone) if started else owner in gone_names
            if not explained:
                who = ", ".join(f"{a}#{i}" for a, i in sorted(started)) or owner or "nobody"
                bad.append(f"{pid}: abandoned, owner {who} was neither killed nor stopped")
    return _verdict(
        "no_terminal_from_time", {"abandoned": abandoned, "unexplained": len(bad)}, bad, facts=facts
    )


def check_stale(ops: list[Op], observed: Observed, facts: RunFacts) -> Verdict:
    found = _values(observed)
    bad, refused = [], 0
    for op in ops:
        e = op.entry
        if e.op != "stale_append":
            continue
        if op.outcome == OK:
            bad.append(f"{e.pid}: write under a superseded lease acknowledged ({e.value})")
        elif e.value in found:
            bad.append(f"{e.pid}: write under a superseded lease is in the log ({e.value})")
        elif op.refused:
            refused += 1
    return _verdict(
        "stale_writes_refused", {"refused": refused, "accepted": len(bad)}, bad, facts=facts
    )


def check_owner_bound(ops: list[Op], facts: RunFacts) -> Verdict:
    """Retries inside one worker incarnation are the same owner; a second
    incarnation (or worker) starting the job is a second run."""
    bound = {o.entry.pid for o in ops if o.entry.op == "submit" and o.entry.key == "owner_bound"}
    runners: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for op in ops:
        if op.entry.op == "job_start" and op.entry.pid is not None and op.entry.pid in bound:
            runners[op.entry.pid].add((op.entry.actor, op.entry.inc))
    bad = [
        f"{pid}: started by " + ", ".join(f"{a}#{i}" for a, i in sorted(who))
        for pid, who in sorted(runners.items())
        if len(who) > 1
    ]
    counts = {"owner_bound_jobs": len(bound), "started": len(runners), "run_twice": len(bad)}
    return _verdict("owner_bound_runs_once", counts, bad, facts=facts)
