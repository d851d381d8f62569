"""Fixtures for knowledge tests: bots at Acme and Bravo, eager Celery, a website on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chatbot.bots.models import Bot
from chatbot.tenants.models import Tenant


@pytest.fixture
def acme_bot(acme: Tenant) -> Bot:
    return Bot.objects.create(tenant=acme, name="Acme helper")


@pytest.fixture
def bravo_bot(bravo: Tenant) -> Bot:
    return Bot.objects.create(tenant=bravo, name="Bravo helper")


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _eager_celery() -> Iterator[None]:
    """Run knowledge tasks in the test's process, in both suite runs.

    With REDIS_URL set the project sends tasks to the broker; these tests need the result now.
    """
    from chatbot.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def run_on_commit(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Callable[..., Any]:
    """`with run_on_commit(): action(...)` runs the queued sync when the block ends."""

    def run() -> Any:
        return django_capture_on_commit_callbacks(execute=True)

    return run


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WebSite:
    """A real HTTP server on 127.0.0.1 whose pages a test sets; it records every request."""

    url: str
    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def page(self, path: str, html: str, **kwargs: Any) -> None:
        self.routes[path] = Route(body=html.encode(), **kwargs)

    def raw(self, path: str, body: bytes, content_type: str, status: int = 200) -> None:
        self.routes[path] = Route(status=status, body=body, content_type=content_type)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = Route(status=status, headers={"Location": location})

    def hits(self, path: str) -> int:
        return self.requests.count(path)


def _handler(site: WebSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append(self.path)
            route = site.routes.get(self.path)
            if route is None:
                route = Route(status=404, body=b"not found", content_type="text/plain")
            self.send_response(route.status)
            if route.body or route.status != 302:
                self.send_header("Content-Type", route.content_type)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def website() -> Iterator[WebSite]:
    site = WebSite(url="", port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    site.port = int(server.server_address[1])
    site.url = f"http://127.0.0.1:{site.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()
