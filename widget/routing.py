from typing import Any

from django.urls import re_path

from .consumers import WidgetConsumer

websocket_urlpatterns: list[Any] = [
    re_path(r"^ws/widget/(?P<public_key>pk_[A-Za-z0-9_-]{1,40})$", WidgetConsumer.as_asgi()),
]
