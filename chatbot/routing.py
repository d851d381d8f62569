"""Every WebSocket route of the platform (the route inventory test reads this list)."""

from __future__ import annotations

from typing import Any

from chatbot.dashboard.routing import websocket_urlpatterns as dashboard_routes
from widget.routing import websocket_urlpatterns as widget_routes

websocket_urlpatterns: list[Any] = [*widget_routes, *dashboard_routes]
