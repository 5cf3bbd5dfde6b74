"""``lash-streams demo``: set up, run the director with a live view, summarize."""

from __future__ import annotations

import contextlib

from rich.console import Console
from rich.live import Live
from rich.table import Table

import lash_streams as ls
from lash_streams.demo.fleet import DemoConfig, DemoFailed, Director, Outcome
from lash_streams.server import LocalServer


async def run_demo(
    url: str | None, namespace: str, config: DemoConfig, console: Console
) -> Outcome:
    """Run the demo fleet against ``url`` (a private server when None)."""
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            # AOF on: the demo's server behaves like the one we tell users to run.
            server = await stack.enter_async_context(LocalServer(persistence="aof"))
            url, where = server.url, f"embedded {server.version}"
        else:
            where = url
        bus = await stack.enter_async_context(ls.connect(url, namespace=namespace))
        director = Director(bus, url, config, console)
        stack.push_async_callback(director.stop_all)
        director.state.title = (
            f"lash-streams demo · {where} · namespace {namespace} · run {director.run_id}"
        )
        if not director.live:
            console.print(director.state.title, highlight=False)
            outcome = await director.run(lambda: None)
            console.print(director.state.jobs_table())
        else:
            with Live(
                director.state.render(), console=console, refresh_per_second=8, transient=False
            ) as live:
                outcome = await director.run(lambda: live.update(director.state.render()))
        await director.stop_all()
    print_summary(outcome, console)
    return outcome


def print_summary(outcome: Outcome, console: Console) -> None:
    state = outcome.state
    if not outcome.state.log or state.jobs[0].record is None:
        return
    by_status: dict[str, int] = {}
    for js in state.jobs:
        by_status[js.status] = by_status.get(js.status, 0) + 1
    table = Table(title="summary", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("processes", ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    table.add_row("killed", f"{outcome.victim} (SIGKILL, mid-run)")
    if outcome.abandoned_ms is not None:
        table.add_row(
            "kill -> abandoned",
            f"{max(0, outcome.abandoned_ms - outcome.kill_ms)} ms (server clock)",
        )
    distinct = len(state.wakes_seen)
    per: dict[str, int] = {}
    for consumer in state.wakes_seen.values():
        per[consumer] = per.get(consumer, 0) + 1
    table.add_row(
        "wakes",
        f"{distinct} distinct wakes consumed in {state.wake_deliveries} deliveries ("
        + ", ".join(f"{c}: {n}" for c, n in sorted(per.items()))
        + ")",
    )
    for passed, text in outcome.checks:
        table.add_row("[green]ok[/green]" if passed else "[red]FAILED[/red]", text)
    console.print(table)


__all__ = ["DemoConfig", "DemoFailed", "run_demo"]
