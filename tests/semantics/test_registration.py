"""Registration preparation (RG-2..RG-4) and storable ids."""

from __future__ import annotations

import msgspec
import pytest

from lash_streams import errors
from lash_streams.model import (
    InputEngine,
    ProcessRegistration,
    ProcessTerminalState,
    SessionScope,
    default_process_event_types,
)
from lash_streams.semantics import MAX_ID_BYTES, prepare_registration, validate_storable_id
from tests.semantics._fixtures import plain, reg, terminal_type

DEFAULT_NAMES = [t.name for t in default_process_event_types()]


def _bare(pid: str, *types: object) -> ProcessRegistration:
    """A registration declaring only ``types`` (no defaults yet)."""
    return msgspec.structs.replace(ProcessRegistration.external(pid), event_types=list(types))


@pytest.mark.parametrize(
    ("registration", "message"),
    [
        (reg("   "), "process id must be a non-empty string"),
        (reg(""), "process id must be a non-empty string"),
        (reg("\u3000\u2003\n"), "process id must be a non-empty string"),
        (reg("p", plain("x"), plain("x")), "process `p` declares duplicate event type `x`"),
        (reg("p", plain(" ")), "process `p` declares an empty event type"),
        (
            reg("p", terminal_type("job.failed", ProcessTerminalState.FAILED, None)),
            "terminal event `job.failed` for process `p` must declare await output",
        ),
        (
            msgspec.structs.replace(reg("p"), env_ref="env-1"),
            "process `p` must not capture an execution env for this input kind",
        ),
        (
            msgspec.structs.replace(reg("p"), input=InputEngine(kind="k")),
            "process `p` requires a captured execution env",
        ),
    ],
)
def test_s_reg_03_invalid_registrations(registration: ProcessRegistration, message: str) -> None:
    """S-REG-03 (pure part), ID-1, RG-3: lash's messages, nothing prepared."""
    with pytest.raises(errors.InvalidRegistration) as caught:
        prepare_registration(registration)
    assert str(caught.value) == message


def test_rg_3_trim_is_rusts_white_space_not_pythons() -> None:
    """ID-1: Rust's trim keeps U+001C..U+001F, which Python's strip removes."""
    prepared, _ = prepare_registration(reg("\x1c"))
    assert prepared.id == "\x1c"


def test_rg_3_completed_terminal_needs_no_selector() -> None:
    """RG-3: only non-completed terminals must declare await output."""
    prepare_registration(reg("p", terminal_type("done", ProcessTerminalState.COMPLETED, None)))


def test_s_reg_04_rg_2_defaults_are_appended_after_declared_types() -> None:
    """S-REG-04 (pure part), RG-2, ET-2: declared first, missing defaults after
    in ET-2 order; declaring a default's name overrides it in place."""
    prepared, _ = prepare_registration(_bare("p", plain("x")))
    assert [t.name for t in prepared.event_types] == ["x", *DEFAULT_NAMES]
    override = plain("process.failed", {"type": "object"})
    prepared, _ = prepare_registration(_bare("p", override, plain("x")))
    names = [t.name for t in prepared.event_types]
    assert names == ["process.failed", "x", *[n for n in DEFAULT_NAMES if n != "process.failed"]]
    assert prepared.event_types[0] == override


def test_rg_4_hash_is_deterministic_and_order_sensitive() -> None:
    """RG-4: equal registrations hash equally; any difference, including the
    order of declared types, changes the hash; the hash covers the prepared
    value, so declaring the defaults explicitly in ET-2 order is the same."""
    _, first = prepare_registration(reg("p"))
    _, again = prepare_registration(reg("p"))
    assert first == again and len(first) == 64
    _, bare = prepare_registration(_bare("p"))
    assert bare == first
    _, extra = prepare_registration(reg("p", plain("x")))
    _, swapped = prepare_registration(_bare("p", plain("x"), *default_process_event_types()))
    assert len({first, extra, swapped}) == 3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("\ud800", "UTF-8"),
        ("\udcff", "UTF-8"),
        ("a\udfffb", "UTF-8"),
        ("x" * (MAX_ID_BYTES + 1), "513 bytes"),
        ("é" * (MAX_ID_BYTES // 2 + 1), "514 bytes"),
    ],
)
def test_ids_that_cannot_be_stored(value: str, message: str) -> None:
    """Storable ids (adapter rule): valid UTF-8 (no lone surrogates), at most
    512 UTF-8 bytes -- checked both directly and at registration."""
    with pytest.raises(errors.InvalidId, match=message):
        validate_storable_id("process id", value)
    with pytest.raises(errors.InvalidId):
        prepare_registration(reg(value))


def test_storable_ids_at_the_limit_and_wake_targets() -> None:
    """The 512-byte limit counts UTF-8 bytes, not characters; wake target
    session and frame ids are checked too."""
    assert (
        validate_storable_id("process id", "é" * (MAX_ID_BYTES // 2))
        == ("é" * (MAX_ID_BYTES // 2)).encode()
    )
    assert validate_storable_id("process id", "ok") == b"ok"
    with pytest.raises(errors.InvalidId, match="must be a string"):
        validate_storable_id("process id", b"bytes")
    bad_frame = SessionScope(session_id="s", agent_frame_id="\udc80")
    with pytest.raises(errors.InvalidId, match="frame"):
        prepare_registration(reg("p", wake_target=bad_frame))


def test_unencodable_event_type_name_is_an_invalid_registration() -> None:
    """A lone surrogate cannot be serde JSON, so the registration cannot hash."""
    with pytest.raises(errors.InvalidRegistration, match="cannot be encoded"):
        prepare_registration(reg("p", plain("bad\ud800")))


def test_event_types_that_read_back_once_do_not_excuse_the_rest_of_a_registration():
    """The read-back check decodes only the registration's other fields once
    its (frozen, identical) event types have read back as themselves; a
    mistyped field elsewhere is still refused, and a new event type that does
    not read back is still found."""
    good = reg("first")
    prepare_registration(good)  # its event types are now known to read back
    for bad in (
        msgspec.structs.replace(good, id="second", disposition="rerunnable"),
        msgspec.structs.replace(good, id="second", input="x"),
    ):
        with pytest.raises(errors.InvalidRegistration, match="second"):
            prepare_registration(bad)
    odd = msgspec.structs.replace(
        plain("odd"), semantics=msgspec.structs.replace(plain("odd").semantics, wake="w")
    )
    with pytest.raises(errors.InvalidRegistration):
        prepare_registration(msgspec.structs.replace(good, id="third", event_types=[odd]))
    # The same registration again passes, and hashes the same.
    assert prepare_registration(good)[1] == prepare_registration(reg("first"))[1]
