"""Operator commands of the ``lash-streams`` CLI that look: inspect, ls, tail,
sweep, prune, doctor (``act.py`` has those that act: abandon, cancel, signal,
stats).

Each needs a server (``--url`` or ``LASH_STREAMS_URL``): an embedded server
would be empty. Every read command takes ``--json``. Errors print one line and
exit non-zero: 1 for a lash error (unknown process, bad id), 2 when the server
cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

import msgspec
import typer
from redis.exceptions import RedisError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import lash_streams as ls
from lash_streams.connection import redact_url
from lash_streams.errors import BackendError, LashStreamsError, ServerError
from lash_streams.model import (
    LeaseOwnerIdentity,
    ProcessListFilter,
    ProcessStatusFilter,
    SessionScope,
    encode,
    status_label,
    to_builtins,
)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one line per error, whatever the width

RequiredUrl = Annotated[
    str,
    typer.Option("--url", envvar="LASH_STREAMS_URL", help="Redis URL of the bus."),
]
Namespace = Annotated[
    str,
    typer.Option("--namespace", envvar="LASH_STREAMS_NAMESPACE", help="Key namespace."),
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@contextlib.contextmanager
def one_line_errors(url: str | None) -> Iterator[None]:
    """Errors as one line and an exit code: 2 when the server cannot be
    reached, 1 for a lash error or a server refusal (e.g. NOPERM)."""
    # Messages are shown as text: one holding `[/db]` or `[red]` is no markup.
    try:
        yield
    except ServerError as err:
        err_console.print(f"[red]the server refused[/red]: {escape(str(err))}")
        raise typer.Exit(1) from None
    except BackendError as err:
        where = escape(redact_url(url))
        err_console.print(f"[red]cannot reach the server[/red] at {where}: {escape(str(err))}")
        raise typer.Exit(2) from None
    except LashStreamsError as err:
        err_console.print(f"[red]{err.kind}[/red]: {escape(str(err))}")
        raise typer.Exit(1) from None
    except RedisError as err:
        err_console.print(f"[red]the server refused[/red]: {escape(str(err))}")
        raise typer.Exit(1) from None


def run(url: str, namespace: str, action: Callable[[ls.Bus], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with ls.connect(url, namespace=namespace) as bus:
            return await action(bus)

    with one_line_errors(url):
        return asyncio.run(main())


def emit_json(value: Any) -> None:
    sys.stdout.write(encode(value).decode() + "\n")


def register(app: typer.Typer) -> None:
    @app.command()
    def inspect(
        process_id: str, url: RequiredUrl, namespace: Namespace = "lash", json: Json = False
    ) -> None:
        """Record, status, lease, disposition, abandon request, last events."""

        async def action(bus: ls.Bus) -> dict[str, Any]:
            record = await bus.get_process(process_id)
            if record is None:
                raise ls.errors.UnknownProcess(process_id)
            lease = await bus.get_process_lease(process_id)
            events = await bus.recent_events(process_id, 10)
            pending = await bus.wake_events_after(process_id, 0)
            now = await bus.server_time_ms()
            return {
                "server_time_ms": now,
                "record": to_builtins(record),
                "status": status_label(record.status),
                "lease": to_builtins(lease) if lease else None,
                "lease_live": bool(lease and lease.expires_at_epoch_ms > now),
                "recent_events": [to_builtins(e) for e in events],
                "pending_wake_sequences": [e.sequence for e in pending],
            }

        out = run(url, namespace, action)
        if json:
            emit_json(out)
            return
        record = out["record"]
        now = out["server_time_ms"]
        console.print(
            f"[bold]{process_id}[/bold]  status [cyan]{out['status']}[/cyan]  "
            f"disposition {record['disposition']}  created "
            f"{age(now - record['created_at_ms'])} ago, updated "
            f"{age(now - record['updated_at_ms'])} ago"
        )
        lease = out["lease"]
        if lease:
            left = lease["expires_at_epoch_ms"] - now
            when = f"expires in {age(left)}" if left > 0 else f"expired {age(-left)} ago"
            console.print(
                f"lease: {lease['owner']['owner_id']} fencing {lease['fencing_token']} {when}",
                markup=False,
            )
        else:
            console.print("lease: none")
        if record.get("abandon_request"):
            console.print(f"abandon request: {record['abandon_request']}")
        table = Table(title="recent events")
        for column in ("seq", "type", "payload"):
            table.add_column(column)
        for event in out["recent_events"]:
            table.add_row(
                str(event["sequence"]), event["event_type"], encode(event["payload"]).decode()
            )
        console.print(table)
        console.print(f"pending wakes: {out['pending_wake_sequences']}")

    @app.command("ls")
    def list_processes(
        url: RequiredUrl,
        namespace: Namespace = "lash",
        status: Annotated[
            str, typer.Option(help="running|completed|failed|cancelled|abandoned|any")
        ] = "running",
        waiting: Annotated[bool | None, typer.Option("--waiting/--not-waiting")] = None,
        scope: Annotated[
            str | None,
            typer.Option(help="Only processes whose wake target is this session id."),
        ] = None,
        json: Json = False,
    ) -> None:
        """Processes with lash's list filters (and their wake target's session)."""
        try:
            flt = ProcessListFilter(status=ProcessStatusFilter(status), waiting=waiting)
        except ValueError:
            err_console.print(f"[red]invalid status[/red] `{status}`")
            raise typer.Exit(1) from None

        async def action(bus: ls.Bus) -> list[Any]:
            return [
                to_builtins(r)
                for r in await bus.list_processes(flt)
                if scope is None or (r.wake_target and r.wake_target.session_id == scope)
            ]

        rows = run(url, namespace, action)
        if json:
            emit_json(rows)
            return
        table = Table(title=f"{len(rows)} processes")
        for column in ("id", "status", "disposition", "updated_at_ms"):
            table.add_column(column)
        for r in rows:
            table.add_row(r["id"], r["status"]["state"], r["disposition"], str(r["updated_at_ms"]))
        console.print(table)

    @app.command()
    def sweep(
        url: RequiredUrl,
        namespace: Namespace = "lash",
        owner: Annotated[str, typer.Option(help="Sweeper identity.")] = "cli-sweeper",
        every: Annotated[
            float | None,
            typer.Option(min=0.05, help="Sweep every this many seconds (until Ctrl-C)."),
        ] = None,
        rounds: Annotated[
            int, typer.Option(min=0, help="With --every: stop after this many (0: never).")
        ] = 0,
        fail_unrunnable: Annotated[
            bool,
            typer.Option(
                help="Fail rows that would run (this command has no runner: lash's "
                "process_recovery_failed). Without it they are left for a worker."
            ),
        ] = False,
        dry_run: Annotated[
            bool,
            typer.Option(help="Say what one sweep would do to each row, and why; write nothing."),
        ] = False,
        json: Json = False,
    ) -> None:
        """Recovery sweeps, once or --every N seconds: abandons what the rules
        say to (dead owners, reconciled abandon requests). It has no runner, so
        rows a worker would run are left alone unless --fail-unrunnable. One
        report per sweep; --dry-run says what it would do instead."""

        async def action(bus: ls.Bus) -> None:
            import uuid

            from lash_streams.coordination.preview import preview

            stem = LeaseOwnerIdentity.opaque(owner, uuid.uuid4().hex)
            recovery = bus.recovery(stem, unrunnable="fail" if fail_unrunnable else "skip")
            if dry_run:
                decisions = await preview(recovery)
                if json:
                    emit_json([d.__dict__ for d in decisions])
                    return
                console.print(f"a sweep now would examine {len(decisions)} rows:", markup=False)
                for d in decisions:
                    console.print(
                        f"  {d.action:<8} {d.process_id}: {d.reason}", markup=False, highlight=False
                    )
                return
            done = 0
            while True:
                report = await recovery.sweep_once()
                out = {
                    "examined": report.examined,
                    "ran": report.ran,
                    "abandoned": report.abandoned,
                    "skipped": report.skipped,
                    "failed": report.failed,
                    "reasons": report.reasons,
                }
                if json:
                    emit_json(out)
                else:
                    _print_sweep(report)
                done += 1
                if every is None or done == rounds:
                    return
                await bus.relay_pending()
                await asyncio.sleep(every)

        with contextlib.suppress(KeyboardInterrupt):
            run(url, namespace, action)

    @app.command()
    def prune(
        url: RequiredUrl,
        older_than: Annotated[float, typer.Option(help="Seconds since the last update.")],
        namespace: Namespace = "lash",
        json: Json = False,
    ) -> None:
        """Delete terminal processes not updated for --older-than seconds."""

        async def action(bus: ls.Bus) -> dict[str, Any]:
            cutoff = await bus.server_time_ms() - int(older_than * 1000)
            report = await bus.prune_terminal_processes(cutoff)
            return to_builtins(report)  # type: ignore[no-any-return]

        out = run(url, namespace, action)
        if json:
            emit_json(out)
        else:
            console.print(
                f"pruned {out['pruned_processes']} processes, {out['pruned_events']} events"
            )


def register_watch(app: typer.Typer) -> None:
    @app.command()
    def tail(
        url: RequiredUrl,
        process_id: Annotated[
            str | None, typer.Argument(help="Follow this process's events.")
        ] = None,
        scope: Annotated[
            str | None, typer.Option(help="Follow this scope's wakes (session id).")
        ] = None,
        namespace: Namespace = "lash",
        after: Annotated[int, typer.Option(help="Start after this sequence.")] = 0,
        limit: Annotated[int | None, typer.Option(help="Stop after this many items.")] = None,
        json: Json = False,
    ) -> None:
        """Follow a process's events (with their payloads) until its terminal,
        or a scope's wakes, live."""
        if (process_id is None) == (scope is None):
            err_console.print("[red]give a PROCESS_ID or --scope, not both[/red]")
            raise typer.Exit(1)

        async def action(bus: ls.Bus) -> None:
            seen = 0
            if process_id is not None:
                if await bus.get_process(process_id) is None:
                    raise ls.errors.UnknownProcess(process_id)
                async for event in bus.tail_events(process_id, after):
                    body = _short(msgspec.json.encode(event.payload).decode())
                    line = f"#{event.sequence} {event.event_type} {body}"
                    _print_item(to_builtins(event), json, line)
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
                    if event.semantics.terminal is not None:
                        return  # nothing follows a terminal (EV-1)
                return
            stream = bus.keys.wake_stream(SessionScope(session_id=str(scope)).id())
            last = "0-0"
            while limit is None or seen < limit:
                reply = await bus.blocking.xread({stream: last}, count=100, block=1000)
                for _, entries in reply or []:
                    for entry_id, fields in entries:
                        last = entry_id
                        delivery = msgspec.json.decode(fields[b"d"])
                        _print_item(
                            delivery, json, f"{delivery['wake_id'][:18]}… {delivery['input']}"
                        )
                        seen += 1

        run(url, namespace, action)


async def namespace_counts(bus: ls.Bus) -> dict[str, Any]:
    """The namespace at a glance, from index sizes (no record is read)."""
    from lash_streams.coordination.fleet_liveness import workers_key

    keys = bus.keys

    async def total(kind: Any) -> int:
        return sum([int(await bus.redis.zcard(key)) for key in keys.indexes(kind)])

    return {
        "name": keys.namespace,
        "index_shards": keys.index_shards,
        "running": await total("run"),
        "terminal": await total("term"),
        "pending_outboxes": await total("ob"),
        "relay_dead_letters": int(await bus.redis.xlen(keys.relay_dead_letters)),
        "workers": int(await bus.redis.hlen(workers_key(bus))),
    }


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def age(ms: float) -> str:
    """A duration for people: ``45s``, ``12m05s``, ``3h20m``, ``2d04h``."""
    seconds = max(0, int(ms // 1000))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _print_sweep(report: Any) -> None:
    """One summary line, then one line per row that was not left alone
    silently: what happened to it and, for a skipped row, why."""
    console.print(
        f"examined {report.examined}: ran {len(report.ran)}, abandoned "
        f"{len(report.abandoned)}, skipped {len(report.skipped)}, failed {len(report.failed)}",
        markup=False,
        highlight=False,
    )
    for outcome in ("ran", "abandoned", "failed"):
        for pid in getattr(report, outcome):
            console.print(f"  {outcome:<9} {pid}", markup=False, highlight=False)
    for pid in report.skipped:
        reason = report.reasons.get(pid, "")
        console.print(f"  skipped   {pid}: {reason}", markup=False, highlight=False)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _print_item(value: Any, as_json: bool, text: str) -> None:
    if as_json:
        emit_json(value)
    else:
        console.print(text, markup=False, highlight=False)  # payloads are data
