"""Zero cost when absent: without the extras (or switched off) nothing is
imported, no hook is called, and the instrumented paths still work."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests._servers import Backend

# Runs in a fresh interpreter: the import-time decision is what is under test.
_FLOW = textwrap.dedent(
    """
    import asyncio, sys

    BLOCK = sys.argv[3] == "block"
    if BLOCK:
        # What an environment without the extras looks like to `import`.
        for name in ("prometheus_client", "opentelemetry"):
            sys.modules[name] = None

    import lash_streams as ls
    from lash_streams import observability as obs
    from lash_streams.observability.hooks import Hooks
    from tests.conformance.fixtures import S, reg, req, rr_reg, scope, wake

    assert obs.hooks is None
    assert not obs.metrics_enabled() and not obs.tracing_enabled()
    if BLOCK:
        for enable in (obs.enable_metrics, obs.enable_tracing):
            try:
                enable()
            except ImportError as err:
                assert "lash-streams[" in str(err)
            else:
                raise AssertionError(f"{enable.__name__} worked without its extra")

    # Any call into the hooks now fails the run: the disabled paths must not reach them.
    def forbidden(*args, **kwargs):
        raise AssertionError("a hook was called while observability is off")

    for name in [n for n in vars(Hooks) if not n.startswith("__")]:
        setattr(Hooks, name, forbidden)


    async def main():
        async with ls.connect(sys.argv[1], namespace=sys.argv[2]) as bus:
            await bus.register_process(reg("p", wake("w")))
            s = scope("s")
            async with bus.wake_consumer(group="g", consumer="c", scopes=[s], block_ms=20) as c:
                c.backlog_sample_s = 0
                await bus.append_event("p", req("w", {"wake_input": "hi"}, target=s, key="k"))
                await bus.append_event("p", req("w", {"wake_input": "hi"}, target=s, key="k"))
                await bus.append_events([("p", req("process.waiting", {}))])
                message = await c.next(timeout=2)
                assert message is not None and message.delivery.process_id == "p"
                await message.ack()
            await bus.register_process(rr_reg("rr"))

            async def runner(record, lease):
                return S("ok")

            report = await bus.recovery(ls.LeaseOwnerIdentity(
                owner_id="w", incarnation_id="w:1", liveness=ls.LivenessOpaque()
            ), runner=runner).sweep_once()
            assert report.ran == ["rr"], report


    asyncio.run(main())
    # redis-py 8 imports opentelemetry by itself when it is installed, so only a
    # blocked environment can show that nothing of it loaded.
    roots = ("prometheus_client", "opentelemetry") if BLOCK else ("prometheus_client",)
    loaded = sorted(
        name for name, module in sys.modules.items()
        if name.split(".")[0] in roots and module is not None
    )
    assert not loaded, loaded
    print("stubs in use")
    """
)


def _run(backend: Backend, namespace: str, mode: str, **env: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _FLOW, backend.connect_url, namespace, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "stubs in use"


def test_without_the_extras_append_wake_and_sweep_run_on_stubs(backend, namespace):
    _run(backend, namespace, "block")


def test_switched_off_by_environment_even_when_installed(backend, namespace):
    _run(backend, namespace, "env", LASH_STREAMS_METRICS="0", LASH_STREAMS_TRACING="off")


def test_on_by_default_when_installed():
    code = (
        "from lash_streams import observability as obs; import prometheus_client as p; "
        "assert obs.metrics_enabled() and obs.tracing_enabled() and obs.hooks is not None; "
        "assert p.REGISTRY.get_sample_value('lash_streams_sweeps_total') == 0"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASH_STREAMS_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
