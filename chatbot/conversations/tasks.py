"""Background work for conversations."""

from __future__ import annotations

from celery import shared_task

from . import actions


@shared_task(acks_late=True)
def sweep_stale_replies() -> int:
    """Mark replies left `streaming` by a dead process as incomplete (idempotent)."""
    return actions.sweep_stale_replies()
