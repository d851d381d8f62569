"""ASGI entry point: HTTP through Django, WebSockets through channels' routing."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

from django.core.exceptions import ImproperlyConfigured

try:
    from django.core.asgi import get_asgi_application

    django_asgi_app = get_asgi_application()
except ImproperlyConfigured as exc:
    print(f"parley: configuration error: {exc}", file=sys.stderr)
    sys.exit(2)

from channels.routing import ProtocolTypeRouter, URLRouter

from chatbot.core import periodic
from chatbot.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Each consumer checks Origin itself: the widget against the bot's allowed origins,
        # the dashboard against this site (see chatbot/routing.py).
        "websocket": URLRouter(websocket_urlpatterns),
        # Start-up and shutdown: tells the in-process periodic tasks which loop serves.
        "lifespan": periodic.lifespan,
    }
)
