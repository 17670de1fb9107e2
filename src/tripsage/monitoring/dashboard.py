"""The dashboard at /dashboard: server-rendered HTML, charts drawn by a locally served plotly.min.js (no CDN).

Sign-in takes the project's service_role key. A session is a random cookie (HttpOnly, SameSite=Strict, Secure over
TLS) whose SHA-256 is kept in monitoring.dashboard_sessions, so signing out revokes it on every replica. Every
state-changing request (sign-in, sign-out, replay) must come from the dashboard's own origin, and those of a session
carry its CSRF token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import html
import importlib.util
import json
import secrets
import urllib.parse
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tripsage import jwt, queries_for
from tripsage.monitoring import webhooks_view
from tripsage.monitoring.status import collect_status

Q = queries_for("tripsage.monitoring")
COOKIE = "tripsage_dashboard"
SESSION_LIFETIME = 8 * 3600  # seconds
MAX_FORM_BYTES = 16 * 1024
MAX_TOKEN_CHARS = 100  # a session cookie is 43 characters; anything much longer is not ours
CSRF_FIELD = "csrf_token"
CHART_WINDOW = dt.timedelta(hours=24)  # what every chart's time axis spans


def plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package (for plotly.min.js) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def _template(name: str) -> Template:
    return Template(resources.files("tripsage.monitoring").joinpath(name).read_text(encoding="utf-8"))


def token_hash(token: str) -> bytes:
    """What the database keeps of a session cookie: its SHA-256 (a leaked table does not sign anyone in)."""
    return hashlib.sha256(token.encode()).digest()


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _chart_time(moment: dt.datetime) -> str:
    """A time for plotly (which ignores UTC offsets): naive UTC, as the axes are labelled."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


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

    async def _session(self, request: Request) -> str | None:
        """The CSRF token of the request's live session (not expired, not revoked); None when signed out."""
        token = request.cookies.get(COOKIE)
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        row = await self.runtime.database.fetch_one(Q["dashboard_session"], {"token_hash": token_hash(token)})
        return None if row is None else str(row["csrf_token"])

    def _same_origin(self, request: Request) -> bool:
        """A state-changing request must come from the dashboard's own pages: its Origin (or, without one, the
        browser's Sec-Fetch-Site) says so. A client that sends neither is not a browser acting for another site."""
        origin = request.headers.get("origin")
        if origin is not None:
            allowed = {origin_of(str(request.url))}
            if self.runtime.settings.public_url:
                allowed.add(origin_of(self.runtime.settings.public_url))
            return origin.lower() in allowed
        return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")

    async def _form(self, request: Request) -> dict[str, str]:
        # A plain urlencoded form: parsed here rather than pulling in a multipart parser.
        body = (await request.body())[:MAX_FORM_BYTES].decode("utf-8", "replace")
        return {name: values[0] for name, values in urllib.parse.parse_qs(body).items()}

    async def _checked(self, request: Request) -> tuple[str, dict[str, str]] | Response:
        """For a state-changing request: (the session's CSRF token, the form), or the refusal to answer."""
        if not self._same_origin(request):
            return PlainTextResponse("cross-origin request refused", status_code=403)
        csrf = await self._session(request)
        if csrf is None:
            return RedirectResponse("/dashboard", status_code=303)
        form = await self._form(request)
        if not hmac.compare_digest(form.get(CSRF_FIELD, "").encode(), csrf.encode()):
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        return csrf, form

    def _cookie_options(self, request: Request) -> dict[str, Any]:
        return {
            "path": "/dashboard",
            "httponly": True,
            "samesite": "strict",
            # Served over TLS here, or behind a TLS-terminating proxy at an https public URL.
            "secure": request.url.scheme == "https"
            or (self.runtime.settings.public_url or "").lower().startswith("https://"),
        }

    async def login(self, request: Request) -> Response:
        if not self._same_origin(request):
            return PlainTextResponse("cross-origin request refused", status_code=403)
        key = (await self._form(request)).get("key", "").strip()
        try:
            role = jwt.verify(self.secret, key).get("role")
        except jwt.InvalidToken:
            role = None
        if role != "service_role":
            body = _template("login.html").substitute(error="That is not this project's service_role key.")
            return HTMLResponse(body, status_code=401)
        token = secrets.token_urlsafe(32)
        await self.runtime.database.execute(
            Q["create_dashboard_session"],
            {
                "token_hash": token_hash(token),
                "csrf_token": secrets.token_urlsafe(32),
                "lifetime_s": SESSION_LIFETIME,
            },
        )
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(COOKIE, token, max_age=SESSION_LIFETIME, **self._cookie_options(request))
        return response

    async def logout(self, request: Request) -> Response:
        checked = await self._checked(request)
        if isinstance(checked, Response):
            return checked
        token = request.cookies.get(COOKIE, "")
        await self.runtime.database.execute(Q["revoke_dashboard_session"], {"token_hash": token_hash(token)})
        response = RedirectResponse("/dashboard", status_code=303)
        response.delete_cookie(COOKIE, **self._cookie_options(request))
        return response

    async def plotly(self, request: Request) -> Response:
        return FileResponse(
            plotly_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    async def replay(self, request: Request) -> Response:
        checked = await self._checked(request)
        if isinstance(checked, Response):
            return checked
        await webhooks_view.replay(self.runtime.database, int(request.path_params["delivery_id"]))
        return RedirectResponse("/dashboard#dead-letters", status_code=303)

    async def page(self, request: Request) -> Response:
        csrf = await self._session(request)
        if csrf is None:
            return HTMLResponse(_template("login.html").substitute(error=""))
        csrf_input = f'<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(csrf)}">'
        db = self.runtime.database
        status = await collect_status(db, self.runtime.settings)
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
                f'<form method="post" action="/dashboard/replay/{int(d["id"])}">{csrf_input}'
                f'<button class="replay" data-delivery="{int(d["id"])}" type="submit">Replay</button></form>',
            )
            for d in await webhooks_view.dead_letters(db)
        ]
        runtime_series: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for row in await db.fetch_all(Q["runtime_series"]):
            runtime_series[f"{row['metric_name']} ({row['replica']})"].append(
                (_chart_time(row["created_at"]), float(row["value"]))
            )
        everywhere = await db.fetch_one(Q["realtime_connections_all"]) or {}
        hourly = status["webhook_hourly"]
        health: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for row in status["health_series"]:
            health[row["metric_name"]].append((_chart_time(row["created_at"]), float(row["value"])))
        now = dt.datetime.now(dt.UTC)
        chart_data = {
            # Every time axis spans the charts' window, whatever the data: one point is not a millisecond-wide chart.
            "window": [_chart_time(now - CHART_WINDOW), _chart_time(now)],
            "webhook_success": [
                (_chart_time(h["hour"]), round(100.0 * h["succeeded"] / h["attempts"], 2))
                for h in hourly
                if h["attempts"]
            ],
            "webhook_p50": [(_chart_time(h["hour"]), h["p50_ms"]) for h in hourly if h["p50_ms"] is not None],
            "webhook_p95": [(_chart_time(h["hour"]), h["p95_ms"]) for h in hourly if h["p95_ms"] is not None],
            "health": health,
            "runtime": runtime_series,
        }
        # The summary is counted from the chart's own rows, so the two always agree.
        attempts = sum(int(h["attempts"]) for h in hourly)
        succeeded = sum(int(h["succeeded"]) for h in hourly)
        rate = f"{100.0 * succeeded / attempts:.1f} %" if attempts else "no deliveries"
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
            logout_form=f'<form method="post" action="/dashboard/logout">{csrf_input}'
            '<button id="sign-out" type="submit">Sign out</button></form>',
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
                f"{attempts} attempts, success rate {rate}, outbox depth {status['outbox_depth']}"
            ),
            dead_letters_table=_table(
                ("id", "webhook", "event", "attempts", "last error", ""), dead, "no dead letters"
            ),
            chart_data=json.dumps(chart_data, default=str).replace("</", "<\\/"),
        )
        return HTMLResponse(body)
