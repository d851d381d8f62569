"""Shared fixtures: the real parts (llama.cpp, Chromium, an ASGI server) and skip rules.

Tests that need a part carry its marker (llama, browser, postgres, redis). When the part is
missing `make test` sets PARLEY_SKIP_<MARKER> with the reason and those tests are skipped
with it; under CI=true a missing part fails the test instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.browser",
    "tests.fixtures.personas",
    "tests.fixtures.llama",
]


def _missing_reason(marker: str) -> str | None:
    reason = os.environ.get(f"PARLEY_SKIP_{marker.upper()}")
    if reason:
        return reason
    if marker == "postgres" and not settings.DB_IS_POSTGRES:
        return "runs only against PostgreSQL (make test's second run sets DATABASE_URL)"
    if marker == "redis" and not settings.REDIS_URL:
        return "runs only against Redis (make test's second run sets REDIS_URL)"
    if marker == "browser" and not shutil.which("chromium"):
        return "Debian's chromium is not installed"
    if marker == "llama" and not os.environ.get("PARLEY_LLAMA_SERVER"):
        return "PARLEY_LLAMA_SERVER is not set (make test builds and sets it)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    # WhiteNoise warns on every request when STATIC_ROOT is missing; tests serve static files
    # through the finders (WHITENOISE_USE_FINDERS), so an empty directory is all it needs.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Browser tests run last, together: each opens Playwright's sync API, which sets an event
    # loop on the main thread while it is open; keeping them apart from pytest-asyncio tests
    # is cheap insurance against a loop that outlives its test.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
    for item in items:
        for marker in ("llama", "browser", "postgres", "redis"):
            if item.get_closest_marker(marker) is None:
                continue
            reason = _missing_reason(marker)
            if reason is None:
                continue
            # postgres/redis-only tests are expected to skip in the embedded run, even on CI.
            if CI and marker in ("llama", "browser"):
                item.add_marker(pytest.mark.usefixtures("_fail_missing_part"))
            else:
                item.add_marker(pytest.mark.skip(reason=f"{marker}: {reason}"))


@pytest.fixture
def _fail_missing_part(request: pytest.FixtureRequest) -> None:
    reasons = [
        f"{marker}: {_missing_reason(marker)}"
        for marker in ("llama", "browser")
        if request.node.get_closest_marker(marker) and _missing_reason(marker)
    ]
    pytest.fail(f"CI=true and a required part is missing: {'; '.join(reasons)}", pytrace=False)


@pytest.fixture(autouse=True)
def _isolated_cache() -> Iterator[None]:
    from django.core.cache import cache

    cache.clear()
    yield
