"""The fault hooks: a proxy fault rewrites the URL the workload connects to
before any workload process starts and drives the proxy's cut and stall
(the proxy itself ships in lash_streams.faults.proxy; a stand-in records the
calls here); without that module the fault is skipped with a note."""

from __future__ import annotations

import sys
import types
from typing import ClassVar

import pytest

from lash_streams.server import LocalServer
from lash_streams.soak.checker import OKAY
from lash_streams.soak.config import SoakConfig
from lash_streams.soak.faults import ProxyFault
from lash_streams.soak.run import run_soak

pytestmark = pytest.mark.slow


class StandIn:
    """FaultProxy's interface, passing connections straight to the server."""

    made: ClassVar[list[StandIn]] = []

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.calls: list[str] = []
        StandIn.made.append(self)

    async def start(self) -> None:
        self.calls.append("start")

    def url(self, upstream_url: str) -> str:
        self.calls.append("url")
        return upstream_url

    def cut(self) -> None:
        self.calls.append("cut")

    def stall(self, on: bool) -> None:
        self.calls.append(f"stall {on}")

    async def stop(self) -> None:
        self.calls.append("stop")


async def test_the_proxy_fault_wraps_the_workload_url_and_drives_the_proxy(monkeypatch):
    module = types.ModuleType(ProxyFault.module)
    module.FaultProxy = StandIn  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, ProxyFault.module, module)
    async with LocalServer() as server:
        config = SoakConfig(duration_s=4, faults=("proxy",), seed=3, fault_every_s=0.5)
        outcome = await run_soak(server.url, config)
    assert [v.name for v in outcome.verdicts if v.status != OKAY] == []
    (proxy,) = StandIn.made
    assert proxy.upstream == ("127.0.0.1", server.port)
    assert proxy.calls[:2] == ["start", "url"] and proxy.calls[-1] == "stop"
    assert {"cut", "stall True", "stall False"} <= set(proxy.calls)
    assert outcome.notes == []


async def test_without_the_proxy_module_the_fault_is_skipped_with_a_note(monkeypatch):
    monkeypatch.setitem(sys.modules, ProxyFault.module, None)  # import fails
    async with LocalServer() as server:
        outcome = await run_soak(server.url, SoakConfig(duration_s=2, faults=("proxy",), seed=1))
    assert outcome.ok
    assert outcome.notes == ["proxy: skipped, lash_streams.faults.proxy is not in this build"]
    assert outcome.fault_log == []
