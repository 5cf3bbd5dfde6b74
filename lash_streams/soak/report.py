"""The verdict table and the server facts, for a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lash_streams.soak.checker import OKAY, VIOLATED
from lash_streams.soak.run import SoakOutcome

_STYLE = {OKAY: "green", VIOLATED: "bold red"}


def verdict_table(outcome: SoakOutcome) -> Table:
    table = Table(title="soak verdict", title_justify="left")
    table.add_column("invariant")
    table.add_column("verdict")
    table.add_column("counts")
    for v in outcome.verdicts:
        style = _STYLE.get(v.status, "yellow")
        counts = ", ".join(f"{k} {n}" for k, n in v.counts.items())
        table.add_row(v.name, f"[{style}]{v.status}[/{style}]", counts)
    return table


def print_outcome(outcome: SoakOutcome, console: Console) -> None:
    facts, run = outcome.facts, outcome.run
    topology = {"single": "single server", "sentinel": "through Sentinel"}.get(
        facts.topology, facts.topology
    )
    console.print(
        f"server: {facts.server}, {topology}, {facts.replicas} replica(s); "
        f"appendonly {facts.appendonly or '?'}, appendfsync {facts.appendfsync or '?'}; "
        f"durability tier {facts.durability_tier} (an acknowledged write, server crash: "
        f"{facts.server_crash}, failover: {facts.failover})",
        highlight=False,
    )
    console.print(
        f"run: seed {run['seed']}, {run['duration_s']:g} s of load ({run['wall_s']} s in all), "
        f"faults {','.join(run['faults']) or 'none'} ({len(outcome.fault_log)} injected), "
        f"{run['acknowledged_ops']} acknowledged ops, {run['bus_events']} events in "
        f"{run['bus_processes']} processes",
        highlight=False,
    )
    console.print(verdict_table(outcome))
    for v in outcome.verdicts:
        for example in v.examples:
            console.print(f"  [red]{v.name}[/red]: {escape(example)}", soft_wrap=True)
    for note in outcome.notes:
        console.print(f"[yellow]note[/yellow]: {escape(note)}", soft_wrap=True)
    if outcome.ok:
        console.print("[green]every invariant held[/green]")
    else:
        console.print("[bold red]an invariant was violated[/bold red]")
