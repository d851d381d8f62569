"""Liveness and readiness probes, and the start-up check of configured services."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def check_database() -> str | None:
    """None when the database answers, otherwise a one-line reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    return None


def check_redis(timeout: float = 2.0) -> str | None:
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        client.ping()
        client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    from asgiref.sync import sync_to_async

    db_error, redis_error = await asyncio.gather(
        sync_to_async(check_database, thread_sensitive=True)(),
        sync_to_async(check_redis, thread_sensitive=False)(),
    )
    checks = {"database": db_error or "ok"}
    if settings.REDIS_URL:
        checks["redis"] = redis_error or "ok"
    failing = [name for name, state in checks.items() if state != "ok"]
    body: dict[str, object] = {"status": "ok" if not failing else "unavailable", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)


def startup_problems() -> list[str]:
    """Lines naming the variable and the problem, for services that are configured but broken."""
    problems = []
    db_error = check_database()
    if db_error:
        where = "DATABASE_URL" if settings.DATABASE_URL else "the SQLite file under PARLEY_VAR_DIR"
        problems.append(f"{where}: the database does not answer ({db_error})")
    redis_error = check_redis()
    if redis_error:
        problems.append(f"REDIS_URL: Redis does not answer at {settings.REDIS_URL} ({redis_error})")
    return problems
