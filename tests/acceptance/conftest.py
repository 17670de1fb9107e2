"""What the acceptance tests share: a restartable PostgreSQL cluster for multi-process runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.harness import Cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The embedded server on a TCP port in its own temp dir, TripSage deployed (bench/harness.py)."""
    c = Cluster()
    c.start()
    try:
        yield c
    finally:
        c.close()
