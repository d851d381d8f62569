"""The route inventory: every HTTP and WebSocket route is either on the explicit public list
(chatbot/core/public_routes.py) or refuses an anonymous request. A new route on neither
fails here."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse

from chatbot.core.public_routes import (
    PUBLIC_URL_NAMES,
    PUBLIC_URL_PREFIXES,
    PUBLIC_WEBSOCKET_PATHS,
)
from tests.routes import Route, iter_routes


def private_routes() -> list[Route]:
    return [
        route
        for route in iter_routes()
        if route.name not in PUBLIC_URL_NAMES and not route.route.startswith(PUBLIC_URL_PREFIXES)
    ]


def _refused(response: Any) -> bool:
    if response.status_code in (401, 403):
        return True
    if response.status_code in (301, 302, 303):
        return response["Location"].startswith(reverse("account_login"))
    return False


def test_every_route_has_a_name() -> None:
    unnamed = [r.route for r in iter_routes() if not r.name and not r.route.startswith("admin/")]
    assert not unnamed, f"Give these routes a name so the public list can refer to them: {unnamed}"


def test_the_public_list_names_only_real_routes() -> None:
    names = {route.name for route in iter_routes()}
    stale = sorted(PUBLIC_URL_NAMES - names)
    assert not stale, f"chatbot/core/public_routes.py lists routes that do not exist: {stale}"


@pytest.mark.django_db
@pytest.mark.parametrize("route", private_routes(), ids=lambda route: route.name or route.route)
def test_a_private_route_refuses_anonymous_requests(route: Route) -> None:
    url = route.sample_url()
    client = Client()
    answers = {"GET": client.get(url), "POST": client.post(url, {})}
    if all(r.status_code == 405 for r in answers.values()):  # e.g. an API DELETE/PATCH route
        answers |= {"DELETE": client.delete(url), "PATCH": client.patch(url, {})}
    statuses = {method: response.status_code for method, response in answers.items()}
    allowed = {method: r for method, r in answers.items() if r.status_code != 405}
    assert allowed, f"{url} answers 405 to both GET and POST; the inventory cannot check it"
    for method, response in allowed.items():
        assert _refused(response), (
            f"{route.name} ({url}) answered {method} from an anonymous visitor with "
            f"{response.status_code}. Either require a log-in (chatbot/tenants/permissions.py, "
            "or an API key) or add its name to chatbot/core/public_routes.py on purpose. "
            f"Statuses: {statuses}"
        )


def _websocket_routes(patterns: list[Any] | None = None) -> list[tuple[str, Any]]:
    if patterns is None:
        from chatbot.routing import websocket_urlpatterns as patterns
    found: list[tuple[str, Any]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for entry in patterns:
            inner = getattr(entry, "url_patterns", None) or getattr(
                getattr(entry, "callback", None), "routes", None
            )
            route = prefix + str(entry.pattern)
            if inner and not hasattr(entry, "callback"):
                walk(inner, route)
            else:
                found.append((route, entry))

    walk(list(patterns), "")
    return found


def _sample_ws_path(route: str) -> str:
    import re

    path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) == "int" else "x1", route)
    path = path.lstrip("^").rstrip("$")
    return "/" + path.lstrip("/")


def test_the_public_websocket_list_names_only_real_routes() -> None:
    routes = {route for route, _entry in _websocket_routes()}
    stale = sorted(PUBLIC_WEBSOCKET_PATHS - routes)
    assert not stale, f"PUBLIC_WEBSOCKET_PATHS lists routes that do not exist: {stale}"


@pytest.mark.django_db(transaction=True)
def test_every_private_websocket_route_refuses_an_anonymous_connection() -> None:
    from tests.asyncrun import run

    assert run(_anonymous_websocket_acceptances()) == []


async def _anonymous_websocket_acceptances() -> list[str]:
    from chatbot.asgi import application

    private = [
        route for route, _entry in _websocket_routes() if route not in PUBLIC_WEBSOCKET_PATHS
    ]
    accepted: list[str] = []
    for route in private:
        # channels.testing imports daphne, which Parley does not use: speak ASGI directly.
        path = _sample_ws_path(route)
        scope = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1"), (b"origin", settings.SITE_URL.encode())],
            "subprotocols": [],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "websocket.connect"})
        answer = await communicator.receive_output(timeout=5)
        if answer["type"] == "websocket.accept":
            accepted.append(route)
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        with contextlib.suppress(TimeoutError):
            await communicator.wait(timeout=5)
        if answer["type"] == "websocket.accept":
            print(
                f"{route} accepts an anonymous connection: authenticate it, or add it to "
                "PUBLIC_WEBSOCKET_PATHS on purpose."
            )
    return accepted
