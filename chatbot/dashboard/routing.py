from typing import Any

from channels.auth import AuthMiddlewareStack
from django.urls import path

from chatbot.conversations.consumers import InboxConsumer

websocket_urlpatterns: list[Any] = [
    # Members only (session cookie), from the platform's own pages (Origin checked).
    path("ws/dashboard/", AuthMiddlewareStack(InboxConsumer.as_asgi())),
]
