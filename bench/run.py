"""Run every benchmark under bench/ and write one report, bench/RESULTS.md.

Each `bench/bench_*.py` prints Markdown (its tables put each figure beside the baseline measured in the same run);
this script runs them one after another, then the chaos and soak runs (bench/chaos.py, bench/soak.py) with their
checks, stamps the machine and the date, and writes the report. Small sizes by default; `--full` asks each for the
issue-sized run (the full soak alone takes 30 minutes). A failed benchmark or check makes the exit status 1.

Run: .venv/bin/python bench/run.py [--full] [--only NAME ...]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from testkit.harness import parse_cost_lines

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
TIMEOUT = 45 * 60  # seconds per benchmark (the full soak runs 30 minutes)
ANCHORS = (
    "Published anchors: pg_net executes up to 200 requests/s (Supabase docs); Supabase Realtime postgres_changes "
    "plateaus at 3,000-4,000 msgs/s with RLS on (Supabase's realtime benchmarks)."
)


def machine() -> str:
    memory = ""
    try:
        kib = int(
            next(
                line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
            ).split()[1]
        )
        memory = f", {kib / 1024 / 1024:.1f} GiB memory"
    except (OSError, StopIteration, ValueError):
        pass
    system = f"{platform.machine()}, {platform.platform()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores{memory}, {system}"


def cost_table(costs: list[dict[str, object]]) -> str:
    """What 1,000 units of each kind of work cost in CPU, gathered from the benchmarks' cost lines, so capacity on a
    bigger machine can be projected from this one (divide its spare CPU ms per second by the total)."""
    if not costs:
        return ""
    rows = [
        "## Cost per 1,000 units of work (CPU milliseconds)\n",
        "Measured from /proc during the runs below: PostgreSQL is the postmaster and all its backends; the runtime is "
        "the `tripsage serve` process (every thread). Per second of one core there are 1,000 CPU ms to spend.\n",
        "| work | PostgreSQL CPU ms / 1,000 | runtime CPU ms / 1,000 | total | measured over | from |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for cost in costs:
        postgres, runtime = float(str(cost["postgres_ms_per_1000"])), float(str(cost["runtime_ms_per_1000"]))
        note = f" ({cost['note']})" if cost.get("note") else ""
        rows.append(
            f"| {cost['work']}{note} | {postgres:,.0f} | {runtime:,.0f} | {postgres + runtime:,.0f} "
            f"| {int(str(cost['count'])):,} | {cost['bench']} |"
        )
    return "\n".join(rows) + "\n\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="issue-sized runs (slow)")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names, e.g. foundation webhooks")
    args = parser.parse_args()
    runs = [(script, ["--full"] if args.full else []) for script in sorted(BENCH.glob("bench_*.py"))]
    # The reliability runs, with their checks: short by default, the size with --full (the soak: 30 min).
    runs += [(BENCH / "chaos.py", [] if args.full else ["--short"])]
    runs += [(BENCH / "soak.py", [] if args.full else ["--minutes", "1", "--clients", "40", "--users", "10"])]
    runs += [(BENCH / "failover.py", [] if args.full else ["--short"])]  # needs root and the system PostgreSQL 15
    if args.only:
        runs = [(s, a) for s, a in runs if s.stem.removeprefix("bench_") in args.only]
    started = dt.datetime.now(dt.UTC)
    costs: list[dict[str, object]] = []
    sections: list[str] = []
    failures = 0
    for script, extra in runs:
        command = [sys.executable, str(script), *extra]
        print(f"running {script.name} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=BENCH.parent)
        elapsed = time.perf_counter() - began
        if result.returncode == 0:
            costs += [{**record, "bench": script.stem} for record in parse_cost_lines(result.stdout)]
            sections.append(result.stdout.strip() + f"\n\n_{script.name} ran in {elapsed:.0f} s._")
        else:
            failures += 1
            tail = "\n".join((result.stdout.strip() + "\n" + result.stderr.strip()).splitlines()[-25:])
            sections.append(f"## {script.name}: FAILED (exit {result.returncode})\n\n```\n{tail}\n```")
        print(f"  {script.name}: exit {result.returncode} in {elapsed:.0f} s", file=sys.stderr, flush=True)
    header = (
        "# TripSage Automation: benchmark results\n\n"
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- Machine: {machine()}\n"
        f"- Mode: {'full (issue-sized)' if args.full else 'small (default; `--full` for issue-sized runs)'}\n"
        f"- {ANCHORS}\n\n"
        "Every figure below comes from this run; each baseline was measured in the same run on the same machine.\n"
        "Timings on a shared 2-core machine vary from run to run.\n"
    )
    RESULTS.write_text(header + "\n" + cost_table(costs) + "\n\n".join(sections) + "\n")
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
