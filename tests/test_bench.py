"""``lash-streams bench`` (issue 6): a tiny run of every section writes JSON,
markdown and PNGs with the same-run baselines; bad input ends cleanly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lash_streams.cli import app

pytestmark = pytest.mark.slow

TINY = [
    "--quick", "--duration", "0.3", "--samples", "30", "--scale", "40",
    "--producers", "2", "--processes", "5", "--consumers", "2",
]  # fmt: skip


def bench(*args: str):
    return CliRunner().invoke(app, ["bench", *args])


def test_a_tiny_run_writes_json_markdown_and_plots(tmp_path, standalone_servers):
    url = next(iter(standalone_servers.values()))
    result = bench(*TINY, "--url", url, "--namespace", "bench-test", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    for name in ("results.json", "results.md", "throughput.png", "latency.png", "scale.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    data = json.loads((tmp_path / "results.json").read_text())
    meta = data["meta"]
    assert meta["redis_version"] and meta["persistence"] and meta["cpus"] >= 1
    b = data["baselines"]
    for rate in (b["raw_xadd"], b["raw_xadd_pipelined"], b["raw_group_drain"]):
        assert rate["per_s"] > 0
    assert b["raw_round_trip"]["p50_ms"] > 0
    assert b["faststream"]["round_trip"]["p50_ms"] > 0 and b["faststream"]["drained"]["count"] > 0
    assert (
        data["appends"]["append_event"]["per_s"] > 0 and data["appends"]["append_events"]["series"]
    )
    assert data["wakes"]["latency"]["p999_ms"] > 0 and data["wakes"]["drain"]["per_s"] > 0
    # Issue 16's dispatch figures (results.json keys the issue names).
    assert data["dispatch"]["start_latency"]["p99_ms"] > 0
    assert data["dispatch"]["jobs"]["per_s"] > 0 and data["dispatch"]["jobs"]["count"] >= 1_000
    assert [r["producers"] for r in data["producers"]["ours"]] == [1, 2]
    assert data["memory"]["ours_bytes_per_event"] > data["memory"]["raw_bytes_per_event"] > 0
    with_evidence, without = data["recovery"]
    assert with_evidence["abandoned_ms"] is not None and with_evidence["rerun_ms"] is not None
    assert without["abandoned_ms"] is None  # no death evidence: never abandoned (SW-11)
    assert without["rerun_ms"] >= without["lease_ttl_ms"] * 0.9  # only after the lapse (SW-7)
    assert data["scale"][0]["processes"] == 40 and data["scale"][0]["sweep_commands_per_row"] > 0
    assert meta["topology"] == "single" and meta["nodes"] == 1 and "node_facts" not in meta
    assert b["faststream"]["node"] is None
    md = (tmp_path / "results.md").read_text()
    assert "vs raw" in md and "vs FastStream" in md and meta["server"] in md
    assert "Topology: one server" in md
    assert "jobs started/s" in md and "submit -> job start p99 ms" in md
    # Where each path's time goes: client and server CPU per item (a single server).
    rows = {row["path"]: row for row in data["cpu"]["rows"]}
    assert len(rows) == 7 and data["cpu"]["server_cpu"] is True
    for row in rows.values():
        assert row["wall_us"] > 0 and row["client_us"] > 0 and row["server_us"] > 0, row
        assert row["server_bound_per_s"] == pytest.approx(1e6 / row["server_us"])
    assert "## CPU per item" in md and "| append_event, one call |" in md


def test_the_bench_leaves_no_keys_behind(tmp_path, standalone_servers):
    import redis

    url = next(iter(standalone_servers.values()))
    sections = "appends,wakes,dispatch,memory,recovery,cpu"
    args = ["--quick", "--only", sections, "--duration", "0.2", "--samples", "10"]
    result = bench(*args, "--url", url, "--namespace", "bench-clean", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    client = redis.Redis.from_url(url)
    try:
        assert list(client.scan_iter(match="bench-clean*")) == []
    finally:
        client.close()


def test_unreachable_server_is_one_line(tmp_path):
    result = bench("--quick", "--url", "redis://127.0.0.1:1/0", "--output", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "cannot reach the server" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--duration", "0"], 2, "duration"),
        (["--producers", "0"], 2, "producers"),
        (["--scale", "ten"], 2, "scale"),
        (["--only", "everything"], 2, "section"),
        (["--url", "redis+sentinel://127.0.0.1:26379"], 2, "names its service"),
        (["--url", "redis+sentinel://127.0.0.1:x/svc"], 2, "must be host:port"),
        (["--url", "redis+sentinel://127.0.0.1:26379/svc?bogus=1"], 2, "unknown sentinel"),
    ],
)
def test_bad_input(args, code, needle, tmp_path):
    result = bench(*args, "--output", str(tmp_path))
    assert result.exit_code == code, result.output
    assert needle in result.output and "Traceback" not in result.output


def test_without_the_extra_it_says_what_to_install():
    code = (
        "import sys; sys.modules['faststream'] = None\n"
        "from lash_streams.cli import app\n"
        "app(['bench', '--quick'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "pip install 'lash-streams[bench]'" in done.stderr and "Traceback" not in done.stderr


# -- issue 17: the same run on a cluster and on a Sentinel-managed primary ----

#: The keys every results.json carried before topologies (their meaning kept).
META_KEYS = {
    "redis_version", "valkey_version", "server", "aof", "appendfsync", "rdb_save",
    "persistence", "machine", "cpus", "python", "platform", "config",
    "server_time_ms", "metrics", "tracing", "wall_s",
}  # fmt: skip


def _figures_of_every_section(data: dict) -> None:
    assert not data.get("errors"), data.get("errors")
    b = data["baselines"]
    for rate in (b["raw_xadd"], b["raw_xadd_pipelined"], b["raw_group_drain"]):
        assert rate["per_s"] > 0
    assert b["raw_round_trip"]["p50_ms"] > 0
    assert b["faststream"]["round_trip"]["p50_ms"] > 0 and b["faststream"]["drained"]["count"] > 0
    for name in ("append_event", "append_event_keyed", "append_events", "append_event_contended"):
        assert data["appends"][name]["per_s"] > 0, name
    assert data["wakes"]["latency"]["p50_ms"] > 0 and data["wakes"]["drain"]["per_s"] > 0
    assert data["dispatch"]["start_latency"]["p50_ms"] > 0 and data["dispatch"]["jobs"]["per_s"] > 0
    # Child OS processes (producers, the SIGKILLed worker) took the same URL.
    assert all(r["per_s"] > 0 for mode in ("ours", "raw") for r in data["producers"][mode])
    with_evidence, without = data["recovery"]
    assert with_evidence["rerun_ms"] is not None and with_evidence["abandoned_ms"] is not None
    assert without["abandoned_ms"] is None and without["rerun_ms"] is not None
    assert data["memory"]["ours_bytes_per_event"] > 0 and data["memory"]["raw_bytes_per_event"] > 0
    row = data["scale"][0]
    assert row["processes"] == 40 and row["sweep_commands_per_row"] > 0
    assert all(r["wall_us"] > 0 and r["client_us"] > 0 for r in data["cpu"]["rows"])


def test_a_tiny_run_on_the_cluster(tmp_path, cluster):
    from redis.cluster import RedisCluster

    args = [*TINY, "--url", cluster.connect_url, "--namespace", "bench-cl"]
    result = bench(*args, "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    meta = data["meta"]
    assert set(meta) >= META_KEYS
    assert meta["topology"] == "cluster" and meta["nodes"] == 3
    nodes = meta["node_facts"]
    assert len(nodes) == 3 and len({n["address"] for n in nodes}) == 3
    assert all(n["server"] and n["persistence"] and n["redis_version"] for n in nodes)
    _figures_of_every_section(data)
    # FastStream (one plain connection) measured on the master holding its stream.
    assert data["baselines"]["faststream"]["node"] in {n["address"] for n in nodes}
    # The INFO memory delta is summed over the masters, and says so.
    assert data["memory"]["info_nodes"] == 3
    # The work is spread over nodes: no one server's CPU to report.
    assert data["cpu"]["server_cpu"] is False
    assert all(r["server_us"] is None for r in data["cpu"]["rows"])
    md = (tmp_path / "results.md").read_text()
    assert "Topology: cluster of 3 masters" in md and "RedisCluster" in md
    assert "FastStream has no cluster client" in md and "summed over 3 masters" in md
    client = RedisCluster.from_url(cluster.url)
    try:
        assert list(client.scan_iter(match="bench-cl*")) == []
    finally:
        client.close()


@pytest.fixture(scope="module")
def sentinel_set():
    from lash_streams.server.sentinel import LocalSentinelSet

    with LocalSentinelSet(replicas=1, sentinels=3) as started:
        yield started


def test_a_tiny_run_through_sentinel(tmp_path, sentinel_set):
    from redis.sentinel import Sentinel

    args = [*TINY, "--url", sentinel_set.url, "--namespace", "bench-sn"]
    result = bench(*args, "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    meta = data["meta"]
    assert set(meta) >= META_KEYS
    hosts = [("127.0.0.1", s.port) for s in sentinel_set.sentinels]
    host, port = Sentinel(hosts).discover_master(sentinel_set.service)
    primary = f"{host}:{port}"
    assert meta["topology"] == "sentinel" and meta["nodes"] == 2
    assert meta["primary"] == primary and len(meta["replicas"]) == 1
    assert meta["sentinel_service"] == sentinel_set.service
    assert [n["address"] for n in meta["node_facts"]] == [primary]
    _figures_of_every_section(data)
    assert data["baselines"]["faststream"]["node"] == primary
    assert all(r["server_us"] > 0 for r in data["cpu"]["rows"])  # the primary's CPU
    md = (tmp_path / "results.md").read_text()
    assert f"primary {primary} and 1 replica" in md and "master_for" in md
    client = Sentinel(hosts).master_for(sentinel_set.service)
    try:
        assert list(client.scan_iter(match="bench-sn*")) == []
    finally:
        client.close()


def test_results_from_before_topologies_still_render():
    from lash_streams.bench.report import markdown

    config = {"payload_bytes": 64, "duration_s": 1, "samples": 10, "processes": 1, "consumers": 1}
    meta = {
        "server": "redis 7.2", "redis_version": "7.2", "persistence": "no AOF",
        "machine": "x86_64", "cpus": 2, "python": "3.11", "config": config, "wall_s": 1.0,
    }  # fmt: skip
    md = markdown({"meta": meta})
    assert "Topology: one server" in md and "on the same server" in md
