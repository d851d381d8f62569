from typing import Any

from django.urls import path

from .consumers import WidgetConsumer

websocket_urlpatterns: list[Any] = [
    # Public: Origin-checked at the handshake, then a visitor token in `hello`.
    path("ws/widget/<str:public_key>", WidgetConsumer.as_asgi()),
]
