"""Serve Parley with uvicorn after checking that the configured services answer."""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from chatbot.core.health import startup_problems

WS_MAX_FRAME_BYTES = 1024 * 1024


class Command(BaseCommand):
    help = "Check the configured services, then serve the ASGI app with uvicorn."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--reload", action="store_true")
        parser.add_argument(
            "--demo-port",
            type=int,
            default=0,
            help="also serve the demo host page (a web site on another origin that embeds the "
            "demo bot with its snippet) on this port; `make run` uses PORT+1",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = startup_problems()
        if problems:
            for line in problems:
                self.stderr.write(f"parley: cannot start: {line}")
            sys.exit(2)

        if options["demo_port"]:
            demo = serve_demo_host(options["host"], options["demo_port"])
            if demo is not None:
                demo_url, _ = demo
                # Read by the platform's /demo redirect (inherited by uvicorn's workers).
                os.environ["PARLEY_DEMO_URL"] = demo_url
                self.stdout.write(f"parley: demo host page on {demo_url}")
            else:
                self.stderr.write("parley: no demo bot (run `manage.py seed_demo`); no demo page")

        import uvicorn

        self.stdout.write(
            f"parley: serving on http://{options['host']}:{options['port']} "
            f"(database: {'PostgreSQL' if settings.DB_IS_POSTGRES else 'SQLite'}, "
            f"redis: {'yes' if settings.REDIS_URL else 'no, in-memory layer'})"
        )
        # No broker, so no `celery beat`: this process keeps the schedule (retention purges,
        # the stale-reply sweep, knowledge re-syncs). With --workers or --reload it runs in
        # the supervising process; the tasks' work is in the database either way.
        running_periodic = None
        if settings.PERIODIC_TASKS_IN_PROCESS:
            from chatbot.core import periodic

            running_periodic = periodic.start()
            self.stdout.write(
                "parley: periodic tasks run in-process (no REDIS_URL, so no celery beat): "
                f"{', '.join(settings.CELERY_BEAT_SCHEDULE)}; timetable in "
                f"{periodic.state_file()}"
            )
        try:
            uvicorn.run(
                "chatbot.asgi:application",
                host=options["host"],
                port=options["port"],
                workers=options["workers"],
                reload=options["reload"],
                # The lifespan tells the periodic tasks which event loop serves (see
                # chatbot/core/periodic.py).
                lifespan="on",
                log_config=None,  # Django's LOGGING already formats every line
                # Client address and scheme from X-Forwarded-For/-Proto, for HTTP and
                # WebSocket alike, only when the peer is one of these (not uvicorn's
                # FORWARDED_ALLOW_IPS: one setting, validated, in settings.py).
                proxy_headers=True,
                forwarded_allow_ips=settings.TRUSTED_PROXIES,
                # Deltas are a few dozen bytes: compressing each frame cost more CPU (4% of
                # a busy process, bench/relay_e2e) than it saved.
                ws_per_message_deflate=False,
                # A frame larger than this is refused by the server (close 1009) as soon as
                # its header is read, never buffered: uvicorn's default (16 MiB) let every
                # socket hold that much. Parley's frames are at most 64 KiB (the widget
                # answers 4009 above that), so 1 MiB leaves room and bounds memory.
                ws_max_size=WS_MAX_FRAME_BYTES,
            )
        finally:
            if running_periodic is not None:
                running_periodic.stop()


def render_demo_host() -> str | None:
    """The demo host page for the demo tenant's bot, with exactly the snippet the bot's page
    shows tenants; None when the demo has not been seeded."""
    from django.template.loader import render_to_string

    from chatbot.bots.models import Bot
    from chatbot.bots.snippets import embed_snippet
    from chatbot.core.management.commands.seed_demo import DEMO_SLUG

    bot = Bot.objects.filter(tenant__slug=DEMO_SLUG).order_by("pk").first()
    if bot is None:
        return None
    return render_to_string(
        "widget/demo_host.html",
        {
            "snippet": embed_snippet(bot),
            "company": bot.tenant.name,
            "bot_name": bot.name,
            "platform": settings.SITE_URL,
        },
    )


DEMO_ORDERS = {
    "D-1001": ("Shipped", "Tuesday", "Trail running shoes"),
    "D-1002": ("Being packed", "Friday", "Rain jacket"),
}


def demo_order(order_id: str) -> dict[str, Any] | None:
    """A demo order with a card for the widget (chatbot/tools/cards.py), or None."""
    order = DEMO_ORDERS.get(order_id.strip().upper())
    if order is None:
        return None
    status, delivery, item = order
    return {
        "order": order_id.upper(),
        "status": status,
        "delivery": delivery,
        "card": {
            "title": f"Order {order_id.upper()}",
            "fields": [
                {"label": "Item", "value": item},
                {"label": "Status", "value": status},
                {"label": "Delivery", "value": delivery},
            ],
            "replies": ["Talk to a person"],
        },
    }


def serve_demo_host(host: str, port: int) -> tuple[str, ThreadingHTTPServer] | None:
    """Serve the demo host page from a tiny threaded HTTP server (a daemon thread), so that
    the widget runs on an origin other than the platform's, as on a customer's site."""
    page = render_demo_host()
    if page is None:
        return None
    body = page.encode()

    class DemoHost(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/favicon.ico":
                self.send_response(204)  # no icon, and no 404 in the browser's console
                self.end_headers()
                return
            if self.path.startswith("/api/orders/"):
                self._order(self.path.removeprefix("/api/orders/").split("?")[0])
                return
            if self.path.split("?")[0] not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _order(self, order_id: str) -> None:
            """The demo's order endpoint, called by the demo bot's find_order action."""
            found = demo_order(unquote(order_id))
            data = json.dumps(found or {"error": f"no order {unquote(order_id)[:20]!r}"})
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data.encode())))
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the platform's own log is the one that matters

    server = ThreadingHTTPServer((host, port), DemoHost)
    threading.Thread(target=server.serve_forever, name="demo-host", daemon=True).start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (display only)
    return f"http://{shown}:{port}/", server
