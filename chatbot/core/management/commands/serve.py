"""Serve Parley with uvicorn after checking that the configured services answer."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from chatbot.core.health import startup_problems


class Command(BaseCommand):
    help = "Check the configured services, then serve the ASGI app with uvicorn."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--reload", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        problems = startup_problems()
        if problems:
            for line in problems:
                self.stderr.write(f"parley: cannot start: {line}")
            sys.exit(2)

        import uvicorn

        self.stdout.write(
            f"parley: serving on http://{options['host']}:{options['port']} "
            f"(database: {'PostgreSQL' if settings.DB_IS_POSTGRES else 'SQLite'}, "
            f"redis: {'yes' if settings.REDIS_URL else 'no, in-memory layer'})"
        )
        uvicorn.run(
            "chatbot.asgi:application",
            host=options["host"],
            port=options["port"],
            workers=options["workers"],
            reload=options["reload"],
            lifespan="off",
            log_config=None,  # Django's LOGGING already formats every line
            proxy_headers=True,
        )
