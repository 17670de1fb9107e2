"""`tripsage status`: a one-screen summary of the automation plane (or --json)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from tripsage.cli_support import plain, with_db
from tripsage.config import load_settings
from tripsage.db.connector import Database

console = Console()


def render(status: dict[str, Any]) -> Group:
    success = Table(title="Success metrics (24 h)", expand=True)
    for column in ("metric", "value", "goal", "status"):
        success.add_column(column)
    for m in status["success_metrics"]:
        verdict = "[muted]no data[/]" if m["ok"] is None else ("[green]met[/]" if m["ok"] else "[red]missed[/]")
        value = "-" if m["value"] is None else f"{m['value']} {m['unit']}"
        success.add_row(m["metric"], value, f"{m['goal']} {m['unit']}", verdict.replace("[muted]", "[dim]"))
    jobs = Table(title="Scheduled jobs", expand=True)
    for column in ("job", "schedule", "active", "next run", "last status", "last start", "failed 24 h"):
        jobs.add_column(column)
    for j in status["jobs"]:
        last = j["last_status"] or "-"
        style = "green" if last == "succeeded" else ("red" if last == "failed" else "yellow")
        started = j["last_start"].strftime("%Y-%m-%d %H:%M:%S") if j["last_start"] else "-"
        jobs.add_row(
            str(j["jobname"] or j["jobid"]),
            j["schedule"],
            "yes" if j["active"] else "no",
            j["next_run"].strftime("%Y-%m-%d %H:%M:%S") if j.get("next_run") else "-",
            f"[{style}]{last}[/]",
            started,
            str(j["failures_24h"]),
        )
    hooks = status["webhooks"] or {"attempts": 0, "succeeded": 0, "failed": 0}
    rate = f"{100.0 * hooks['succeeded'] / hooks['attempts']:.1f} %" if hooks["attempts"] else "-"
    summary = (
        f"webhook attempts 24 h: {hooks['attempts']}  success rate: {rate}  "
        f"outbox depth: {status['outbox_depth'] if status['outbox_depth'] is not None else '-'}  "
        f"dead letters: {status['dead_letters'] if status['dead_letters'] is not None else '-'}"
    )
    parts: list[Any] = [success, jobs, Panel(summary, title="Webhooks")]
    if "slow_queries" in status:
        slow = Table(title="Slowest statements (pg_stat_statements)", expand=True)
        for column in ("by", "calls", "total ms", "mean ms", "query"):
            slow.add_column(column)
        for q in status["slow_queries"] or []:
            slow.add_row(
                q["ranking"], str(q["calls"]), str(q["total_ms"]), str(q["mean_ms"]), " ".join(q["query"].split())[:90]
            )
        if status["slow_queries"] is None:
            parts.append(Panel("pg_stat_statements is not installed on this server", title="Slow queries"))
        else:
            parts.append(slow)
    return Group(*parts)


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    slow: Annotated[bool, typer.Option("--slow", help="Also list the slowest statements.")] = False,
) -> None:
    """A one-screen summary: success metrics, jobs, webhooks (and --slow queries)."""
    from tripsage.monitoring.status import collect_status

    settings = load_settings()

    async def collect(db: Database) -> dict[str, Any]:
        return await collect_status(db, settings, slow=slow)

    report = with_db(collect, max_size=1, application_name="tripsage-status")
    report.pop("health_series", None)
    if as_json:
        print(json.dumps(report, default=plain, indent=2))
    else:
        console.print(render(report))
