"""The dashboard at /dashboard: server-rendered HTML, charts drawn by a locally served plotly.min.js (no CDN).

Sign-in takes the project's service_role key; the session is an HMAC-signed, HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import importlib.util
import json
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tripsage import jwt, queries_for
from tripsage.monitoring import webhooks_view
from tripsage.monitoring.status import collect_status

Q = queries_for("tripsage.monitoring")
COOKIE = "tripsage_dashboard"
SESSION_LIFETIME = 8 * 3600  # seconds
MAX_FORM_BYTES = 16 * 1024


def plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package (for plotly.min.js) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def _template(name: str) -> Template:
    return Template(resources.files("tripsage.monitoring").joinpath(name).read_text(encoding="utf-8"))


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), b"dashboard:" + payload.encode(), hashlib.sha256).hexdigest()


def make_session(secret: str, now: float | None = None) -> str:
    expires = str(int((now or time.time()) + SESSION_LIFETIME))
    return base64.urlsafe_b64encode(f"{expires}.{_sign(secret, expires)}".encode()).decode()


def valid_session(secret: str, cookie: str | None) -> bool:
    if not cookie:
        return False
    try:
        expires, signature = base64.urlsafe_b64decode(cookie.encode()).decode().split(".", 1)
        return hmac.compare_digest(signature, _sign(secret, expires)) and int(expires) > time.time()
    except (ValueError, UnicodeDecodeError):
        return False


def _cell(value: Any) -> str:
    if value is None:
        return '<span class="muted">-</span>'
    if isinstance(value, dt.datetime):
        return html.escape(value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"))
    return html.escape(str(value))


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Dashboard:
    """Routes of the dashboard; `runtime` gives the database, the settings and this process's metrics."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    @property
    def secret(self) -> str:
        return str(self.runtime.settings.jwt_secret)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/dashboard", self.page, methods=["GET"]),
            Route("/dashboard/login", self.login, methods=["POST"]),
            Route("/dashboard/logout", self.logout, methods=["POST"]),
            Route("/dashboard/replay/{delivery_id:int}", self.replay, methods=["POST"]),
            Route("/dashboard/static/plotly.min.js", self.plotly, methods=["GET"]),
        ]

    def _signed_in(self, request: Request) -> bool:
        return valid_session(self.secret, request.cookies.get(COOKIE))

    async def login(self, request: Request) -> Response:
        # A plain urlencoded form: parsed here rather than pulling in a multipart parser.
        form = urllib.parse.parse_qs((await request.body())[:MAX_FORM_BYTES].decode("utf-8", "replace"))
        key = (form.get("key") or [""])[0].strip()
        try:
            role = jwt.verify(self.secret, key).get("role")
        except jwt.InvalidToken:
            role = None
        if role != "service_role":
            body = _template("login.html").substitute(error="That is not this project's service_role key.")
            return HTMLResponse(body, status_code=401)
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(
            COOKIE,
            make_session(self.secret),
            max_age=SESSION_LIFETIME,
            httponly=True,
            samesite="strict",
            path="/dashboard",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/dashboard", status_code=303)
        response.delete_cookie(COOKIE, path="/dashboard")
        return response

    async def plotly(self, request: Request) -> Response:
        return FileResponse(
            plotly_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    async def replay(self, request: Request) -> Response:
        if not self._signed_in(request):
            return RedirectResponse("/dashboard", status_code=303)
        await webhooks_view.replay(self.runtime.database, int(request.path_params["delivery_id"]))
        return RedirectResponse("/dashboard#dead-letters", status_code=303)

    async def page(self, request: Request) -> Response:
        if not self._signed_in(request):
            return HTMLResponse(_template("login.html").substitute(error=""))
        db = self.runtime.database
        status = await collect_status(db, timezone=self.runtime.settings.cron_timezone)
        metrics = self.runtime.metrics
        success_rows = [
            (
                html.escape(m["metric"]),
                _cell(m["value"]),
                f"{_cell(m['goal'])} {html.escape(m['unit'])}",
                '<span class="muted">no data</span>'
                if m["ok"] is None
                else ('<span class="ok">met</span>' if m["ok"] else '<span class="bad">missed</span>'),
            )
            for m in status["success_metrics"]
        ]
        jobs = [
            (
                _cell(j["jobname"]),
                _cell(j["schedule"]),
                _cell(j["active"]),
                _cell(j.get("next_run")),
                _cell(j["last_status"]),
                _cell(j["last_start"]),
                _cell(j["failures_24h"]),
            )
            for j in status["jobs"]
        ]
        history = [
            (_cell(h["jobname"]), _cell(h["status"]), _cell(h["start_time"]), _cell(h["return_message"]))
            for h in status["job_history"]
        ]
        dead = [
            (
                _cell(d["id"]),
                _cell(d["webhook"]),
                _cell(d["event_type"]),
                _cell(d["attempts"]),
                _cell(d["last_error"]),
                f'<form method="post" action="/dashboard/replay/{int(d["id"])}">'
                f'<button class="replay" data-delivery="{int(d["id"])}" type="submit">Replay</button></form>',
            )
            for d in await webhooks_view.dead_letters(db)
        ]
        runtime_series: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for row in await db.fetch_all(Q["runtime_series"]):
            runtime_series[f"{row['metric_name']} ({row['replica']})"].append(
                (row["created_at"].isoformat(), float(row["value"]))
            )
        everywhere = await db.fetch_one(Q["realtime_connections_all"]) or {}
        hourly = status["webhook_hourly"]
        health: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for row in status["health_series"]:
            health[row["metric_name"]].append((row["created_at"].isoformat(), float(row["value"])))
        chart_data = {
            "webhook_success": [
                (h["hour"].isoformat(), round(100.0 * h["succeeded"] / h["attempts"], 2))
                for h in hourly
                if h["attempts"]
            ],
            "webhook_p50": [(h["hour"].isoformat(), h["p50_ms"]) for h in hourly if h["p50_ms"] is not None],
            "webhook_p95": [(h["hour"].isoformat(), h["p95_ms"]) for h in hourly if h["p95_ms"] is not None],
            "health": health,
            "runtime": runtime_series,
        }
        totals = status["webhooks"]
        rate = f"{100.0 * totals['succeeded'] / totals['attempts']:.1f} %" if totals["attempts"] else "no deliveries"
        figures = "".join(
            f'<div class="figure"><b>{int(value)}</b>{html.escape(label)}</div>'
            for label, value in (
                ("connections here", metrics.registry.get_sample_value("tripsage_realtime_connections") or 0),
                ("channels here", metrics.registry.get_sample_value("tripsage_realtime_channels") or 0),
                ("connections, all replicas", everywhere.get("connections") or 0),
                ("replicas reporting", everywhere.get("replicas") or 0),
            )
        )
        body = _template("dashboard.html").substitute(
            generated_at=html.escape(dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
            success_table=_table(("metric", "value", "goal", ""), success_rows, "no metrics"),
            realtime_figures=figures,
            jobs_table=_table(
                ("job", "schedule", "active", "next run", "last status", "last start", "failed 24 h"),
                jobs,
                "no scheduled jobs (pg_cron or its emulation is not installed)",
            ),
            history_table=_table(("job", "status", "started", "message"), history, "no runs yet"),
            webhook_summary=html.escape(
                f"{totals['attempts']} attempts, success rate {rate}, outbox depth {status['outbox_depth']}"
            ),
            dead_letters_table=_table(
                ("id", "webhook", "event", "attempts", "last error", ""), dead, "no dead letters"
            ),
            chart_data=json.dumps(chart_data, default=str).replace("</", "<\\/"),
        )
        return HTMLResponse(body)
