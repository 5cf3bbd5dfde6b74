"""``lash-streams soak``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def register_soak(app: typer.Typer) -> None:
    @app.command()
    def soak(
        url: Annotated[
            str | None,
            typer.Option(
                "--url",
                envvar="LASH_STREAMS_URL",
                help="Server to check; without one an embedded server is started.",
            ),
        ] = None,
        duration: Annotated[
            str, typer.Option(help="How long the load runs: 90s, 10m, 2h (a long soak).")
        ] = "10m",
        faults: Annotated[
            str | None, typer.Option(help="Comma-separated faults: kill, pause, proxy.")
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed of the workload and fault schedule.")] = 0,
        processes: Annotated[
            int, typer.Option(min=4, max=64, help="Workload processes (besides a sweeper).")
        ] = 8,
        json_path: Annotated[
            Path | None, typer.Option("--json", help="Write the verdicts as JSON to this file.")
        ] = None,
    ) -> None:
        """Run a seeded workload of OS processes (appenders, wake consumers,
        workers, a lease holder, a sweeper) with faults, in a fresh namespace
        deleted afterwards; check the log for lost, duplicated and unexpected
        values and the other invariants (docs/soak.md). Exit 1 on a violation."""
        from lash_streams.cli.ops import one_line_errors
        from lash_streams.soak.config import SoakConfig, parse_duration, parse_faults
        from lash_streams.soak.report import print_outcome
        from lash_streams.soak.run import run_soak

        with one_line_errors(url):
            config = SoakConfig(
                duration_s=parse_duration(duration),
                faults=parse_faults(faults),
                seed=seed,
                processes=processes,
            )
            outcome = asyncio.run(
                run_soak(url, config, lambda line: console.print(line, highlight=False))
            )
        print_outcome(outcome, console)
        if json_path is not None:
            json_path.write_text(json.dumps(outcome.to_json(), indent=2, sort_keys=True) + "\n")
        if not outcome.ok:
            raise typer.Exit(1)
