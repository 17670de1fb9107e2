"""The start-time decisions of tripsage.db.topology, on given server states (the probes themselves run against real
servers and poolers in tests/acceptance/test_topology_*.py)."""

from __future__ import annotations

import pytest

from tripsage.db import topology
from tripsage.exceptions import ConfigurationError

URL = "postgresql://app:secret@127.0.0.1:6543/postgres"


def state(pooling: topology.Pooling = "none", room: int = 100) -> topology.ServerState:
    return topology.ServerState(pooling=pooling, read_only=False, room=room, max_connections=100)


def test_a_transaction_pooler_is_refused_with_the_fix_and_no_password() -> None:
    with pytest.raises(ConfigurationError) as error:
        topology.refuse_unsupported(URL, state("transaction"), pool_max_size=10)
    message = str(error.value)
    assert "transaction-mode pooler" in message and "TRIPSAGE_DB_DIRECT_URL" in message
    assert "session-mode pooler URL" in message and "secret" not in message and "\n" not in message


def test_the_budget_counts_pool_listen_and_leader() -> None:
    assert topology.connections_needed(10) == 15
    topology.refuse_unsupported(URL, state(room=15), pool_max_size=10)
    with pytest.raises(ConfigurationError, match=r"needs up to 15 .* but 14 of max_connections=100 are free"):
        topology.refuse_unsupported(URL, state(room=14), pool_max_size=10)


def test_behind_a_session_pooler_the_server_budget_is_not_checked() -> None:
    topology.refuse_unsupported(URL, state("session", room=0), pool_max_size=10)
