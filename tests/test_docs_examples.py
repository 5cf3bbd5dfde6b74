"""Every code sample in the docs is a script under docs/examples/, run here.

Each Python example reads ``LASH_STREAMS_URL`` (else starts the embedded
server) and ``LASH_STREAMS_NAMESPACE``; each runs as its own OS process against
the suite's servers (cluster included) and must exit 0. The URL forms and
connection options docs/quickstart.md and docs/operating.md name (no URL,
``unix://``, ``rediss://`` with server and client certificates, a pool size in
the URL) are run here too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lash_streams as ls
from lash_streams.server import LocalServer, free_port, redis_binary
from tests._servers import Backend

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
SERVER_EXAMPLES = ["quickstart.py", "workers.py", "lease.py", "recovery.py"]


def run_example(
    script: str, url: str | None, namespace: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASH_STREAMS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["LASH_STREAMS_NAMESPACE"] = namespace
    if url is not None:
        env["LASH_STREAMS_URL"] = url
    path = EXAMPLES / script
    command = ["bash", str(path)] if script.endswith(".sh") else [sys.executable, str(path)]
    done = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def test_every_example_is_run_here() -> None:
    on_disk = {p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".sh")}
    assert on_disk == {*SERVER_EXAMPLES, "fake_bus.py", "cli.sh", "sentinel.py"}


@pytest.mark.no_key_hygiene  # its own Sentinel set
def test_sentinel_example(namespace: str) -> None:
    out = run_example("sentinel.py", None, namespace).stdout
    assert "the primary is now on port" in out and "'step': 2" in out


@pytest.mark.parametrize("script", SERVER_EXAMPLES)
def test_example_runs(script: str, any_backend: Backend, namespace: str) -> None:
    run_example(script, any_backend.connect_url, namespace)


def test_cli_example(any_backend: Backend, namespace: str) -> None:
    out = run_example("cli.sh", any_backend.connect_url, namespace).stdout
    assert "status completed" in out and "pruned 1 processes" in out


@pytest.mark.no_key_hygiene  # no server of the suite is involved
def test_fake_bus_example(namespace: str) -> None:
    assert run_example("fake_bus.py", None, namespace).stdout.strip() == "ok"


@pytest.mark.no_key_hygiene
def test_quickstart_on_the_embedded_server(namespace: str) -> None:
    """No URL: the example starts (and stops) a private Valkey itself."""
    out = run_example("quickstart.py", None, namespace).stdout
    assert "terminal:" in out


@pytest.mark.no_key_hygiene
def test_quickstart_over_a_unix_socket(tmp_path: Path, namespace: str) -> None:
    socket = tmp_path / "redis.sock"
    server = LocalServer(extra_args=["--unixsocket", str(socket), "--unixsocketperm", "700"])
    with server.start():
        run_example("quickstart.py", f"unix://{socket}", namespace)


def _make_certs(folder: Path) -> dict[str, Path]:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", "san.ext",
                "-out", f"{name}.crt")  # fmt: skip
    return {
        n: folder / n for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")
    }


@pytest.mark.no_key_hygiene
def test_quickstart_over_tls_with_client_certificates(tmp_path: Path, namespace: str) -> None:
    """``rediss://`` with the CA and a client certificate given in the URL
    (docs/operating.md, TLS); the server requires client certificates."""
    if redis_binary() is None or shutil.which("openssl") is None:
        pytest.skip("needs redis-server (built with TLS) and openssl")
    certs = _make_certs(tmp_path)
    tls_port = free_port()
    server = LocalServer.redis(
        extra_args=[
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certs["server.crt"]),
            "--tls-key-file", str(certs["server.key"]),
            "--tls-ca-cert-file", str(certs["ca.crt"]),
            "--tls-auth-clients", "yes",
        ]
    )  # fmt: skip
    with server.start():
        url = (
            f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={certs['ca.crt']}"
            f"&ssl_certfile={certs['client.crt']}&ssl_keyfile={certs['client.key']}"
        )
        run_example("quickstart.py", url, namespace)
        # Without a client certificate the server refuses the connection.
        bare = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={certs['ca.crt']}"
        code = f"import asyncio, lash_streams as ls; asyncio.run(ls.connect({bare!r}))"
        with pytest.raises(subprocess.CalledProcessError):
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, timeout=60
            )


async def test_pool_options_come_from_the_url(backend: Backend, namespace: str) -> None:
    """docs/operating.md: ``?max_connections=`` and ``?timeout=`` in the URL set
    the size of the (blocking) connection pool and how long a call waits for a
    free connection; ``?socket_timeout=`` replaces the socket timeout of both
    clients (defaults: 64 connections each, 10 s and 15 s)."""
    if backend.is_cluster:
        pytest.skip("single-node pool")
    url = f"{backend.url}?max_connections=8&timeout=5&socket_timeout=20"
    async with ls.connect(url, namespace=namespace) as bus:
        for client in (bus.redis, bus.blocking):
            pool = client.connection_pool
            assert pool.max_connections == 8 and pool.timeout == 5
            assert pool.connection_kwargs["socket_timeout"] == 20
    async with ls.connect(backend.url, namespace=namespace) as bus:
        assert bus.redis.connection_pool.max_connections == 64
        assert bus.blocking.connection_pool.max_connections == 64
        assert bus.redis.connection_pool.connection_kwargs["socket_timeout"] == 10
        assert bus.blocking.connection_pool.connection_kwargs["socket_timeout"] == 15


DOCS_WITH_EXCERPTS = ["quickstart.md", "workers.md", "operating.md", "guarantees.md", "soak.md"]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _blocks(doc: str, language: str) -> list[str]:
    """The fenced blocks of ``docs/<doc>`` opened with ```<language>."""
    blocks: list[str] = []
    current: list[str] | None = None
    keep = False
    for line in (ROOT / "docs" / doc).read_text().splitlines():
        if current is None and line.startswith("```"):
            current, keep = [], line[3:].strip() == language
        elif current is not None and line.strip() == "```":
            if keep:
                blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


@pytest.mark.no_key_hygiene
@pytest.mark.parametrize("doc", DOCS_WITH_EXCERPTS)
def test_doc_snippets_are_excerpts_of_the_examples(doc: str) -> None:
    """Every ```python block of the page is a contiguous run of lines of one
    example script (indentation aside); every ``lash-streams`` command line in
    a plain ``` block is a line of cli.sh."""
    sources = {p.name: _lines(p.read_text()) for p in EXAMPLES.glob("*.py")}
    for block in _blocks(doc, "python"):
        wanted = _lines(block)
        found = any(
            src[i : i + len(wanted)] == wanted
            for src in sources.values()
            for i in range(len(src) - len(wanted) + 1)
        )
        assert found, f"docs/{doc}: this snippet is in no docs/examples script:\n{block}"
    cli = _lines((EXAMPLES / "cli.sh").read_text())
    for block in _blocks(doc, ""):
        for line in _lines(block):
            if line.startswith("lash-streams ") and "demo" not in line:
                assert line in cli, f"docs/{doc}: `{line}` is not run by docs/examples/cli.sh"
