"""The soak checker over planted histories and observations (no server): each
defect is named by the invariant that catches it, and only by that one."""

from __future__ import annotations

import msgspec

from lash_streams.soak.checker import OKAY, VIOLATED, WITHIN_TIER, RunFacts, Verdict, check
from lash_streams.soak.history import OK, Entry
from lash_streams.soak.observe import Observed, StoredEvent


def sent(op: str, id: str, **fields: object) -> Entry:
    return Entry(op=op, id=id, actor=str(fields.pop("actor", "a1")), inc=0, **fields)  # type: ignore[arg-type]


def done(entry: Entry, outcome: str = OK, **fields: object) -> Entry:
    return msgspec.structs.replace(entry, outcome=outcome, **fields)  # type: ignore[arg-type]


def healthy() -> tuple[list[Entry], Observed]:
    """One process, three acknowledged values (the second wakes), completed;
    its wake handled by a consumer."""
    history: list[Entry] = []
    reg = sent("register", "r1", pid="p")
    history += [reg, done(reg)]
    for n in (1, 2, 3):
        app = sent("append", f"v{n}", pid="p", value=f"v{n}", key=f"v{n}", wake=n == 2)
        history += [app, done(app, seq=n)]
    comp = sent("complete", "c1", pid="p")
    history += [comp, done(comp)]
    history.append(Entry(op="wake", id="w1", actor="c1", inc=0, outcome=OK, pid="p", seq=2))
    events = [StoredEvent("p", n, "soak.v", f"v{n}", wake=n == 2) for n in (1, 2, 3)]
    events.append(StoredEvent("p", 4, "process.completed", terminal="completed"))
    return history, Observed(statuses={"p": "completed"}, events={"p": events})


def verdicts(history: list[Entry], observed: Observed, **facts: object) -> dict[str, Verdict]:
    return {v.name: v for v in check(history, observed, RunFacts(**facts))}  # type: ignore[arg-type]


def failing(found: dict[str, Verdict]) -> set[str]:
    return {name for name, v in found.items() if v.status != OKAY}


def test_a_healthy_history_passes_every_invariant():
    found = verdicts(*healthy())
    assert failing(found) == set()
    assert found["acknowledged_appends_present"].counts["acknowledged_present"] == 3


def lose_the_tail() -> tuple[list[Entry], Observed]:
    """The last append and the completion gone (a server restarted from an
    AOF that missed its last second), the completion never acknowledged."""
    history, observed = healthy()
    history = [e for e in history if e.op != "complete"]
    observed.events["p"] = observed.events["p"][:2]
    observed.statuses["p"] = "running"
    return history, observed


def test_an_acknowledged_value_missing_from_the_log_is_lost():
    history, observed = lose_the_tail()
    found = verdicts(history, observed)
    assert failing(found) == {"acknowledged_appends_present"}
    assert found["acknowledged_appends_present"].counts["lost"] == 1
    assert "v3" in found["acknowledged_appends_present"].examples[0]


def test_a_loss_the_servers_settings_allow_is_within_tier_not_a_failure():
    history, observed = lose_the_tail()
    found = verdicts(history, observed, loss_allowed=True)
    assert found["acknowledged_appends_present"].status == WITHIN_TIER
    assert not any(v.status == VIOLATED for v in found.values())


def test_a_value_under_two_sequences_is_duplicated():
    history, observed = healthy()
    observed.events["p"].insert(3, StoredEvent("p", 4, "soak.v", "v1"))
    observed.events["p"][-1] = StoredEvent("p", 5, "process.completed", terminal="completed")
    found = verdicts(history, observed)
    assert failing(found) == {"no_duplicates"}
    assert "v1 at p#1, p#4" in found["no_duplicates"].examples[0]


def test_a_value_nobody_wrote_is_unexpected():
    history, observed = healthy()
    observed.events["p"].insert(3, StoredEvent("p", 4, "soak.v", "ghost"))
    observed.events["p"][-1] = StoredEvent("p", 5, "process.completed", terminal="completed")
    found = verdicts(history, observed)
    assert failing(found) == {"no_unexpected"}
    assert "ghost" in found["no_unexpected"].examples[0]


def test_a_refused_write_found_in_the_log_is_unexpected():
    history, observed = healthy()
    app = sent("append", "v9", pid="p", value="v9", key="v9")
    history += [app, done(app, "error:LeaseFenced")]
    observed.events["p"].insert(3, StoredEvent("p", 4, "soak.v", "v9"))
    observed.events["p"][-1] = StoredEvent("p", 5, "process.completed", terminal="completed")
    found = verdicts(history, observed)
    assert failing(found) == {"no_unexpected"}
    assert "refused" in found["no_unexpected"].examples[0]


def test_a_process_nobody_registered_is_unexpected():
    history, observed = healthy()
    observed.statuses["stranger"] = "running"
    observed.events["stranger"] = []
    assert failing(verdicts(history, observed)) == {"no_unexpected"}


def test_an_unknown_outcome_is_fine_present_or_absent():
    history, observed = healthy()
    history.append(sent("append", "v8", pid="p", value="v8", key="v8"))  # no result: killed
    history.append(sent("append", "v7", pid="p", value="v7", key="v7"))
    observed.events["p"].insert(3, StoredEvent("p", 4, "soak.v", "v8"))
    observed.events["p"][-1] = StoredEvent("p", 5, "process.completed", terminal="completed")
    found = verdicts(history, observed)
    assert failing(found) == set()
    assert found["acknowledged_appends_present"].counts["unknown"] == 2


def test_a_gap_in_the_sequences_is_named():
    history, observed = healthy()
    events = observed.events["p"]
    events[2] = StoredEvent("p", 4, "soak.v", "v3")
    events[3] = StoredEvent("p", 5, "process.completed", terminal="completed")
    found = verdicts(history, observed)
    assert "sequences_gapless" in failing(found)
    assert "[1, 2, 4, 5]" in found["sequences_gapless"].examples[0]


def test_an_acknowledged_sequence_holding_another_value_is_named():
    history, observed = healthy()
    events = observed.events["p"]
    events[0] = StoredEvent("p", 1, "soak.v", "v2", wake=True)
    events[1] = StoredEvent("p", 2, "soak.v", "v1")
    found = verdicts(history, observed)
    assert "sequences_gapless" in failing(found)
    assert found["sequences_gapless"].counts["seq_mismatch"] == 2


def test_two_terminals_are_named():
    history, observed = healthy()
    observed.events["p"].append(StoredEvent("p", 5, "process.failed", terminal="failed"))
    found = verdicts(history, observed)
    assert failing(found) == {"one_terminal"}
    assert "2 terminals" in found["one_terminal"].examples[0]


def test_an_acknowledged_completion_without_a_terminal_is_named():
    history, observed = healthy()
    observed.events["p"].pop()
    observed.statuses["p"] = "running"
    found = verdicts(history, observed)
    assert failing(found) == {"one_terminal"}
    assert "completion acknowledged" in found["one_terminal"].examples[0]


def test_a_wake_nobody_consumed_is_undelivered():
    history, observed = healthy()
    history = [e for e in history if e.op != "wake"]
    found = verdicts(history, observed)
    assert failing(found) == {"wakes_delivered"}


def test_a_wake_for_an_event_not_in_the_log_is_a_phantom():
    history, observed = healthy()
    history.append(Entry(op="wake", id="w2", actor="c1", inc=0, outcome=OK, pid="p", seq=3))
    found = verdicts(history, observed)
    assert failing(found) == {"no_phantom_wakes"}


def test_a_wake_handled_twice_is_allowed_and_counted():
    history, observed = healthy()
    history.append(Entry(op="wake", id="w2", actor="c2", inc=0, outcome=OK, pid="p", seq=2))
    found = verdicts(history, observed)
    assert failing(found) == set()
    assert found["wakes_delivered"].counts["redelivered"] == 1


def job(owner: str | None) -> tuple[list[Entry], Observed]:
    history, observed = healthy()
    sub = sent("submit", "j1", pid="job.x")
    history += [sub, done(sub)]
    history.append(Entry(op="job_start", id="s1", actor="w1", inc=0, outcome=OK, pid="job.x"))
    observed.statuses["job.x"] = "abandoned"
    observed.events["job.x"] = [
        StoredEvent("job.x", 1, "process.abandoned", terminal="abandoned", owner=owner)
    ]
    return history, observed


def test_an_abandonment_whose_owner_lives_is_a_terminal_from_time():
    found = verdicts(*job("w1"))
    assert failing(found) == {"no_terminal_from_time"}
    assert "w1#0 was neither killed nor stopped" in found["no_terminal_from_time"].examples[0]


def test_an_abandonment_of_a_killed_owners_work_is_fine():
    found = verdicts(*job("w1:recovery:1"), killed=frozenset({("w1", 0)}))
    assert failing(found) == set()
    history, observed = job(None)  # no owner in the evidence: the history's starter
    history.append(Entry(op="shutdown", id="x1", actor="w1", inc=0, outcome=OK))
    assert failing(verdicts(history, observed)) == set()


def test_a_stale_owners_write_accepted_is_named():
    history, observed = healthy()
    stale = sent("stale_append", "v5", pid="p", value="v5", key="v5")
    history += [stale, done(stale, OK, seq=5)]
    found = verdicts(history, observed)
    assert found["stale_writes_refused"].status == VIOLATED
    history[-1] = done(stale, "error:LeaseFenced")
    found = verdicts(history, observed)
    assert found["stale_writes_refused"].status == OKAY
    assert found["stale_writes_refused"].counts["refused"] == 1


def test_a_stale_write_of_unknown_outcome_must_still_be_absent():
    history, observed = healthy()
    history.append(sent("stale_append", "v5", pid="p", value="v5", key="v5"))
    assert verdicts(history, observed)["stale_writes_refused"].status == OKAY
    observed.events["p"].insert(3, StoredEvent("p", 4, "soak.v", "v5"))
    observed.events["p"][-1] = StoredEvent("p", 5, "process.completed", terminal="completed")
    assert verdicts(history, observed)["stale_writes_refused"].status == VIOLATED


def test_an_owner_bound_job_started_by_a_second_incarnation_is_named():
    history, observed = healthy()
    sub = sent("submit", "j1", pid="job.x", key="owner_bound")
    history += [sub, done(sub)]
    start = Entry(op="job_start", id="s1", actor="w1", inc=0, outcome=OK, pid="job.x")
    retry = Entry(op="job_start", id="s2", actor="w1", inc=0, outcome=OK, pid="job.x")
    observed.statuses["job.x"] = "running"
    observed.events["job.x"] = []
    assert failing(verdicts([*history, start, retry], observed)) == set()  # a retry: one owner
    again = Entry(op="job_start", id="s9", actor="w1", inc=1, outcome=OK, pid="job.x")
    found = verdicts([*history, start, again], observed)
    assert failing(found) == {"owner_bound_runs_once"}
    assert found["owner_bound_runs_once"].examples == ["job.x: started by w1#0, w1#1"]


def test_an_abandonment_is_explained_only_by_the_incarnation_that_started_the_job():
    history, observed = job("w1")
    # w1's first incarnation was killed, but the job ran on its second, alive.
    history = [msgspec.structs.replace(e, inc=1) if e.op == "job_start" else e for e in history]
    found = verdicts(history, observed, killed=frozenset({("w1", 0)}))
    assert failing(found) == {"no_terminal_from_time"}
    assert "w1#1 was neither killed nor stopped" in found["no_terminal_from_time"].examples[0]


def test_an_abandonment_before_the_start_line_falls_back_to_the_evidence():
    history, observed = job("w1")
    history = [e for e in history if e.op != "job_start"]  # killed before writing it
    assert failing(verdicts(history, observed, killed=frozenset({("w1", 2)}))) == set()
    assert failing(verdicts(history, observed)) == {"no_terminal_from_time"}
