"""A page that drips its bytes cannot hold a knowledge sync past the fetch deadline.

The dripping server is real (a socket on loopback): it sends its headers at once, then one
byte of a readable page every 0.1 s, each well within the client's read timeout, so only
the overall deadline (KNOWLEDGE_FETCH_DEADLINE, set short here) can stop it. Left alone,
the page would arrive whole after 30 s and the sync would succeed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import override_settings

from chatbot.bots.models import Bot
from chatbot.knowledge import actions, tasks
from chatbot.knowledge.models import Source, SourceStatus

pytestmark = pytest.mark.django_db

PAGE = (
    b"<html><head><title>Slow</title></head><body><main><p>"
    + b"Lumen Bikes repairs punctures while you wait. " * 6
    + b"</p></main></body></html>"
)
DRIP_EVERY_SECONDS = 0.1


class DripHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/slow":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        try:
            for n in range(len(PAGE)):
                self.wfile.write(PAGE[n : n + 1])
                self.wfile.flush()
                time.sleep(DRIP_EVERY_SECONDS)
        except OSError:
            pass  # the client gave up: what the test wants

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def dripping_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), DripHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _short_deadline() -> Iterator[None]:
    with override_settings(OUTBOUND_ALLOW_CIDRS=["127.0.0.1/32"], KNOWLEDGE_FETCH_DEADLINE=1):
        yield


def test_a_dripping_page_fails_the_sync_with_a_clear_message(
    acme_bot: Bot, dripping_site: str, run_on_commit: Callable[..., Any]
) -> None:
    url = dripping_site + "/slow"
    with run_on_commit():
        source = actions.add_site(acme_bot, url=url, max_depth=0)
    source.refresh_from_db()
    assert source.status == SourceStatus.FAILED
    assert f"the page at {url} sent too slowly; gave up after 1 s" in source.error


def test_the_celery_task_gives_up_the_same_way(
    acme_bot: Bot, dripping_site: str, run_on_commit: Callable[..., Any]
) -> None:
    url = dripping_site + "/slow"
    with run_on_commit():
        source = actions.add_site(acme_bot, url=url, max_depth=0)
    # Run again as a worker runs it: the task, not the action's eager path.
    assert tasks.sync_source.apply(args=[source.pk]).get() == SourceStatus.FAILED
    source = Source.objects.get(pk=source.pk)
    assert "sent too slowly; gave up after 1 s" in source.error
