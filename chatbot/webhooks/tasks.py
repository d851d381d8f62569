"""Celery tasks: one delivery attempt, and the periodic sweep of due retries."""

from __future__ import annotations

from celery import shared_task

from . import dispatch


@shared_task(acks_late=True, reject_on_worker_lost=True)
def deliver(delivery_id: int) -> str:
    # At least once: a worker killed mid-attempt leaves the delivery pending (its lease
    # lapses), and the next sweep sends it again with the same event id.
    return dispatch.send(delivery_id)


@shared_task
def send_due_deliveries() -> int:
    return dispatch.send_due()
