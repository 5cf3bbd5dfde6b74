"""A recovery sweeper: it runs work nobody runs and closes what cannot be re-run.

Runs against ``LASH_STREAMS_URL`` when set, else a private embedded server;
``LASH_STREAMS_NAMESPACE`` picks the key namespace (default ``lash-examples``).
A sweeper acts on every running process of its namespace: point it at a
scratch namespace, not at production data.
"""

import asyncio
import os
import uuid

import lash_streams as ls

URL = os.environ.get("LASH_STREAMS_URL")
NAMESPACE = os.environ.get("LASH_STREAMS_NAMESPACE", "lash-examples")


async def run_row(record: ls.ProcessRecord, lease: ls.ProcessLease) -> ls.ProcessAwaitOutput:
    """Executes one row under ``lease`` (renewed for us); returns its outcome."""
    await asyncio.sleep(0.1)
    return ls.AwaitSuccess(value={"ran": record.id})


async def main() -> None:
    async with ls.connect(URL, namespace=NAMESPACE) as bus:
        tag = uuid.uuid4().hex[:8]
        rerun = f"rerunnable-{tag}"
        started = f"owner-bound-{tag}"
        for pid, disposition in (
            (rerun, ls.RecoveryDisposition.RERUNNABLE),
            (started, ls.RecoveryDisposition.OWNER_BOUND),
        ):
            await bus.register_process(
                ls.ProcessRegistration.external(pid, disposition=disposition)
            )

        # A worker started the owner-bound row, then went silent: its lease lapses.
        gone = ls.LeaseOwnerIdentity.opaque("worker-9", uuid.uuid4().hex)
        claimed = await bus.claim_process_lease(started, gone, 200)
        assert isinstance(claimed, ls.LeaseAcquired)
        now = await bus.server_time_ms()
        await bus.record_first_started(started, ls.ProcessStarted(owner=gone, started_at_ms=now))
        # A lapsed lease is not death evidence: an operator asks for abandonment.
        await bus.request_process_abandon(
            started, ls.AbandonRequest(requested_by="ops", requested_at_ms=now, reason="host lost")
        )
        await asyncio.sleep(0.3)

        stem = ls.LeaseOwnerIdentity.opaque("sweeper-1", uuid.uuid4().hex)
        recovery = bus.recovery(stem, runner=run_row, lease_ttl_ms=3_000, renew_every_ms=1_000)
        stop = asyncio.Event()
        drive = asyncio.create_task(recovery.run(every_s=0.5, stop=stop))
        print(rerun, "->", ls.encode(await bus.await_terminal(rerun, timeout=30)).decode())
        print(started, "->", ls.encode(await bus.await_terminal(started, timeout=30)).decode())
        stop.set()
        await drive

        # One pass, on demand (what `lash-streams sweep` does): nothing left to do.
        report = await recovery.sweep_once()
        print(f"examined {report.examined}, ran {report.ran}, abandoned {report.abandoned}")


if __name__ == "__main__":
    asyncio.run(main())
