"""Celery tasks: keep the roll-ups of today and yesterday fresh; rebuild a day on demand."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta

from celery import shared_task

from chatbot.tenants.models import Tenant

from .rollup import roll_up


def today_for(tenant: Tenant) -> date:
    return datetime.now(UTC).astimezone(zoneinfo.ZoneInfo(tenant.timezone or "UTC")).date()


@shared_task(acks_late=True)
def roll_up_day(tenant_id: int, day: str) -> None:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        roll_up(tenant, date.fromisoformat(day))


@shared_task(acks_late=True)
def roll_up_recent() -> int:
    """Today (so far) and yesterday (late replies, the time-zone edge) of every tenant."""
    count = 0
    for tenant in Tenant.objects.all().iterator():
        today = today_for(tenant)
        for day in (today - timedelta(days=1), today):
            roll_up(tenant, day)
            count += 1
    return count
