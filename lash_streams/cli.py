"""The ``lash-streams`` command line."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="lash's durable process layer on Redis Streams.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.callback()
def _root() -> None:
    """lash's durable process layer on Redis Streams."""


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="LASH_STREAMS_URL",
        help="Redis URL; without one an embedded server is started.",
    ),
]
NamespaceOption = Annotated[str, typer.Option("--namespace", help="Key namespace.")]


@app.command()
def demo(url: UrlOption = None, namespace: NamespaceOption = "lash-demo") -> None:
    """Register a process, append progress and a wake, complete it, print the story."""
    try:
        asyncio.run(_demo(url, namespace))
    except Exception as err:
        from lash_streams.errors import LashStreamsError

        if isinstance(err, LashStreamsError):
            console.print(f"[red]error[/red] ({err.kind}): {err}")
            raise typer.Exit(1) from None
        raise


async def _demo(url: str | None, namespace: str) -> None:
    import msgspec

    import lash_streams as ls
    from lash_streams.model import (
        AwaitSuccess,
        LashSchema,
        ProcessEventAppendRequest,
        ProcessEventSemanticsSpec,
        ProcessEventType,
        ProcessRegistration,
        ProcessWakeSpec,
        SelPointer,
        SelPresent,
        SessionScope,
        encode,
    )

    progress = ProcessEventType(
        name="progress",
        payload_schema=LashSchema(
            schema={
                "type": "object",
                "properties": {"step": {"type": "integer"}, "note": {"type": "string"}},
                "required": ["step"],
                "additionalProperties": True,
            }
        ),
        semantics=ProcessEventSemanticsSpec(
            wake=ProcessWakeSpec(when=SelPresent("/wake"), input=SelPointer("/wake"))
        ),
    )
    where = url or "embedded server"
    console.print(f"[bold]lash-streams demo[/bold] on {where}")
    async with ls.connect(url, namespace=namespace) as bus:
        pid = f"demo-{os.getpid()}"
        registration = msgspec.structs.replace(
            ProcessRegistration.external(pid),
            event_types=[progress],
            wake_target=SessionScope(session_id="demo-session"),
        )
        record = await bus.register_process(registration)
        console.print(
            f"registered [cyan]{record.id}[/cyan] (hash {record.registration_hash[:12]}…)"
        )
        notes: list[dict[str, Any]] = [
            {"step": 1, "note": "fetching"},
            {"step": 2, "note": "crunching"},
            {"step": 3, "note": "needs a look", "wake": "step 3 wants the session's attention"},
        ]
        table = Table(title="events")
        for column in ("seq", "type", "payload", "wake"):
            table.add_column(column)
        for note in notes:
            result = await bus.append_event(
                pid, ProcessEventAppendRequest(event_type="progress", payload=note)
            )
            wake = result.wake_delivery
            table.add_row(
                str(result.event.sequence),
                result.event.event_type,
                encode(result.event.payload).decode(),
                f"{wake.wake_id[:18]}… → {wake.target_scope_id}" if wake else "",
            )
        done = await bus.complete_process(pid, AwaitSuccess(value={"answer": 42}))
        last = (await bus.events_after(pid, len(notes)))[0]
        table.add_row(str(last.sequence), last.event_type, encode(last.payload).decode(), "")
        console.print(table)
        output = await bus.await_terminal(pid, timeout=5)
        console.print(f"status: [green]{type(done.status).__name__}[/green]")
        console.print(f"terminal output: {encode(output).decode()}")


def _register_operator_commands() -> None:
    from lash_streams.cli_ops import register, register_watch

    register(app)
    register_watch(app)


_register_operator_commands()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
