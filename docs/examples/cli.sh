#!/usr/bin/env bash
# The operator CLI against a server: LASH_STREAMS_URL must name it (the CLI
# never starts an embedded server: it would be empty). Creates a process with
# quickstart.py first, in the namespace LASH_STREAMS_NAMESPACE.
set -euo pipefail
: "${LASH_STREAMS_URL:?set LASH_STREAMS_URL, e.g. redis://127.0.0.1:6379/0}"
ns="${LASH_STREAMS_NAMESPACE:-lash-examples}"
here="$(dirname "$0")"

pid="$(python "$here/quickstart.py" | tail -n 1)"
job="$(python - <<'PY'
import asyncio, os
import lash_streams as ls

async def main() -> None:
    ns = os.environ.get("LASH_STREAMS_NAMESPACE", "lash-examples")
    async with ls.connect(os.environ["LASH_STREAMS_URL"], namespace=ns) as bus:
        print((await bus.submit("web_search", {"query": "from the CLI example"})).id)

asyncio.run(main())
PY
)"

lash-streams inspect "$pid" --namespace "$ns"              # record, lease, last events, pending wakes
lash-streams ls --status any --namespace "$ns"             # lash's list filters
lash-streams ls --status completed --scope session-1 --namespace "$ns" --json
lash-streams tail "$pid" --limit 3 --namespace "$ns"       # follow events (here: the first 3)
lash-streams tail --scope session-1 --limit 1 --namespace "$ns"   # a session's wakes
lash-streams sweep --namespace "$ns"                       # one recovery sweep
lash-streams stats --namespace "$ns"                       # counts per status, oldest running, workers
lash-streams top --once --namespace "$ns"                  # running jobs, ready streams, workers
lash-streams retry "$job" --namespace "$ns"                # a job: queued for its workers now
lash-streams prune --older-than 0 --namespace "$ns"        # delete terminal processes now
lash-streams doctor --namespace "$ns"                      # server, persistence, advice
lash-streams soak --duration 5s --faults kill,pause --seed 1 --json "${TMPDIR:-/tmp}/soak.json"   # workload + checker, own namespace
