"""Operator commands that act on a namespace: ``abandon``, ``cancel``,
``signal``; and two overviews, ``stats`` and ``workers`` (issue 16: the CLI
could look but not act).

Each is a thin, typed call of the bus method a program would use, so what
the CLI does is what the library promises; errors are one line (``ops``).
"""

from __future__ import annotations

import json as jsonlib
import uuid
from typing import Annotated, Any

import typer
from rich.table import Table

import lash_streams as ls
from lash_streams.cli.ops import (
    Json,
    Namespace,
    RequiredUrl,
    age,
    console,
    emit_json,
    namespace_counts,
    run,
)
from lash_streams.coordination.fleet_liveness import all_incarnations
from lash_streams.model import (
    AbandonRequest,
    ProcessListFilter,
    ProcessStatusFilter,
    status_label,
    to_builtins,
)

ProcessId = Annotated[str, typer.Argument(help="The process's id.")]


async def _worker_rows(bus: ls.Bus, now: int, *, latest_only: bool) -> list[dict[str, Any]]:
    """Each worker identity's incarnations (or its latest), newest first; one
    below a newer running one is ``superseded``."""
    rows: list[dict[str, Any]] = []
    for owner_id, remembered in (await all_incarnations(bus)).items():
        for n, inc in enumerate(remembered[:1] if latest_only else remembered):
            rows.append(
                {
                    "worker": owner_id,
                    "incarnation": inc.incarnation_id,
                    "state": inc.state if n == 0 or inc.state == "exited" else "superseded",
                    "since_ms_ago": now - inc.since_ms,
                }
            )
    return rows


def _payload(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return jsonlib.loads(text)
    except ValueError as err:
        raise typer.BadParameter(f"--payload is not JSON: {err}") from None


def register_actions(app: typer.Typer) -> None:
    @app.command()
    def abandon(
        process_id: ProcessId,
        url: RequiredUrl,
        namespace: Namespace = "lash",
        reason: Annotated[str | None, typer.Option(help="Why (kept in the request).")] = None,
        by: Annotated[str, typer.Option(help="Who asks (kept in the request).")] = "cli",
        json: Json = False,
    ) -> None:
        """Ask for a process to be abandoned. A sweep writes `abandoned` once no
        live lease holds it; a started owner-bound process is never run again.
        The first request stands."""

        async def action(bus: ls.Bus) -> dict[str, Any]:
            now = await bus.server_time_ms()
            request = AbandonRequest(requested_by=by, requested_at_ms=now, reason=reason)
            record = await bus.request_process_abandon(process_id, request)
            standing = record.abandon_request
            return {
                "process_id": process_id,
                "abandon_request": to_builtins(standing),
                "this_request": standing == request,
            }

        out = run(url, namespace, action)
        if json:
            emit_json(out)
            return
        standing = out["abandon_request"]
        if out["this_request"]:
            console.print(
                f"abandon requested for {process_id}: a sweep writes `abandoned` once no "
                "live lease holds it",
                markup=False,
            )
        else:
            console.print(
                f"{process_id} already has an abandon request (by {standing['requested_by']}); "
                "it stands",
                markup=False,
            )

    @app.command()
    def cancel(
        process_id: ProcessId,
        url: RequiredUrl,
        namespace: Namespace = "lash",
        reason: Annotated[str | None, typer.Option(help="Why (the request's key).")] = None,
        json: Json = False,
    ) -> None:
        """Request cancellation: appends `process.cancel_requested`. The worker
        running the process stops it and writes `cancelled`; the request alone
        ends nothing. A terminal process is refused (nothing to cancel)."""

        async def action(bus: ls.Bus) -> dict[str, Any]:
            record = await bus.get_process(process_id)
            if record is None:
                raise ls.errors.UnknownProcess(process_id)
            if record.is_terminal():
                # lash would still append the request (CN-5); an operator wants to know.
                raise ls.errors.AlreadyTerminal(
                    f"process `{process_id}` is already {status_label(record.status)}: "
                    "nothing to cancel",
                    process_id=process_id,
                )
            result = await bus.request_cancel(process_id, reason)
            return {"process_id": process_id, "sequence": result.event.sequence}

        out = run(url, namespace, action)
        if json:
            emit_json(out)
            return
        console.print(
            f"cancel requested for {process_id} (event #{out['sequence']}): the worker "
            "running it stops it and writes `cancelled`",
            markup=False,
        )

    @app.command()
    def signal(
        process_id: ProcessId,
        name: Annotated[str, typer.Argument(help="Signal name: appends `signal.<name>`.")],
        url: RequiredUrl,
        namespace: Namespace = "lash",
        payload: Annotated[str | None, typer.Option(help="JSON payload (default null).")] = None,
        signal_id: Annotated[
            str | None,
            typer.Option("--id", help="Signal id: the same id and payload again is a replay."),
        ] = None,
        json: Json = False,
    ) -> None:
        """Send a signal to a running process (an event `signal.<name>`)."""
        body = _payload(payload)
        sid = signal_id or uuid.uuid4().hex

        async def action(bus: ls.Bus) -> dict[str, Any]:
            result = await bus.send_signal(process_id, name, sid, body)
            return {
                "process_id": process_id,
                "event_type": result.event.event_type,
                "sequence": result.event.sequence,
                "signal_id": sid,
            }

        out = run(url, namespace, action)
        if json:
            emit_json(out)
            return
        console.print(
            f"{out['event_type']} is #{out['sequence']} of {process_id} (signal id {sid})",
            markup=False,
        )

    @app.command()
    def stats(url: RequiredUrl, namespace: Namespace = "lash", json: Json = False) -> None:
        """Processes per status and the oldest running one, workers and their
        latest incarnation, wake intents waiting for the relay and relay dead
        letters. Reads every record of the namespace: for an overview, not a
        probe to run every second."""

        async def action(bus: ls.Bus) -> dict[str, Any]:
            now = await bus.server_time_ms()
            records = await bus.list_processes(ProcessListFilter(status=ProcessStatusFilter.ANY))
            counts: dict[str, int] = {}
            for record in records:
                label = status_label(record.status)
                counts[label] = counts.get(label, 0) + 1
            running = [r for r in records if not r.is_terminal()]
            oldest = min(running, key=lambda r: r.created_at_ms, default=None)
            index_counts = await namespace_counts(bus)
            return {
                "processes": counts,
                "oldest_running": None
                if oldest is None
                else {"process_id": oldest.id, "age_ms": now - oldest.created_at_ms},
                "workers": await _worker_rows(bus, now, latest_only=True),
                "pending_outboxes": index_counts["pending_outboxes"],
                "relay_dead_letters": index_counts["relay_dead_letters"],
            }

        out = run(url, namespace, action)
        if json:
            emit_json(out)
            return
        counts = out["processes"]
        console.print(
            "processes: "
            + (", ".join(f"{n} {label}" for label, n in sorted(counts.items())) or "none"),
            markup=False,
        )
        oldest = out["oldest_running"]
        if oldest is not None:
            console.print(
                f"oldest running: {oldest['process_id']} ({age(oldest['age_ms'])} old)",
                markup=False,
            )
        console.print(
            f"wake intents waiting for the relay: {out['pending_outboxes']} processes; "
            f"relay dead letters: {out['relay_dead_letters']}",
            markup=False,
        )
        if out["workers"]:
            table = Table(title="workers (fleet liveness)")
            for column in ("worker", "incarnation", "state", "since"):
                table.add_column(column)
            for row in out["workers"]:
                table.add_row(
                    row["worker"], row["incarnation"], row["state"], age(row["since_ms_ago"])
                )
            console.print(table)

    @app.command()
    def workers(url: RequiredUrl, namespace: Namespace = "lash", json: Json = False) -> None:
        """Worker identities registered for fleet liveness and their remembered
        incarnations, newest first: running, or exited (an incarnation below a
        newer one counts as dead)."""

        async def action(bus: ls.Bus) -> list[dict[str, Any]]:
            return await _worker_rows(bus, await bus.server_time_ms(), latest_only=False)

        rows = run(url, namespace, action)
        if json:
            emit_json(rows)
            return
        if not rows:
            console.print("no worker registered (Recovery.register(), fleet liveness)")
            return
        table = Table(title="workers")
        for column in ("worker", "incarnation", "state", "since"):
            table.add_column(column)
        for row in rows:
            table.add_row(row["worker"], row["incarnation"], row["state"], age(row["since_ms_ago"]))
        console.print(table)

    @app.command()
    def health(
        url: RequiredUrl,
        timeout: Annotated[float, typer.Option(min=0.01, help="Seconds to wait.")] = 1.0,
        json: Json = False,
    ) -> None:
        """For probes: exit 0 when the server answers a PING within --timeout,
        2 when it does not (or cannot be reached)."""

        async def action(bus: ls.Bus) -> dict[str, Any]:
            result = await bus.health(timeout)
            return {"ok": result.ok, "latency_ms": result.latency_ms, "error": result.error}

        out = run(url, "lash", action)
        if json:
            emit_json(out)
        elif out["ok"]:
            console.print(f"ok ({out['latency_ms']:.1f} ms)", markup=False)
        else:
            console.print(f"not ready: {out['error']}", markup=False)
        if not out["ok"]:
            raise typer.Exit(2)
