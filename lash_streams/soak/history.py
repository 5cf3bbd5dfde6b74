"""The local history every workload process writes: one JSON object a line.

An operation is written twice: its intent (``outcome="sent"``) before it is
sent, and its result after the reply. An intent with no result is an op whose
outcome is unknown (its process was killed mid-op, or its reply was lost).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO

import msgspec

from lash_streams.errors import BackendError, LashStreamsError, NotWritten

SENT = "sent"
OK = "ok"
UNKNOWN = "unknown"


class Entry(msgspec.Struct, frozen=True, omit_defaults=True):
    """One line. ``op`` names the operation (register, append, complete,
    submit, job_start, job_append, stale_append, wake, ...), ``id`` is unique
    per op within the run, ``value`` the unique value an append carries."""

    op: str
    id: str
    actor: str
    inc: int
    outcome: str = SENT
    pid: str | None = None
    value: str | None = None
    key: str | None = None
    wake: bool = False
    seq: int | None = None
    note: str | None = None


class Op(msgspec.Struct, frozen=True):
    """An intent and its outcome: ``ok``, ``error:<Type>`` (refused: not
    applied) or ``unknown`` (applied or not, both allowed)."""

    entry: Entry
    outcome: str

    @property
    def refused(self) -> bool:
        return self.outcome.startswith("error:")


def outcome_of(err: BaseException) -> str:
    """A typed refusal is definite; a connection fault or a timeout is not."""
    if isinstance(err, NotWritten):
        return f"error:{type(err).__name__}"
    if isinstance(err, BackendError) or not isinstance(err, LashStreamsError):
        return UNKNOWN
    return f"error:{type(err).__name__}"


class Writer:
    """Appends lines and flushes each one to the OS: a SIGKILL loses at most
    the line being written, which the reader skips (no fsync: the soak
    kills processes, not the machine)."""

    def __init__(self, path: Path, actor: str, inc: int) -> None:
        self.actor = actor
        self.inc = inc
        self._file: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._encoder = msgspec.json.Encoder()

    def write(self, entry: Entry) -> None:
        self._file.write(self._encoder.encode(entry) + b"\n")
        self._file.flush()

    def intent(self, op: str, id: str, **fields: object) -> Entry:
        entry = msgspec.convert(
            {"op": op, "id": id, "actor": self.actor, "inc": self.inc, **fields}, Entry
        )
        self.write(entry)
        return entry

    def result(self, entry: Entry, outcome: str, **fields: object) -> None:
        self.write(msgspec.structs.replace(entry, outcome=outcome, **fields))

    def close(self) -> None:
        self._file.close()


def read_entries(paths: Iterable[Path]) -> list[Entry]:
    decoder = msgspec.json.Decoder(Entry)
    entries: list[Entry] = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_bytes().splitlines():
            try:
                entries.append(decoder.decode(line))
            except msgspec.DecodeError:
                continue  # a line cut by SIGKILL
    return entries


def read_folder(folder: Path, pattern: str = "*.jsonl") -> list[Entry]:
    """Every history in ``folder`` whose file name matches ``pattern``."""
    return read_entries(sorted(folder.glob(pattern)))


def ops_of(entries: Iterable[Entry]) -> list[Op]:
    """Pair intents with results by op id; an intent left alone is unknown."""
    intents: dict[str, Entry] = {}
    results: dict[str, Entry] = {}
    for entry in entries:
        if entry.outcome == SENT:
            intents.setdefault(entry.id, entry)
        else:
            results[entry.id] = entry
    ops = []
    for op_id, intent in intents.items():
        result = results.get(op_id)
        ops.append(Op(result or intent, result.outcome if result is not None else UNKNOWN))
    # Facts recorded in one line (a wake handled, a job started) have no intent.
    ops += [Op(entry, entry.outcome) for op_id, entry in results.items() if op_id not in intents]
    return ops
