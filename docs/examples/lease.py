"""Hold a process's lease and write under it (fenced writes).

Runs against ``LASH_STREAMS_URL`` when set, else a private embedded server;
``LASH_STREAMS_NAMESPACE`` picks the key namespace (default ``lash-examples``).
"""

import asyncio
import os
import uuid

import lash_streams as ls

URL = os.environ.get("LASH_STREAMS_URL")
NAMESPACE = os.environ.get("LASH_STREAMS_NAMESPACE", "lash-examples")

STEP = ls.ProcessEventType(
    name="step",
    payload_schema=ls.LashSchema(schema={"type": "integer"}),
    semantics=ls.ProcessEventSemanticsSpec(),
)


async def main() -> None:
    async with ls.connect(URL, namespace=NAMESPACE) as bus:
        pid = f"job-{uuid.uuid4().hex[:8]}"
        await bus.register_process(
            ls.ProcessRegistration.external(
                pid, disposition=ls.RecoveryDisposition.RERUNNABLE, event_types=[STEP]
            )
        )
        # A lease owner: a stable worker id and one id per incarnation (restart).
        me = ls.LeaseOwnerIdentity.opaque("worker-1", uuid.uuid4().hex)
        claimed = await bus.claim_process_lease(pid, me, 30_000)  # TTL in ms, server clock
        assert isinstance(claimed, ls.LeaseAcquired)
        lease = claimed.lease
        print(f"leased {pid}: fencing token {lease.fencing_token}")

        other = ls.LeaseOwnerIdentity.opaque("worker-2", uuid.uuid4().hex)
        busy = await bus.claim_process_lease(pid, other, 30_000)
        assert isinstance(busy, ls.LeaseBusy)  # contention is an outcome, not an error
        print(f"worker-2 sees the lease held by {busy.holder.owner.owner_id}")

        for n in (1, 2, 3):
            request = ls.ProcessEventAppendRequest.new("step", n).with_replay_key(f"step-{n}")
            await bus.append_event(pid, request, lease=lease)  # fenced: lands only under it
            lease = await bus.renew_process_lease(lease, 30_000)
        await bus.complete_process(pid, ls.AwaitSuccess(value=3), lease=lease)
        await bus.complete_process_lease(ls.ProcessLeaseCompletion.from_lease(lease))

        # Released: the old lease fences nothing any more, its writes are refused.
        try:
            await bus.append_event(pid, ls.ProcessEventAppendRequest.new("step", 4), lease=lease)
        except ls.errors.LeaseFenced as err:
            print(f"late write refused ({err.kind})")
        # The next acquisition gets a higher fencing token.
        again = await bus.claim_process_lease(pid, other, 30_000)
        assert isinstance(again, ls.LeaseAcquired) and again.lease.fencing_token == 2
        await bus.complete_process_lease(ls.ProcessLeaseCompletion.from_lease(again.lease))
        print("status:", ls.status_label((await bus.get_process(pid)).status))


if __name__ == "__main__":
    asyncio.run(main())
