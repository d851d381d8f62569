"""Webhook tests use the API personas' keys, and run deliveries in the test's process in both
suite runs (test_worker.py sends one through the real broker instead)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import api_for  # noqa: F401


@pytest.fixture(autouse=True)
def _eager_celery() -> Iterator[None]:
    from chatbot.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
