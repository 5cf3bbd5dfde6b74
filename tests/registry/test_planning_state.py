"""The append path's cached planning record (store/core.py ProcessState):
reused while the state it was built from holds, rebuilt when it changes."""

from __future__ import annotations

from lash_streams.store.core import ProcessState

from ..conformance.fixtures import reg, scope


def _state() -> ProcessState:
    return ProcessState(
        registration=reg("p"), registration_hash="h1", seq=0, terminal=False, wake_target=None
    )


def test_a_planning_record_is_reused_while_its_state_holds() -> None:
    state = _state()
    first = state.planning_record()
    state.seq = 7  # informational: not part of the record
    assert state.planning_record() is first
    assert not first.is_terminal() and first.wake_target is None


def test_a_planning_record_follows_every_change_it_is_built_from() -> None:
    state = _state()
    running = state.planning_record()
    state.terminal = True  # EV-2.8: a later terminal is refused
    assert state.planning_record().is_terminal()
    state.terminal = False
    assert not state.planning_record().is_terminal()
    state.wake_target = scope("s1")
    assert state.planning_record().wake_target == scope("s1")
    state.registration_hash = "h2"
    assert state.planning_record().registration_hash == "h2"
    state.registration = reg("p", wake_target=scope("s2"))
    assert state.planning_record() is not running
    assert state.planning_record().registration_hash == "h2"


def test_two_states_compare_without_their_cached_records() -> None:
    a, b = _state(), _state()
    a.planning_record()
    assert a == b


def test_a_batch_copy_shares_the_record_until_its_own_state_changes() -> None:
    state = _state()
    record = state.planning_record()
    copy = state.copy()
    assert copy.planning_record() is record
    copy.terminal = True  # a batch's terminal item: later ones are refused
    assert copy.planning_record().is_terminal()
    assert not state.terminal and state.planning_record() is record
