"""The ``lash-streams`` command line."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

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
def demo(
    url: UrlOption = None,
    namespace: NamespaceOption = "lash-demo",
    workers: Annotated[int, typer.Option(min=2, max=8, help="Worker processes.")] = 3,
    consumers: Annotated[int, typer.Option(min=1, max=8, help="Wake consumer processes.")] = 2,
    live: Annotated[
        bool | None,
        typer.Option("--live/--no-live", help="Live view (default: when on a terminal)."),
    ] = None,
) -> None:
    """Run a small fleet (workers, wake consumers, a sweeper) as OS processes,
    kill one worker mid-run and show the sweeper recording the abandonment."""
    from lash_streams.cli.ops import one_line_errors
    from lash_streams.demo import DemoConfig, run_demo

    config = DemoConfig(workers=workers, consumers=consumers, live=live)
    with one_line_errors(url):
        outcome = asyncio.run(run_demo(url, namespace, config, console))
    if not outcome.ok:
        raise typer.Exit(1)


def _register_operator_commands() -> None:
    from lash_streams.cli.act import register_actions
    from lash_streams.cli.bench import register_bench
    from lash_streams.cli.dlq import register_dlq
    from lash_streams.cli.doctor import register_doctor
    from lash_streams.cli.jobs import register_jobs
    from lash_streams.cli.ops import register, register_watch
    from lash_streams.cli.soak import register_soak

    register(app)
    register_doctor(app)
    register_actions(app)
    register_dlq(app)
    register_jobs(app)
    register_watch(app)
    register_bench(app)
    register_soak(app)


_register_operator_commands()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
