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
    md = (tmp_path / "results.md").read_text()
    assert "vs raw" in md and "vs FastStream" in md and meta["server"] in md
    assert "jobs started/s" in md and "submit -> job start p99 ms" in md


def test_the_bench_leaves_no_keys_behind(tmp_path, standalone_servers):
    import redis

    url = next(iter(standalone_servers.values()))
    sections = "appends,wakes,dispatch,memory"
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
        (["--url", "redis+cluster://127.0.0.1:7000"], 1, "one server"),
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
