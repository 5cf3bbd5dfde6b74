"""``lash-streams dlq``: a scope's dead-lettered wakes, listed and replayed
(issue 16).

A wake is dead-lettered by one consumer group (past ``max_deliveries``,
undecodable, or ``dead_letter()`` by its handler) into the scope's
``<ns>:w:{<scope>}:dead`` stream, with the delivery, the group, the attempts
and the reason. Replaying delivers it to the scope's wake stream again, where
every group of the scope receives it (handlers dedupe by wake id), then deletes
the letter: a replay cut off between the two leaves the letter, never loses it.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table

import lash_streams as ls
from lash_streams.cli.ops import Json, Namespace, RequiredUrl, console, emit_json, run
from lash_streams.model import ProcessWakeDelivery, SessionScope
from lash_streams.model._codec import decode

ScopeOption = Annotated[str, typer.Option("--scope", help="The session whose wakes to read.")]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _letters(entries: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for entry_id, fields in entries:
        raw = fields.get(b"d", b"")
        try:
            delivery: Any = msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            delivery = _text(raw)
        rows.append(
            {
                "id": _text(entry_id),
                "group": _text(fields.get(b"group", b"")),
                "attempts": int(fields.get(b"attempts", b"0") or 0),
                "reason": _text(fields.get(b"reason", b"")),
                "delivery": delivery,
            }
        )
    return rows


def register_dlq(app: typer.Typer) -> None:
    dlq = typer.Typer(help="A scope's dead-lettered wakes: list them, replay them.")
    app.add_typer(dlq, name="dlq")

    @dlq.command("ls")
    def list_letters(
        url: RequiredUrl,
        scope: ScopeOption,
        namespace: Namespace = "lash",
        json: Json = False,
    ) -> None:
        """The session's dead-lettered wakes, oldest first, with group, attempts
        and reason."""

        async def action(bus: ls.Bus) -> list[dict[str, Any]]:
            key = bus.keys.wake_dead_letters(SessionScope(session_id=scope).id())
            return _letters(await bus.redis.xrange(key, "-", "+"))

        rows = run(url, namespace, action)
        if json:
            emit_json(rows)
            return
        if not rows:
            console.print(f"no dead-lettered wakes for session {scope}", markup=False)
            return
        table = Table(title=f"dead-lettered wakes of session {scope}")
        for column in ("id", "group", "attempts", "reason", "wake"):
            table.add_column(column)
        for row in rows:
            delivery = row["delivery"]
            wake = (
                f"{delivery.get('process_id')} #{delivery.get('sequence')}"
                if isinstance(delivery, dict)
                else "undecodable"
            )
            table.add_row(row["id"], row["group"], str(row["attempts"]), row["reason"], wake)
        console.print(table)

    @dlq.command("replay")
    def replay(
        url: RequiredUrl,
        scope: ScopeOption,
        namespace: Namespace = "lash",
        entry: Annotated[
            list[str] | None,
            typer.Option("--id", help="Replay only these letters (default: all of them)."),
        ] = None,
        json: Json = False,
    ) -> None:
        """Deliver dead-lettered wakes to the session again (every group of the
        scope receives them; handlers dedupe by wake id), then delete the
        letters. A letter whose delivery does not decode is left in place."""

        async def action(bus: ls.Bus) -> dict[str, Any]:
            key = bus.keys.wake_dead_letters(SessionScope(session_id=scope).id())
            entries = await bus.redis.xrange(key, "-", "+")
            wanted = set(entry or [])
            found = {_text(entry_id) for entry_id, _ in entries}
            missing = sorted(wanted - found)
            if missing:
                raise ls.errors.InvalidValue(
                    f"no dead letter {', '.join(missing)} for session {scope}"
                )
            replayed, kept = [], []
            for entry_id, fields in entries:
                eid = _text(entry_id)
                if wanted and eid not in wanted:
                    continue
                try:
                    delivery = decode(fields.get(b"d", b""), ProcessWakeDelivery)
                except (ValueError, msgspec.DecodeError, ls.errors.LashStreamsError):
                    kept.append(eid)
                    continue
                await bus.deliver_wake(delivery)  # first: a cut leaves the letter
                await bus.redis.xdel(key, eid)
                replayed.append(eid)
            return {"replayed": replayed, "left_undecodable": kept}

        out = run(url, namespace, action)
        if json:
            emit_json(out)
            return
        console.print(
            f"replayed {len(out['replayed'])} wake(s) to session {scope}"
            + (
                f"; {len(out['left_undecodable'])} letter(s) do not decode and stay"
                if out["left_undecodable"]
                else ""
            ),
            markup=False,
        )
