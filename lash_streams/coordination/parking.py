"""Rows a sweep left running on purpose, so the next pass does not claim them
again (issue 13: each pass bumped the fence of every such row, one AOF write
per row per pass per sweeper).

SW-11's last case: a started owner-bound row with no death evidence and no
abandon request is released and left running. Nothing but a change can make
it recoverable: an abandon request or a re-registration (the record changes),
or the death of the worker that started it (checked again on every pass, with
no claim: LV-2 reads /proc, fleet liveness one hash field). Until one of
those, a pass skips the row without a claim. Each worker keeps its own set,
bounded by the running rows its last full sweep listed and by ``_CAP`` (a
forgotten row costs one claim when it is next due, nothing more).
"""

from __future__ import annotations

from collections.abc import Iterable

from lash_streams.model import ProcessRecord, ProcessStarted, RecoveryDisposition

_Fingerprint = tuple[int, ProcessStarted]

_CAP = 100_000


def _fingerprint(record: ProcessRecord) -> _Fingerprint | None:
    started = record.first_started
    if (
        record.disposition is not RecoveryDisposition.OWNER_BOUND
        or started is None
        or record.abandon_request is not None
    ):
        return None
    return record.created_at_ms, started


class ParkedRows:
    def __init__(self) -> None:
        self._rows: dict[str, _Fingerprint] = {}

    def park(self, record: ProcessRecord) -> None:
        fingerprint = _fingerprint(record)
        if fingerprint is not None:
            if len(self._rows) >= _CAP:
                self._rows.clear()
            self._rows[record.id] = fingerprint

    def parked(self, record: ProcessRecord) -> ProcessStarted | None:
        """The starter to check for death when ``record`` is unchanged since
        it was parked; None when it must be examined (claimed) again."""
        fingerprint = _fingerprint(record)
        if fingerprint is None or self._rows.get(record.id) != fingerprint:
            return None
        return fingerprint[1]

    def keep_only(self, ids: Iterable[str]) -> None:
        listed = set(ids)
        self._rows = {pid: f for pid, f in self._rows.items() if pid in listed}
