"""Results as JSON, a markdown report (ratios against raw redis-py and
FastStream measured in the same run) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lash_streams.bench.measure import BUCKET_S


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(ours: float | None, base: float | None) -> str:
    return "-" if not ours or not base else f"{ours / base:.2f}x"


def topology(meta: dict[str, Any]) -> str:
    """The shape measured, in words (results from before topologies were
    recorded are one server)."""
    kind = meta.get("topology", "single")
    if kind == "cluster":
        nodes = ", ".join(f["address"] for f in meta.get("node_facts", []))
        return f"cluster of {meta.get('nodes')} masters ({nodes})"
    if kind == "sentinel":
        replicas = len(meta.get("replicas", []))
        return (
            f"Sentinel service `{meta.get('sentinel_service')}`: primary {meta.get('primary')} "
            f"and {replicas} replica{'s' if replicas != 1 else ''}"
        )
    return "one server"


def _baselines_where(meta: dict[str, Any]) -> str:
    kind = meta.get("topology", "single")
    if kind == "cluster":
        return (
            "Baselines measured in the same run on the same cluster: raw redis-py through "
            "`RedisCluster.from_url`; its streams (one per phase) each live on one master, "
            "while our appends spread over the masters."
        )
    if kind == "sentinel":
        return (
            "Baselines measured in the same run on the same primary: raw redis-py through "
            "`Sentinel(...).master_for`, our bus through the sentinel URL."
        )
    return "Baselines measured in the same run on the same server."


def _faststream_where(results: dict[str, Any]) -> str | None:
    node = _get(results, "baselines", "faststream", "node")
    kind = results["meta"].get("topology", "single")
    if kind == "cluster" and node:
        return (
            f"FastStream has no cluster client: it was connected straight to {node}, "
            "the master that holds its stream's slot."
        )
    if kind == "sentinel" and node:
        return (
            f"FastStream has no Sentinel client: it was connected straight to {node}, "
            "the primary the sentinels named at the start of its phase."
        )
    return None


def headline(
    results: dict[str, Any],
) -> list[tuple[str, float | None, float | None, float | None, int]]:
    """(measure, ours, raw redis-py, FastStream, digits)."""

    def g(*path: str) -> float | None:
        value = _get(results, *path)
        return None if value is None else float(value)

    rows: list[tuple[str, float | None, float | None, float | None, int]] = [
        (
            "appends/s, one call each",
            g("appends", "append_event", "per_s"),
            g("baselines", "raw_xadd", "per_s"),
            g("baselines", "faststream", "publish", "per_s"),
            0,
        ),
        (
            "appends/s with a replay key",
            g("appends", "append_event_keyed", "per_s"),
            g("baselines", "raw_xadd", "per_s"),
            None,
            0,
        ),
        (
            "appends/s, 16 tasks on one process",
            g("appends", "append_event_contended", "per_s"),
            g("baselines", "raw_xadd", "per_s"),
            None,
            0,
        ),
        (
            "appends/s, batches of 100",
            g("appends", "append_events", "per_s"),
            g("baselines", "raw_xadd_pipelined", "per_s"),
            None,
            0,
        ),
        (
            "wakes/s, drained by the consumer group",
            g("wakes", "drain", "per_s"),
            g("baselines", "raw_group_drain", "per_s"),
            g("baselines", "faststream", "drained", "per_s"),
            0,
        ),
        (
            "append -> wake round trips/s",
            g("wakes", "latency", "per_s"),
            g("baselines", "raw_round_trip", "per_s"),
            g("baselines", "faststream", "round_trip", "per_s"),
            0,
        ),
    ]
    for p, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
        rows.append(
            (
                f"append -> wake latency {label} ms (lower is better)",
                g("wakes", "latency", p),
                g("baselines", "raw_round_trip", p),
                g("baselines", "faststream", "round_trip", p),
                3,
            )
        )
    rows.append(
        (
            "jobs started/s, a worker draining a backlog",
            g("dispatch", "jobs", "per_s"),
            g("baselines", "raw_round_trip", "per_s"),
            g("baselines", "faststream", "round_trip", "per_s"),
            0,
        )
    )
    for p, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        rows.append(
            (
                f"submit -> job start {label} ms (lower is better)",
                g("dispatch", "start_latency", p),
                g("baselines", "raw_round_trip", p),
                g("baselines", "faststream", "round_trip", p),
                3,
            )
        )
    return rows


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    cfg = meta["config"]
    lines = [
        "# lash-streams bench",
        "",
        f"Server: {meta['server']} (redis_version {meta['redis_version']}), {meta['persistence']}. "
        f"Machine: {meta['machine']}, {meta['cpus']} CPUs, Python {meta['python']}. "
        f"Payload {cfg['payload_bytes']} bytes, {cfg['duration_s']} s per throughput phase, "
        f"{cfg['samples']} one-at-a-time samples, {cfg['processes']} processes, "
        f"{cfg['consumers']} consumers. Metrics {'on' if meta.get('metrics') else 'off'}, "
        f"tracing {'on' if meta.get('tracing') else 'off'}. "
        f"Topology: {topology(meta)}. {_baselines_where(meta)}",
        "",
        "| measure | lash-streams | raw redis-py | vs raw | FastStream | vs FastStream |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, ours, raw, fs, digits in headline(results):
        lines.append(
            f"| {name} | {_num(ours, digits)} | {_num(raw, digits)} | {_ratio(ours, raw)} "
            f"| {_num(fs, digits)} | {_ratio(ours, fs)} |"
        )
    lines += [
        "",
        "Raw redis-py is `XADD` for appends (pipelined by 100 against our batches), "
        "`XADD` -> `XREADGROUP BLOCK` -> `XACK` for round trips, and pipelined `XADD` "
        "drained by the same number of group consumers for wakes/s. FastStream is "
        "`RedisBroker.publish` to a stream and a `StreamSub` consumer-group subscriber.",
    ]
    fs_where = _faststream_where(results)
    if fs_where:
        lines += ["", fs_where]
    lines += _cpu(results)
    producers = results.get("producers")
    if producers:
        lines += [
            "",
            "## Producer processes (appends/s, all producers together)",
            "",
            "| producers | append_event | raw XADD | vs raw |",
            "|---:|---:|---:|---:|",
        ]
        for o, r in zip(producers["ours"], producers["raw"], strict=True):
            lines.append(
                f"| {o['producers']} | {_num(o['per_s'])} | {_num(r['per_s'])} "
                f"| {_ratio(o['per_s'], r['per_s'])} |"
            )
    scale = results.get("scale")
    if scale:
        lines += [
            "",
            "## Registered processes (each leased by a live holder)",
            "",
            "A drive's pass reads only the due rows; lash's full sweep reads every row; "
            "the last pass runs after 1% of the leases lapsed (commands per running row).",
            "",
            "| processes | register/s | append p50 ms | append p99 ms | pass s "
            "| commands/row | full sweep s | commands/row | 1% lapsed: pass s "
            "| commands/row | bytes/process |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in scale:
            lapsed = row.get("lapsed_1pct") or {}
            lines.append(
                f"| {row['processes']:,} | {_num(row['register_per_s'])} "
                f"| {row['append']['p50_ms']:.3f} | {row['append']['p99_ms']:.3f} "
                f"| {row['sweep_s']:.3f} | {row['sweep_commands_per_row']:.4f} "
                f"| {row.get('full_sweep_s', float('nan')):.2f} "
                f"| {row.get('full_sweep_commands_per_row', float('nan')):.2f} "
                f"| {lapsed.get('sweep_s', float('nan')):.3f} "
                f"| {lapsed.get('sweep_commands_per_row', float('nan')):.3f} "
                f"| {_num(row['bytes_per_process'])} |"
            )
    memory = results.get("memory")
    if memory:
        ours_info = memory["ours_info_bytes_per_event"]
        raw_info = memory["raw_info_bytes_per_event"]
        lines += [
            "",
            "## Memory per event",
            "",
            f"{memory['events']:,} events of {memory['payload_json_bytes']} JSON bytes.",
            "",
            "| | lash-streams | raw XADD | vs raw |",
            "|---|---:|---:|---:|",
            f"| `MEMORY USAGE`, bytes/event | {_num(memory['ours_bytes_per_event'])} "
            f"| {_num(memory['raw_bytes_per_event'])} "
            f"| {_ratio(memory['ours_bytes_per_event'], memory['raw_bytes_per_event'])} |",
            f"| `INFO used_memory` delta, bytes/event | {_num(ours_info)} "
            f"| {_num(raw_info)} | {_ratio(ours_info, raw_info)} |",
        ]
        nodes = memory.get("info_nodes", 1)
        if nodes > 1:
            lines += [
                "",
                f"The `INFO` delta is summed over {nodes} masters, so every master's own "
                "drift (buffers, lazy frees) lands in it: on a cluster trust the "
                "`MEMORY USAGE` row, which is measured per key.",
            ]
    recovery = results.get("recovery")
    if recovery:
        lines += [
            "",
            "## Recovery after SIGKILL of a worker (recovery drive every 100 ms)",
            "",
            "| death evidence | lease TTL ms | rerunnable re-run, ms | owner-bound abandoned, ms |",
            "|---|---:|---:|---:|",
        ]
        for row in recovery:
            abandoned = row["abandoned_ms"]
            never = "never (no evidence, by design)"
            lines.append(
                f"| {row['evidence']} | {row['lease_ttl_ms']} | {_num(row['rerun_ms'])} "
                f"| {_num(abandoned) if abandoned is not None else never} |"
            )
    for error in results.get("errors", []):
        lines += ["", f"**Phase failed**: {error}"]
    lines += ["", f"Run took {meta['wall_s']:.1f} s.", ""]
    return "\n".join(lines)


def _cpu(results: dict[str, Any]) -> list[str]:
    cpu = results.get("cpu")
    if not cpu:
        return []
    lines = [
        "",
        "## CPU per item",
        "",
        "Client: the bench process's CPU; server: `INFO cpu` (all its threads), per item. "
        "The server does its part of every item on one thread, so 1 s / server CPU bounds "
        "the path's rate whatever the client does (empty on a cluster).",
        "",
        "| path | wall us | client us | server us | server-bound items/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in cpu["rows"]:
        lines.append(
            f"| {row['path']} | {_num(row['wall_us'], 1)} | {_num(row['client_us'], 1)} "
            f"| {_num(row['server_us'], 1)} | {_num(row['server_bound_per_s'])} |"
        )
    return lines


def _legend(ax: Any) -> None:
    """Beside the plot, never over a line."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def _where(fig: Any, results: dict[str, Any]) -> None:
    """Every figure names the server and the machine it was measured on."""
    meta = results.get("meta", {})
    fig.text(
        0.01,
        0.01,
        f"{topology(meta)}: {meta.get('server', '?')}, {meta.get('persistence', '?')}; "
        f"{meta.get('machine', '?')}, {meta.get('cpus', '?')} CPUs, "
        f"Python {meta.get('python', '?')}",
        fontsize="x-small",
        color="dimgray",
    )


def _title(what: str, results: dict[str, Any]) -> str:
    kind = results.get("meta", {}).get("topology", "single")
    if kind == "cluster":
        return f"{what}: cluster of {results['meta'].get('nodes')} masters"
    if kind == "sentinel":
        return f"{what}: Sentinel primary {results['meta'].get('primary')}"
    return f"{what}: one server"


def _measurable(points: list[Any], samples: float | None) -> list[Any]:
    """Percentiles the sample count can tell apart: p99.99 needs 10,000."""
    if not samples:
        return points
    return [(p, ms) for p, ms in points if samples * (1 - p / 100) >= 1]


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    # Labels as the table's rows say them.
    series = {
        "appends, one call each: append_event": _get(results, "appends", "append_event", "series"),
        "appends, one call each: raw XADD": _get(results, "baselines", "raw_xadd", "series"),
        "appends, one call each: FastStream": _get(
            results, "baselines", "faststream", "publish", "series"
        ),
        "appends, batches of 100: append_events": _get(
            results, "appends", "append_events", "series"
        ),
        "appends, batches of 100: raw XADD": _get(
            results, "baselines", "raw_xadd_pipelined", "series"
        ),
        "wakes drained by the consumer group": _get(results, "wakes", "drain", "series"),
    }
    fig, ax = plt.subplots(figsize=(12, 5))
    for label, points in series.items():
        if points:
            ax.plot([BUCKET_S * (i + 1) for i in range(len(points))], points, label=label)
    ax.set(
        title=_title("Throughput over time", results),
        xlabel="seconds into the phase",
        ylabel="items/s",
    )
    ax.set_yscale("log")
    _legend(ax)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _where(fig, results)
    written.append(out / "throughput.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    curves = {
        "append_event -> wake consumer": (
            _get(results, "wakes", "latency", "curve"),
            _get(results, "wakes", "latency", "count"),
        ),
        "raw XADD -> XREADGROUP": (
            _get(results, "baselines", "raw_round_trip", "curve"),
            _get(results, "baselines", "raw_round_trip", "count"),
        ),
        "FastStream publish -> subscriber": (
            _get(results, "baselines", "faststream", "round_trip", "curve"),
            _get(results, "baselines", "faststream", "round_trip", "count"),
        ),
    }
    fig, ax = plt.subplots(figsize=(12, 5))
    ax.set_xscale("log")
    for label, (raw_points, samples) in curves.items():
        points = _measurable(raw_points or [], samples)
        if points:
            nines = [1 / (1 - p / 100) for p, _ in points]
            ax.plot(nines, [ms for _, ms in points], marker="o", label=label)
            ax.set_xticks(nines, [f"p{p:g}" for p, _ in points])
    ax.minorticks_off()
    ax.set(
        title=_title("Round-trip latency percentiles", results), xlabel="percentile", ylabel="ms"
    )
    _legend(ax)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _where(fig, results)
    written.append(out / "latency.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    producers, scale = results.get("producers"), results.get("scale")
    if producers or scale:
        from matplotlib.ticker import MaxNLocator

        fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.5))
        if producers:
            for mode, label in (("ours", "append_event"), ("raw", "raw XADD")):
                rows = producers[mode]
                left.plot(
                    [r["producers"] for r in rows],
                    [r["per_s"] for r in rows],
                    marker="o",
                    label=label,
                )
            left.set(
                title=_title("Producer processes", results),
                xlabel="producers",
                ylabel="appends/s (all)",
            )
            left.xaxis.set_major_locator(MaxNLocator(integer=True))
            _legend(left)
        if scale:
            xs = [r["processes"] for r in scale]
            right.plot(
                xs, [r["append"]["p50_ms"] for r in scale], marker="o", label="append p50 ms"
            )
            right.plot(
                xs, [r["append"]["p99_ms"] for r in scale], marker="o", label="append p99 ms"
            )
            right.plot(
                xs,
                [r.get("full_sweep_s", r["sweep_s"]) * 1000 / r["processes"] for r in scale],
                marker="o",
                label="full sweep ms/row",
            )
            right.set_xscale("log")
            right.set(
                title=_title("Registered processes", results), xlabel="processes", ylabel="ms"
            )
            _legend(right)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        _where(fig, results)
        written.append(out / "scale.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


def write(results: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    return [out / "results.json", out / "results.md", *plots(results, out)]
