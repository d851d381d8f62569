"""The Celery app. Without REDIS_URL tasks run in-process (CELERY_TASK_ALWAYS_EAGER)."""

from __future__ import annotations

import os
from logging.config import dictConfig

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

app = Celery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(**_: object) -> None:
    """Workers and beat log through Django's LOGGING, like the web processes: one line
    format with the request id, capability tokens redacted, LOG_LEVEL as the level. Without
    this receiver Celery replaces the root logger's handlers and sets its level to the
    worker's `--loglevel`, which also silences warnings of an in-process test worker."""
    from django.conf import settings

    dictConfig(settings.LOGGING)
