"""Operator commands for jobs (issue 16): ``retry`` (dispatch a running job
now, or run a failed one again as a copy) and ``top`` (the demo's live view,
on a real namespace)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Annotated, Any

import msgspec
import typer
from rich import box
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

import lash_streams as ls
from lash_streams.cli.ops import (
    Json,
    Namespace,
    RequiredUrl,
    age,
    console,
    emit_json,
    namespace_counts,
    one_line_errors,
    run,
)
from lash_streams.coordination.fleet_liveness import all_incarnations
from lash_streams.model import (
    AwaitSuccess,
    RecoveryDisposition,
    status_label,
)
from lash_streams.store.core import text
from lash_streams.store.dispatch import READY_GROUP, schedule_member
from lash_streams.store.keys import decode_id


async def retry_job(bus: ls.Bus, process_id: str, new_id: str | None) -> dict[str, Any]:
    fields = await bus.record_fields(process_id)
    if not fields:
        raise ls.errors.UnknownProcess(process_id)
    record = bus.record_from_fields(fields)
    if record.disposition is RecoveryDisposition.EXTERNALLY_OWNED:
        raise ls.errors.ExternallyOwnedNotExecutable(
            f"process `{process_id}` is externally owned: no worker here runs it",
            process_id=process_id,
        )
    kind = record.identity.kind
    if not record.is_terminal():
        if record.disposition is RecoveryDisposition.OWNER_BOUND and record.first_started:
            raise ls.errors.InvalidValue(
                f"process `{process_id}` is owner-bound and was started: it is never run "
                "twice (abandon it, then retry the abandoned job)"
            )
        member = schedule_member(kind, record.id, record.disposition)
        await bus.redis.zrem(bus.keys.delayed, member)  # a delayed job: now
        queued = await bus.queue_ready(record)
        return {"process_id": process_id, "action": "queued" if queued else "left", "kind": kind}
    output = record.await_output()
    if isinstance(output, AwaitSuccess):
        raise ls.errors.AlreadyTerminal(
            f"process `{process_id}` completed: nothing to retry", process_id=process_id
        )
    copy_id = new_id or f"{process_id}.retry-{uuid.uuid4().hex[:8]}"
    # The registration as stored, under the copy's id.
    registration = bus.registration_of(text(fields[b"hash"]), fields[b"reg"])
    copy = await bus.register_process(msgspec.structs.replace(registration, id=copy_id))
    return {
        "process_id": process_id,
        "action": "copied",
        "kind": kind,
        "was": status_label(record.status),
        "new_process_id": copy.id,
    }


async def _ready_streams(bus: ls.Bus) -> list[dict[str, Any]]:
    """Each job kind's ready stream: entries waiting, and the worker group's
    lag and pending (read, not yet taken)."""
    prefix = bus.keys.ready_stream("x")[:-1]
    rows = []
    for client in bus.primary_clients():
        async for key in client.scan_iter(match=prefix + "*", count=1_000):
            name = text(key)
            row = {"kind": decode_id(name[len(prefix) :]), "waiting": await bus.redis.xlen(name)}
            for group in await bus.redis.xinfo_groups(name):
                if text(group["name"]) == READY_GROUP:
                    row["lag"] = group.get("lag")
                    row["pending"] = group["pending"]
            rows.append(row)
    return sorted(rows, key=lambda r: str(r["kind"]))


async def snapshot(bus: ls.Bus, limit: int) -> dict[str, Any]:
    now = await bus.server_time_ms()
    running = sorted(await bus.list_non_terminal(), key=lambda r: r.created_at_ms)
    leases = await bus.live_leases([r.id for r in running[:limit]], now)
    counts = await namespace_counts(bus)
    workers = []
    for owner_id, remembered in (await all_incarnations(bus)).items():
        if remembered:
            latest = remembered[0]
            workers.append(
                {"worker": owner_id, "state": latest.state, "since_ms_ago": now - latest.since_ms}
            )
    return {
        "running": len(running),
        "counts": counts,
        "delayed": await bus.redis.zcard(bus.keys.delayed),
        "ready": await _ready_streams(bus),
        "workers": workers,
        "jobs": [
            {
                "process_id": r.id,
                "kind": r.identity.kind,
                "disposition": r.disposition.value,
                "age_ms": now - r.created_at_ms,
                "started": r.first_started is not None,
                "holder": leases[r.id].owner.owner_id if r.id in leases else None,
            }
            for r in running[:limit]
        ],
    }


def render(snap: dict[str, Any], namespace: str) -> Group:
    jobs = Table(title="running, oldest first", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("process", "kind", "disposition", "age", "held by"):
        jobs.add_column(column, no_wrap=True)
    for job in snap["jobs"]:
        holder = job["holder"] or ("[dim]started, no lease[/dim]" if job["started"] else "")
        jobs.add_row(job["process_id"], job["kind"], job["disposition"], age(job["age_ms"]), holder)
    ready = Table(title="ready streams", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("kind", "waiting", "lag", "read, not taken"):
        ready.add_column(column)
    for row in snap["ready"]:
        ready.add_row(
            row["kind"], str(row["waiting"]), str(row.get("lag")), str(row.get("pending"))
        )
    workers = Table(title="workers", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("worker", "state", "since"):
        workers.add_column(column)
    for row in snap["workers"]:
        workers.add_row(row["worker"], row["state"], age(row["since_ms_ago"]))
    head = Text(
        f"{namespace}: {snap['running']} running, {snap['delayed']} delayed, "
        f"{snap['counts']['pending_outboxes']} wake intents waiting for the relay, "
        f"{snap['counts']['relay_dead_letters']} relay dead letters"
    )
    return Group(head, jobs, ready, workers)


def register_jobs(app: typer.Typer) -> None:
    @app.command()
    def retry(
        process_id: Annotated[str, typer.Argument(help="The job's process id.")],
        url: RequiredUrl,
        namespace: Namespace = "lash",
        new_id: Annotated[
            str | None,
            typer.Option("--as", help="The copy's id (a failed job; default: a new one)."),
        ] = None,
        json: Json = False,
    ) -> None:
        """Run a job again. A running job (rerunnable, or owner-bound not
        started) is queued for the workers of its kind now, its delay dropped.
        A failed, cancelled or abandoned job is registered again as a copy
        under a new id (a terminal is permanent); a completed one is refused."""
        out = run(url, namespace, lambda bus: retry_job(bus, process_id, new_id))
        if json:
            emit_json(out)
        elif out["action"] == "copied":
            console.print(
                f"{process_id} was {out['was']}: registered again as {out['new_process_id']} "
                f"for the workers of `{out['kind']}`",
                markup=False,
            )
        elif out["action"] == "queued":
            console.print(f"{process_id} queued for the workers of `{out['kind']}`", markup=False)
        else:
            console.print(
                f"no worker serves `{out['kind']}`: {process_id} stays in the worklist, "
                "where the next sweep pass finds it",
                markup=False,
            )

    @app.command()
    def top(
        url: RequiredUrl,
        namespace: Namespace = "lash",
        interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes.")] = 1.0,
        limit: Annotated[int, typer.Option(min=1, help="Running jobs shown.")] = 20,
        once: Annotated[bool, typer.Option("--once", help="One frame, then exit.")] = False,
        json: Json = False,
    ) -> None:
        """A live view of a namespace: running jobs (oldest first, who holds
        them), ready streams per job kind, delayed jobs, workers. Reads every
        running record each refresh: a viewer, not a probe."""
        if once or json:
            snap = run(url, namespace, lambda bus: snapshot(bus, limit))
            if json:
                emit_json(snap)
            else:
                console.print(render(snap, namespace))
            return

        async def watch() -> None:
            async with ls.connect(url, namespace=namespace) as bus:
                with Live(console=console, refresh_per_second=4) as live:
                    while True:
                        live.update(render(await snapshot(bus, limit), namespace))
                        await asyncio.sleep(interval)

        with one_line_errors(url), contextlib.suppress(KeyboardInterrupt):
            asyncio.run(watch())
