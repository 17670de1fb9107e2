"""`tripsage jobs ...`: list, history, run, pause, resume; on native pg_cron and on the emulation alike."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tripsage import cron, queries_for
from tripsage.cli_support import emit, with_db
from tripsage.config import load_settings
from tripsage.db.connector import Database
from tripsage.db.cron_timezone import schedule_timezone
from tripsage.scheduler.component import jobs_vault_key, run_now

Q = queries_for("tripsage.scheduler")
app = typer.Typer(help="Scheduled jobs (pg_cron, native or emulated).", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NameArgument = Annotated[str, typer.Argument(help="The job's name (cron.job.jobname).")]


async def _job(db: Database, name: str) -> dict[str, Any]:
    row = await db.fetch_one(Q["job_by_name"], {"name": name})
    if row is None:
        raise LookupError(f"unknown job: {name} (see `tripsage jobs list`)")
    return row


@app.command("list")
def list_jobs(as_json: JsonOption = False) -> None:
    """Every scheduled job with its last run and its next run."""
    settings = load_settings()

    async def work(db: Database) -> tuple[str, list[dict[str, Any]]]:
        return await schedule_timezone(settings, db), await db.fetch_all(Q["list_jobs"])

    timezone, rows = with_db(work)
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        row["next_run"] = cron.next_run(row["schedule"], now, timezone) if row["active"] else None
    emit(
        rows,
        as_json,
        ["jobid", "jobname", "schedule", "active", "last_status", "last_start", "next_run"],
        f"Scheduled jobs (times UTC, schedules in {timezone})",
    )


@app.command()
def history(
    name: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Recent runs, newest first."""

    async def work(db: Database) -> list[dict[str, Any]]:
        if name is not None:
            await _job(db, name)
        return await db.fetch_all(Q["history"], {"name": name, "limit": limit})

    rows = with_db(work)
    emit(rows, as_json, ["job_name", "runid", "status", "start_time", "duration_s", "return_message"], "Job runs")


@app.command()
def run(name: NameArgument, as_json: JsonOption = False) -> None:
    """Run a job now, recorded in cron.job_run_details like a scheduled run; exit 1 if it fails."""
    settings = load_settings()
    key = jobs_vault_key(settings)
    result = with_db(lambda db: run_now(db, db.url, name, settings.cron_statement_timeout_s, key))
    if as_json:
        print(json.dumps(result))
    else:
        colour = "green" if result["status"] == "succeeded" else "red"
        message = escape(str(result["message"]).rstrip())  # pg_cron's return_message ends an error with a newline
        console.print(f"{name}: run {result['runid']} [{colour}]{result['status']}[/]: {message}")
    if result["status"] != "succeeded":
        raise typer.Exit(1)


def _set_active(name: str, active: bool) -> None:
    async def work(db: Database) -> None:
        job = await _job(db, name)
        await db.fetch_all(Q["set_active"], {"jobid": job["jobid"], "active": active})

    with_db(work)
    console.print(f"{name}: {'resumed' if active else 'paused'}")


@app.command()
def pause(name: NameArgument) -> None:
    """Stop scheduling a job (cron.alter_job active := false); its history stays."""
    _set_active(name, False)


@app.command()
def resume(name: NameArgument) -> None:
    """Schedule a paused job again, from now on."""
    _set_active(name, True)
