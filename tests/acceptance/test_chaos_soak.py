"""The short forms of the chaos and soak runs (bench/chaos.py, bench/soak.py), as CI runs them.

Each is a real run: three (or one) `tripsage serve` processes, the embedded PostgreSQL, a receiver and websocket
clients. The full forms are documented commands (docs/operations.md).
"""

from __future__ import annotations

import subprocess
import sys

from testkit import servers

LIMIT_S = 900


def run_script(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=servers.REPO, capture_output=True, text=True, timeout=LIMIT_S, check=False
    )
    print(result.stdout)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def test_chaos_short() -> None:
    out = run_script("bench/chaos.py", "--short")
    assert "FAIL" not in out and "| no webhook event lost | pass |" in out


def test_soak_short() -> None:
    out = run_script("bench/soak.py", "--minutes", "1", "--clients", "40", "--users", "10")
    assert "FAIL" not in out and "| resident memory growth < 10 % after warm-up | pass |" in out
