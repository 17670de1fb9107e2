"""`tripsage webhooks ...`: list, add, test, stats, logs, dead, replay, enable, disable, rotate."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from tripsage import queries_for, ssrf, standard_webhooks
from tripsage.cli_support import emit, fail, plain, with_db
from tripsage.config import load_settings
from tripsage.db import vault
from tripsage.db.connector import Database, Jsonb
from tripsage.db.vault import keyring
from tripsage.webhooks import outbox

Q = queries_for("tripsage.webhooks")
app = typer.Typer(help="Webhook endpoints, deliveries and dead letters.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")
SECRET_ENV = "TRIPSAGE_WEBHOOK_SECRET"  # where `add` takes a given signing secret from (or standard input, or a prompt)
WAIT_POLL = 0.2  # seconds between looks at a test delivery

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("list")
def list_configs(as_json: JsonOption = False) -> None:
    """Every endpoint: name, URL, event patterns, state."""
    rows = with_db(lambda db: db.fetch_all(Q["list_configs"]))
    emit(rows, as_json, ["name", "url", "events", "is_active", "disabled_reason", "has_secret"], "Webhooks")


HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters (tab is allowed)


def _headers(pairs: list[str]) -> dict[str, str]:
    """K=V pairs as headers; a name that is not a token or a value with CR, LF or another control character is
    refused here (stored, it would fail every later delivery)."""
    headers = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise fail(f"--header expects K=V, got {pair!r}")
        if not HEADER_NAME.fullmatch(key):
            raise fail(f"--header {key!r}: a header name is a token (letters, digits and !#$%&'*+.^_`|~-)")
        if HEADER_VALUE_FORBIDDEN.search(value):
            raise fail(f"--header {key}: the value may not contain CR, LF or other control characters")
        headers[key] = value.strip()
    return headers


def _given_secret(from_stdin: bool, ask: bool) -> str | None:
    """The secret from standard input, a hidden prompt, or TRIPSAGE_WEBHOOK_SECRET: never from the arguments (they
    show in `ps` and in the shell's history). None: generate one."""
    if from_stdin and ask:
        raise fail("give --secret-stdin or --ask-secret, not both")
    if from_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise fail("--secret-stdin: standard input has no secret")
        return value
    if ask:
        if not sys.stdin.isatty():
            raise fail(f"--ask-secret needs a terminal; pipe the secret to --secret-stdin or set {SECRET_ENV}")
        value = str(typer.prompt("signing secret (whsec_...)", hide_input=True)).strip()
        return value or None
    return os.environ.get(SECRET_ENV, "").strip() or None


@app.command()
def add(
    name: str,
    url: str,
    events: Annotated[
        list[str] | None, typer.Option("--events", help="Event patterns (repeatable, or comma-separated).")
    ] = None,
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the whsec_ secret from standard input.")
    ] = False,
    ask_secret: Annotated[bool, typer.Option("--ask-secret", help="Prompt for the whsec_ secret (hidden).")] = False,
    header: Annotated[list[str] | None, typer.Option("--header", help="Extra header K=V (repeatable).")] = None,
    timeout_ms: Annotated[int, typer.Option(help="Request timeout in ms.")] = 15000,
) -> None:
    """Add an endpoint. The URL passes the SSRF guard. The signing secret comes from --secret-stdin, --ask-secret or
    TRIPSAGE_WEBHOOK_SECRET; without one it is generated and printed once."""
    settings = load_settings()
    extra = _headers(header or [])
    patterns = [p.strip() for value in events or [] for p in value.split(",") if p.strip()] or ["*"]
    secret = _given_secret(secret_stdin, ask_secret)
    try:
        asyncio.run(ssrf.check_resolved(url, ssrf.AllowList.parse(settings.webhook_allow_hosts)))
        active = secret or standard_webhooks.generate_secret()
        standard_webhooks.secret_key(active)
    except ValueError as error:
        raise fail(str(error)) from None
    keys = keyring(settings)

    async def work(db: Database) -> Any:
        return await db.fetch_value(
            Q["add_config"],
            {
                "name": name,
                "url": url,
                "secret": vault.encrypt_webhook_secrets(keys, [active]),
                "events": patterns,
                "headers": Jsonb(extra),
                "timeout_ms": timeout_ms,
            },
        )

    config_id = with_db(work)
    console.print(f"added webhook [cyan]{name}[/] (id {config_id})", highlight=False)
    if secret is None:
        console.print("signing secret (shown once):", highlight=False)
        print(active)


@app.command()
def test(
    name: str,
    payload: Annotated[str, typer.Option(help="JSON payload.")] = '{"test": true}',
    wait: Annotated[float, typer.Option(help="Seconds to wait for the runtime to deliver it (0: do not).")] = 0,
) -> None:
    """Queue a `test.webhook` event for one endpoint (the runtime delivers it)."""
    try:
        data = json.loads(payload)
    except ValueError as error:
        raise fail(f"--payload is not JSON: {error}") from None

    async def work(db: Database) -> dict[str, Any]:
        delivery_id = await db.fetch_value(Q["test_webhook"], {"name": name, "payload": Jsonb(data)})
        status = await db.fetch_one(Q["delivery_status"], {"id": delivery_id})
        deadline = asyncio.get_running_loop().time() + wait
        while status and status["status"] not in ("succeeded", "dead") and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(WAIT_POLL)
            status = await db.fetch_one(Q["delivery_status"], {"id": delivery_id})
        return status or {"id": delivery_id}

    status = with_db(work)
    print(json.dumps(status, default=plain))


@app.command()
def stats(
    name: Annotated[str | None, typer.Argument()] = None,
    days: Annotated[int, typer.Option(help="Window in days.")] = 7,
    as_json: JsonOption = False,
) -> None:
    """Totals, success rate and latency per endpoint (get_webhook_stats)."""
    rows = with_db(lambda db: db.fetch_all(Q["webhook_stats"], {"name": name, "days": days}))
    columns = ["config_name", "total", "succeeded", "failed", "pending", "dead", "success_rate", "p95_latency_ms"]
    emit(rows, as_json, columns, f"Webhook stats ({days} d)")


@app.command()
def logs(
    name: Annotated[str | None, typer.Argument()] = None,
    limit: Annotated[int, typer.Option(help="Rows.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The latest delivery attempts."""
    rows = with_db(lambda db: db.fetch_all(Q["recent_logs"], {"name": name, "limit": limit}))
    columns = ["id", "config_name", "delivery_id", "event_type", "attempt_count", "response_status", "duration_ms"]
    emit(rows, as_json, [*columns, "error_message"], "Webhook attempts")


@app.command()
def dead(limit: Annotated[int, typer.Option(help="Rows.")] = 50, as_json: JsonOption = False) -> None:
    """Dead letters: deliveries that used up their attempts."""
    rows = with_db(lambda db: outbox.list_dead_letters(db, limit))
    emit(rows, as_json, ["id", "config_name", "event_type", "attempts", "last_error", "created_at"], "Dead letters")


@app.command()
def replay(
    delivery_id: Annotated[int | None, typer.Argument(help="One delivery to send again.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery.")] = False,
    config: Annotated[str | None, typer.Option(help="With --all-dead: only this endpoint's.")] = None,
) -> None:
    """Queue a delivery again (same webhook-id), or every dead one."""
    if (delivery_id is None) == (not all_dead):
        raise fail("give a delivery id or --all-dead")
    if delivery_id is not None:
        count = with_db(lambda db: outbox.replay_delivery(db, delivery_id))
        if not count:
            raise fail(f"delivery {delivery_id} is not dead or finished (or does not exist)")
    else:
        count = with_db(lambda db: outbox.replay_dead(db, config))
    console.print(f"replayed {count} deliver{'y' if count == 1 else 'ies'}", highlight=False)


def _set_active(name: str, active: bool, reason: str | None) -> None:
    found = with_db(lambda db: db.fetch_one(Q["set_active"], {"name": name, "active": active, "reason": reason}))
    if found is None:
        raise fail(f'unknown webhook config "{name}"')
    console.print(f"{'enabled' if active else 'disabled'} [cyan]{name}[/]", highlight=False)


@app.command()
def enable(name: str) -> None:
    """Activate an endpoint (and clear its failure state); its pending deliveries resume."""
    _set_active(name, True, None)


@app.command()
def disable(name: str, reason: Annotated[str, typer.Option(help="Why.")] = "disabled by an operator") -> None:
    """Deactivate an endpoint; new events are not queued for it."""
    _set_active(name, False, reason)


@app.command()
def rotate(name: str, replace: Annotated[bool, typer.Option(help="Drop the previous secrets.")] = False) -> None:
    """Add a new signing secret in front of the current ones (both sign until you rotate with --replace)."""
    keys = keyring(load_settings())
    new = with_db(lambda db: vault.rotate_webhook_secret(db, keys, name, keep_previous=not replace))
    console.print("new signing secret (shown once):", highlight=False)
    print(new)
