"""Foundation benchmarks: deploy from empty, no-op redeploy, and `tripsage up` to healthy.

Goals (issue "Foundation"): deploy from empty <= 5 s, no-op redeploy <= 1 s, `tripsage up` to healthy <= 10 s.
Run: .venv/bin/python bench/bench_foundation.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testkit import servers  # noqa: E402
from testkit.servers import free_port  # noqa: E402

from tripsage.db.migrations import Deployer  # noqa: E402

MIGRATIONS = REPO / "supabase" / "migrations"


def timed_deploys(server: servers.Server, runs: int) -> tuple[list[float], list[float]]:
    cold, noop = [], []
    for _ in range(runs):
        name = server.create_database(template=None)
        try:
            deployer = Deployer(server.url(name), MIGRATIONS)
            began = time.perf_counter()
            asyncio.run(deployer.deploy())
            cold.append(time.perf_counter() - began)
            began = time.perf_counter()
            asyncio.run(deployer.deploy())
            noop.append(time.perf_counter() - began)
        finally:
            server.drop_database(name)
    return cold, noop


def up_to_healthy(fresh: bool, data_dir: Path) -> float:
    if fresh:
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir()
        data_dir.chmod(0o755)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    env["TRIPSAGE_DATA_DIR"] = str(data_dir)
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "tripsage", "up", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"tripsage up exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if json.loads(response.read())["database"]["status"] == "ok":
                        return time.perf_counter() - began
            except OSError:
                time.sleep(0.02)
    finally:
        process.terminate()
        process.wait(timeout=60)


def row(figure: str, samples: list[float], goal: float) -> str:
    median = statistics.median(samples)
    verdict = "meets" if median <= goal else "MISSES"
    return (
        f"| {figure} | {median:.3f} s (min {min(samples):.3f}, max {max(samples):.3f}, n={len(samples)}) | "
        f"<= {goal:g} s | {verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="more repetitions")
    args = parser.parse_args()
    if args.full:
        args.runs = max(args.runs, 20)
    server = servers.start_embedded()
    try:
        cold, noop = timed_deploys(server, args.runs)
    finally:
        servers.stop_embedded(server)
    data_dir = servers.make_shared_tempdir("tsg-bench-up-")
    try:
        fresh = [up_to_healthy(True, data_dir) for _ in range(max(1, args.runs // 2))]
        warm = [up_to_healthy(False, data_dir) for _ in range(max(1, args.runs // 2))]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print("## Foundation (embedded PostgreSQL)\n")
    print("| figure | measured (median) | goal | |")
    print("|---|---|---|---|")
    print(row("deploy from empty (all migrations)", cold, 5.0))
    print(row("no-op redeploy", noop, 1.0))
    print(row("`tripsage up` to healthy, fresh data dir (initdb + deploy)", fresh, 10.0))
    print(row("`tripsage up` to healthy, existing data dir", warm, 10.0))


if __name__ == "__main__":
    main()
