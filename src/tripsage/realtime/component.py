"""The realtime component of the runtime: the Supabase Realtime websocket at /realtime/v1/websocket (and
/socket/websocket, the self-hosted path), served by this process's Gateway."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from tripsage.realtime import auth, protocol
from tripsage.realtime.channels import Connection
from tripsage.realtime.gateway import Gateway
from tripsage.realtime.limits import Limits

if TYPE_CHECKING:
    from tripsage.config import Settings
    from tripsage.runtime import Runtime

PATHS = ("/realtime/v1/websocket", "/socket/websocket")


def limits_from(settings: Settings) -> Limits:
    return Limits(
        connections_per_user=settings.realtime_max_connections_per_user,
        connections_per_ip=settings.realtime_max_connections_per_ip,
    )


class RealtimeComponent:
    name = "realtime"

    def __init__(self, *, limits: Limits | None = None) -> None:
        self.limits = limits
        self.gateway: Gateway | None = None

    def routes(self) -> Sequence[BaseRoute]:
        return [WebSocketRoute(path, self.websocket) for path in PATHS]

    async def start(self, runtime: Runtime) -> None:
        self.gateway = Gateway(
            runtime.database,
            runtime.database_url,
            runtime.settings.jwt_secret,
            limits=self.limits or limits_from(runtime.settings),
            metrics=runtime.metrics,
            private_only=runtime.settings.realtime_private_only,
            clock=runtime.clock,
        )
        await self.gateway.start()

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()

    def health(self) -> dict[str, Any]:
        if self.gateway is None:
            return {"status": "error", "error": "not started"}
        return self.gateway.health()

    async def websocket(self, websocket: WebSocket) -> None:
        gateway = self.gateway
        if gateway is None:
            await websocket.send_denial_response(JSONResponse({"error": "Error connecting to Realtime"}, 500))
            return
        vsn = websocket.query_params.get("vsn") or protocol.V1
        if vsn not in protocol.VERSIONS:
            await websocket.send_denial_response(JSONResponse({"error": f"Unsupported protocol version {vsn}"}, 400))
            return
        token = (
            websocket.headers.get("x-api-key")
            or websocket.headers.get("apikey")
            or websocket.query_params.get("apikey")
        )
        if not token:
            await websocket.send_denial_response(JSONResponse({"error": "API key is missing"}, 401))
            return
        try:
            identity = auth.identify(gateway.secret, token)
        except auth.TokenError as error:
            message = (
                "Token has expired" if error.code == "InvalidJWTToken" else "The token provided is not a valid JWT"
            )
            await websocket.send_denial_response(JSONResponse({"error": message}, 401))
            return
        address = websocket.client.host if websocket.client else None
        refusal = gateway.admit(identity.user_id, address)
        if refusal is not None:
            await websocket.send_denial_response(JSONResponse({"error": refusal}, 429))
            return
        try:
            await websocket.accept()
            connection = Connection(gateway, websocket, identity, vsn)
            gateway.connections.add(connection)
            if gateway.metrics is not None:
                gateway.metrics.realtime_connections.inc()
            try:
                await connection.run()
            finally:
                gateway.connections.discard(connection)
                if gateway.metrics is not None:
                    gateway.metrics.realtime_connections.dec()
        finally:
            gateway.release(identity.user_id, address)
