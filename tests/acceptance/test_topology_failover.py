"""Primary failover, short form (bench/failover.py --short): replicas on a multi-host URL over a PostgreSQL 15
primary and its synchronous standby; the primary is killed (immediate stop) and the standby promoted while events,
realtime changes and cron ticks keep coming. Nothing committed is lost, every replica's LISTEN and the scheduler's
leadership come back, realtime clients receive again. The full run and its recovery seconds: bench/failover.py."""

from __future__ import annotations

import pytest
from testkit import servers

from tests.acceptance.test_chaos_soak import run_script
from tests.conftest import IN_CI

pytestmark = pytest.mark.system


def test_failover_short() -> None:
    reason = servers.system_unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI must run the failover test, but: {reason}")
        pytest.skip(reason)
    out = run_script("bench/failover.py", "--short")
    assert "FAIL" not in out and "| no committed webhook event lost | pass |" in out
    for check in (
        "every replica's LISTEN and leader-lock sessions back",
        "one scheduler leader",
        "realtime clients resubscribed",
        "every cron tick accounted for",
    ):
        assert f"| {check} | pass |" in out, out
