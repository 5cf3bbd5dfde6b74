"""Hypothesis profiles for the fuzz suite (never a database in the repo).

- ``ci`` (default): few examples, derandomized, so ``make test`` is
  deterministic and the package stays well under a minute;
- ``long``: ``HYPOTHESIS_PROFILE=long pytest tests/fuzz`` for many examples
  (``LASH_STREAMS_FUZZ_EXAMPLES`` overrides the count).

The profile is applied per test (``FUZZ``), not loaded globally, so the rest
of the suite keeps its own Hypothesis settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

from tests._bus import bus, bus_factory  # noqa: F401

_COMMON = {
    "database": None,
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}
# No shrinking in CI: a big payload shrinks for minutes; the failure report
# already names every draw.
settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    **_COMMON,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("LASH_STREAMS_FUZZ_EXAMPLES", "500")),
    derandomize=False,
    # LASH_STREAMS_FUZZ_SHRINK=0: report failures unshrunk (faster triage).
    phases=list(Phase)
    if os.environ.get("LASH_STREAMS_FUZZ_SHRINK", "1") != "0"
    else [Phase.explicit, Phase.generate],
    **_COMMON,
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
FUZZ = settings(settings.get_profile(PROFILE if PROFILE in ("ci", "long") else "ci"))
