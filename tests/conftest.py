"""Shared fixtures: the real parts (llama.cpp, Chromium, an ASGI server) and skip rules.

Tests that need a part carry its marker (llama, browser). When the part is missing `make test`
sets PARLEY_SKIP_<MARKER> with the reason and those tests are skipped with it; under CI=true a
missing part fails the test instead. Tests marked postgres/redis (or embedded) belong to one of
make test's two runs and are deselected in the other.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.browser",
    "tests.fixtures.personas",
    "tests.fixtures.llama",
    "tests.fixtures.install",
]


_OTHER_RUN = pytest.StashKey[int]()


def _missing_reason(marker: str) -> str | None:
    reason = os.environ.get(f"PARLEY_SKIP_{marker.upper()}")
    if reason:
        return reason
    if marker == "browser" and not shutil.which("chromium"):
        return "Debian's chromium is not installed"
    if marker == "llama" and not os.environ.get("PARLEY_LLAMA_SERVER"):
        return "PARLEY_LLAMA_SERVER is not set (make test builds and sets it)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    # WhiteNoise warns on every request when STATIC_ROOT is missing; tests serve static files
    # through the finders (WHITENOISE_USE_FINDERS), so an empty directory is all it needs.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


def _belongs_to_the_other_run(item: pytest.Item) -> bool:
    """postgres/redis tests belong to make test's second run; `embedded` ones to its first."""
    if item.get_closest_marker("embedded") is not None:
        return bool(settings.DB_IS_POSTGRES or settings.REDIS_URL)
    if item.get_closest_marker("postgres") is not None and not settings.DB_IS_POSTGRES:
        return True
    return item.get_closest_marker("redis") is not None and not settings.REDIS_URL


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests of the other database mode are deselected, not skipped: `make test` runs both
    # modes, so nothing is skipped there (scripts/run_tests.py says so if a mode cannot run).
    elsewhere = [item for item in items if _belongs_to_the_other_run(item)]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if not _belongs_to_the_other_run(item)]
        config.stash[_OTHER_RUN] = len(elsewhere)
    # Browser tests run last, together: each opens Playwright's sync API, which sets an event
    # loop on the main thread while it is open; keeping them apart from pytest-asyncio tests
    # is cheap insurance against a loop that outlives its test.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
    for item in items:
        for marker in ("llama", "browser"):
            if item.get_closest_marker(marker) is None:
                continue
            reason = _missing_reason(marker)
            if reason is None:
                continue
            if CI:
                item.add_marker(pytest.mark.usefixtures("_fail_missing_part"))
            else:
                item.add_marker(pytest.mark.skip(reason=f"{marker}: {reason}"))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    count = config.stash.get(_OTHER_RUN, 0)
    if count:
        mode = "PostgreSQL + Redis" if not settings.DB_IS_POSTGRES else "embedded-defaults"
        terminalreporter.write_line(
            f"parley: {count} tests belong to make test's {mode} run and were deselected here"
        )


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

    from chatbot.webhooks.dispatch import forget_local_flags

    cache.clear()
    forget_local_flags()  # the webhooks flag remembered in the process, like the cache
    yield
