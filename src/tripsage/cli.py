"""The `tripsage` command: deploy, verify, up, serve, keys, secrets, db."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from tripsage import jwt, redact
from tripsage.cli_support import Target, console, errors, fail, open_target, print_error, run
from tripsage.config import Settings, load_settings
from tripsage.db import connector, topology
from tripsage.db.embedded import EmbeddedPostgres
from tripsage.db.migrations import Deployer, Migration
from tripsage.exceptions import ConfigurationError, TripSageError

app = typer.Typer(help="TripSage Automation: the database automation plane for TripSage.", no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets at rest.", no_args_is_help=True)
db_app = typer.Typer(help="The embedded PostgreSQL server.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")
app.add_typer(db_app, name="db")


async def deploy_url(target: Target) -> str:
    """Where migrations go: TRIPSAGE_DB_DIRECT_URL when set (the deploy lock is a session's advisory lock), else the
    database URL, which must then not be a transaction-mode pooler."""
    if target.embedded is not None:
        return target.url
    url = target.settings.db_direct_url or target.url
    if await topology.detect_pooling(url) == "transaction":
        raise ConfigurationError(
            f"{connector.redact(url)} goes through a transaction-mode pooler: deploys hold a session's advisory lock, "
            "so give them the server's direct URL or a session-mode pooler URL (DATABASE_URL or TRIPSAGE_DB_DIRECT_URL)"
        )
    return url


async def deploy_to(target: Target, *, dry_run: bool = False, quiet: bool = False) -> list[Migration]:
    deployer = Deployer(
        await deploy_url(target), target.settings.resolved_migrations_dir, embedding_dim=target.settings.embedding_dim
    )

    def progress(migration: Migration) -> None:
        if not quiet:
            console.print(f"  applying [cyan]{migration.path.name}[/]")

    plan = await deployer.deploy(dry_run=dry_run, progress=progress)
    for version in plan.unknown:
        errors.print(f"[yellow]warning:[/] migration {version} is recorded in the database but has no file here")
    return plan.pending


@app.command()
def deploy(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would run; change nothing.")] = False,
) -> None:
    """Apply pending migrations (supabase/migrations) to the database."""

    async def main() -> None:
        target = open_target(load_settings())
        try:
            began = time.perf_counter()
            pending = await deploy_to(target, dry_run=dry_run)
            elapsed = time.perf_counter() - began
            if dry_run:
                if not pending:
                    console.print("Nothing to apply: the database is up to date.")
                for migration in pending:
                    console.print(f"would apply [cyan]{migration.path.name}[/]")
            elif pending:
                console.print(f"[green]Applied {len(pending)} migration(s)[/] in {elapsed:.2f} s.")
            else:
                console.print("Nothing to apply: the database is up to date.")
        finally:
            target.close()

    run(main())


async def verification(url: str) -> dict[str, Any]:
    from tripsage import queries_for

    q = queries_for("tripsage.db")
    async with connector.Database(url, max_size=1, application_name="tripsage-verify") as db:
        extensions = await db.fetch_all(q["verify_extensions"])
        checks = await db.fetch_all(q["verify_automation_setup"])
        state = await db.fetch_one(q["server_role_state"])
    if state and (state["in_recovery"] or state["default_read_only"]):
        checks.insert(0, {"component": "server", "status": "error", "details": topology.READ_ONLY_ADVICE})
    ok = all(check["status"] != "error" for check in checks)
    return {"ok": ok, "extensions": extensions, "checks": checks}


@app.command()
def verify(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Check extensions, realtime, monitoring, webhooks and jobs; exit 0 only when every required check passes."""

    async def main() -> dict[str, Any]:
        target = open_target(load_settings())
        try:
            return await verification(target.url)
        finally:
            target.close()

    report = run(main())
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        table = Table(title="Extensions")
        for column in ("name", "status", "version", "note"):
            table.add_column(column)
        for ext in report["extensions"]:
            style = {"native": "green", "emulated": "cyan"}.get(ext["status"], "red")
            table.add_row(ext["name"], f"[{style}]{ext['status']}[/]", ext["version"] or "", ext["note"] or "")
        console.print(table)
        checks = Table(title="Automation")
        for column in ("component", "status", "details"):
            checks.add_column(column)
        for check in report["checks"]:
            style = {"ok": "green", "warning": "yellow"}.get(check["status"], "red")
            checks.add_row(check["component"], f"[{style}]{check['status']}[/]", check["details"])
        console.print(checks)
        console.print("[green]All required checks pass.[/]" if report["ok"] else "[red]Some required checks fail.[/]")
    raise typer.Exit(0 if report["ok"] else 1)


GC_THRESHOLD = (10_000, 10, 10)  # new objects between young collections (Python's default: 700), then as default


def serve_runtime(
    settings: Settings,
    url: str,
    host: str,
    port: int,
    *,
    banner: str | None = None,
    direct_url: str | None = None,
) -> None:
    import uvicorn

    from tripsage.server import build_app, build_runtime
    from tripsage.serving import server_config

    # A transaction-mode pooler where a session is needed, or too few free connections: one clear line now, not
    # errors in a loop later.
    plan = run(
        topology.plan_connections(url, direct_url, pool_max_size=settings.pool_max_size, db_role=settings.db_role)
    )
    runtime = build_runtime(
        settings, plan.session_url, pool_url=plan.pool_url, pool_prepared_statements=plan.pool_prepared_statements
    )
    server = uvicorn.Server(server_config(build_app(runtime), settings, host, port))
    # The cyclic garbage collector took a quarter of the process's CPU under load (webhook deliveries, py-spy and
    # gc.callbacks): every 700 new objects a young collection, and full ones walking everything startup built. Fewer
    # young collections, and what startup built is frozen out of every collection (see docs/performance.md).
    gc.set_threshold(*GC_THRESHOLD)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            gc.freeze()  # the app, the components and their pools live as long as the process
        if server.started and banner:
            console.print(banner, highlight=False, soft_wrap=True)
        await task

    run(main())
    if not server.started:
        raise typer.Exit(1)


def keys_text(settings: Settings) -> str:
    return (
        f"anon key: {jwt.api_key(settings.jwt_secret, 'anon')}\n"
        f"service_role key: {jwt.api_key(settings.jwt_secret, 'service_role')}"
    )


@app.command()
def up(
    port: Annotated[int | None, typer.Option(help="HTTP port of the runtime (default 54321).")] = None,
    db_port: Annotated[int | None, typer.Option(help="Also listen on this TCP port (embedded server).")] = None,
) -> None:
    """Start everything: the embedded server (or the configured one), deploy, then the runtime."""
    settings = load_settings()
    http_port = port or settings.port
    try:
        target = open_target(settings, db_port=db_port)
    except TripSageError as error:
        raise fail(error) from None
    # SIGTERM stops the runtime the same way Ctrl-C does (uvicorn handles both), then the embedded server below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        run(deploy_to(target, quiet=True))
        api = f"{'https' if settings.serves_tls else 'http'}://{settings.host}:{http_port}"
        db_url = (target.embedded.tcp_url() or target.url) if target.embedded else connector.redact(target.url)
        banner = (
            f"[bold green]TripSage is up.[/]\n"
            f"API URL: {api}\nHealth: {api}/health\nDB URL: {db_url}\n{keys_text(settings)}"
        )
        # The seed webhooks trip_events/ai_processing point at this runtime's own functions.
        settings = settings.model_copy(update={"port": http_port, "webhook_point_seed": True})
        direct = settings.db_direct_url if target.embedded is None else None
        serve_runtime(settings, target.url, settings.host, http_port, banner=banner, direct_url=direct)
    except KeyboardInterrupt:
        pass
    finally:
        target.close()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 54321).")] = None,
) -> None:
    """Run the runtime alone against the configured database (SUPABASE_DB_URL or DATABASE_URL)."""
    settings = load_settings()
    url = settings.external_database_url
    if not url:
        raise fail("set SUPABASE_DB_URL or DATABASE_URL (or use `tripsage up` for the embedded server)")
    serve_runtime(settings, url, host or settings.host, port or settings.port, direct_url=settings.db_direct_url)


@app.command()
def keys() -> None:
    """Print the anon and service_role JWTs, signed with the project secret."""
    print(keys_text(load_settings()))


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every secret at rest under the current TRIPSAGE_ENCRYPTION_KEY."""
    from tripsage.db.vault import rotate_all

    async def main() -> dict[str, int]:
        settings = load_settings()
        target = open_target(settings)
        try:
            return await rotate_all(target.url, settings)
        finally:
            target.close()

    counts = run(main())
    for table, count in counts.items():
        console.print(f"{table}: {count} re-encrypted")


# -- Vault (docs/vault.md) --------------------------------------------------------------------------------------
vault_app = typer.Typer(help="Supabase Vault: its key stays outside the database.", no_args_is_help=True)
app.add_typer(vault_app, name="vault")


@vault_app.command("session-options")
def vault_session_options() -> None:
    """Print libpq options that give a session the Vault key: PGOPTIONS="$(tripsage vault session-options)" psql."""
    from tripsage.db import supabase_vault
    from tripsage.db.vault import keyring

    print(supabase_vault.session_options(supabase_vault.session_key(keyring(load_settings()))))


@db_app.command("start")
def db_start(port: Annotated[int | None, typer.Option(help="Also listen on this TCP port.")] = None) -> None:
    """Start the embedded server and leave it running; print its URL."""
    settings = load_settings()
    try:
        server = EmbeddedPostgres(settings.resolved_data_dir, port=port or settings.db_port)
        url = server.start()
        print(server.tcp_url() or url)
    except TripSageError as error:
        raise fail(error) from None


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    settings = load_settings()
    EmbeddedPostgres(settings.resolved_data_dir).stop()


@db_app.command("url")
def db_url() -> None:
    """Print the URL of the database TripSage uses."""
    settings = load_settings()
    print(settings.external_database_url or EmbeddedPostgres(settings.resolved_data_dir).url())


def _register_capabilities() -> None:
    from tripsage.monitoring.cli import status

    app.command()(status)
    from tripsage.webhooks.cli import app as webhooks_app

    app.add_typer(webhooks_app, name="webhooks")
    from tripsage.scheduler.cli import app as jobs_app

    app.add_typer(jobs_app, name="jobs")
    from tripsage.functions.cli import app as functions_app

    app.add_typer(functions_app, name="functions")
    from tripsage.realtime.cli import app as realtime_app

    app.add_typer(realtime_app, name="realtime")


_register_capabilities()


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=os.environ.get("TRIPSAGE_LOG_LEVEL", "INFO").upper(), stream=sys.stderr)
    redact.install()  # no token, key or secret in any log line
    try:
        app()
    except ConfigurationError as error:  # a bad setting: one line, whichever command read the settings
        print_error(error)
        sys.exit(1)
