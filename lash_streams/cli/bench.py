"""``lash-streams bench``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape

from lash_streams.bench.config import SECTIONS, BenchConfig

console = Console()
err_console = Console(stderr=True)

_EXTRA = "pip install 'lash-streams[bench]'"


def register_bench(app: typer.Typer) -> None:
    @app.command()
    def bench(
        url: Annotated[
            str | None,
            typer.Option(
                "--url",
                envvar="LASH_STREAMS_URL",
                help="Server, cluster (redis+cluster://) or Sentinel service "
                "(redis+sentinel://) to measure; without one an embedded server is started.",
            ),
        ] = None,
        namespace: Annotated[
            str, typer.Option(help="Key namespace (removed at the end).")
        ] = "lash-bench",
        output: Annotated[
            Path,
            typer.Option("--output", "-o", help="Folder for results.json, results.md and PNGs."),
        ] = Path("bench-results"),
        quick: Annotated[
            bool, typer.Option(help="Small sizes: about a minute on 2 cores.")
        ] = False,
        processes: Annotated[
            int | None, typer.Option(min=1, help="Processes the throughput phases use.")
        ] = None,
        producers: Annotated[
            int | None, typer.Option(min=1, max=16, help="Up to this many producer processes.")
        ] = None,
        consumers: Annotated[
            int | None, typer.Option(min=1, max=16, help="Wake consumers.")
        ] = None,
        payload_bytes: Annotated[
            int | None, typer.Option(min=16, max=1_000_000, help="Event payload size.")
        ] = None,
        duration: Annotated[
            float | None, typer.Option(min=0.1, help="Seconds per throughput phase.")
        ] = None,
        samples: Annotated[
            int | None, typer.Option(min=10, help="Round trips per latency measurement.")
        ] = None,
        scale: Annotated[
            str | None, typer.Option(help="Registered-process counts, e.g. 1000,10000,100000.")
        ] = None,
        only: Annotated[
            str | None, typer.Option(help=f"Comma-separated sections: {','.join(SECTIONS)}.")
        ] = None,
    ) -> None:
        """Measure appends, wakes, latency, recovery, memory and growth beside raw
        redis-py and FastStream on the same server, cluster (redis+cluster://) or
        Sentinel primary (redis+sentinel://); write JSON, markdown and PNGs."""
        try:
            import faststream  # noqa: F401
            import hdrh  # noqa: F401
            import matplotlib  # noqa: F401

            from lash_streams.bench import runner  # noqa: F401
        except ImportError as err:
            err_console.print(
                f"[red]the bench needs its extra[/red] ({err.name} is missing): {escape(_EXTRA)}",
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        if url is not None:
            _check_url(url)
        config = BenchConfig.quick() if quick else BenchConfig()
        overrides: dict[str, object] = {"url": url, "namespace": namespace, "output": output}
        for key, value in (
            ("processes", processes),
            ("producers", producers),
            ("consumers", consumers),
            ("payload_bytes", payload_bytes),
            ("duration_s", duration),
            ("samples", samples),
        ):
            if value is not None:
                overrides[key] = value
        if scale is not None:
            try:
                counts = tuple(int(part) for part in scale.split(",") if part.strip())
            except ValueError:
                counts = ()
            if not counts or min(counts) < 1:
                err_console.print(
                    f"[red]invalid --scale[/red] `{scale}`: positive integers, comma-separated"
                )
                raise typer.Exit(2)
            overrides["scale"] = counts
        if only is not None:
            chosen = tuple(s.strip() for s in only.split(",") if s.strip())
            unknown = [s for s in chosen if s not in SECTIONS]
            if unknown or not chosen:
                err_console.print(
                    f"[red]unknown section[/red] {unknown or only!r}: "
                    f"choose from {', '.join(SECTIONS)}"
                )
                raise typer.Exit(2)
            overrides["sections"] = tuple(s for s in SECTIONS if s in chosen)
        from dataclasses import replace

        config = replace(config, **overrides)  # type: ignore[arg-type]
        results = _run(config)
        from lash_streams.bench.report import markdown, write

        written = write(results, config.output)
        console.print(Markdown(markdown(results)))
        console.print("wrote " + ", ".join(str(p) for p in written))
        if results.get("errors"):
            raise typer.Exit(1)


def _run(config: BenchConfig) -> dict[str, object]:
    from lash_streams.bench import runner
    from lash_streams.cli.ops import one_line_errors

    with one_line_errors(config.url):
        return asyncio.run(runner.run(config, console))


def _check_url(url: str) -> None:
    """A malformed sentinel URL is one line (its message holds brackets that
    are not markup), before anything starts."""
    from lash_streams.errors import InvalidValue
    from lash_streams.sentinel import SCHEMES, parse_sentinel_url

    if not url.startswith(tuple(f"{s}://" for s in SCHEMES)):
        return
    try:
        parse_sentinel_url(url)
    except InvalidValue as err:
        err_console.print(f"[red]invalid --url[/red]: {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from None
