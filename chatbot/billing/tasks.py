"""Periodic usage work: restore lost counters from the messages, send the 80% / 100% emails."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from celery import shared_task
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Sum, Value
from django.db.models.functions import Coalesce

from .meter import REFUSAL_CODES, month_of, reconcile, usage_now
from .models import Account

log = logging.getLogger(__name__)


def month_totals(month_start: datetime) -> dict[int, tuple[int, int]]:
    """tenant id → (replies, tokens) since `month_start`, from the messages (one query)."""
    from chatbot.conversations.models import Message, Role

    rows = (
        Message.objects.filter(role=Role.ASSISTANT, created_at__gte=month_start)
        .exclude(error_code__in=REFUSAL_CODES)
        .values("conversation__bot__tenant_id")
        .annotate(
            replies=Count("pk"),
            tokens=Sum(Coalesce("tokens_in", Value(0)) + Coalesce("tokens_out", Value(0))),
        )
    )
    return {
        row["conversation__bot__tenant_id"]: (row["replies"], int(row["tokens"] or 0))
        for row in rows
    }


def _share(used: int, limit: int | None) -> float:
    return used / limit if limit else 0.0


def _warn(account: Account, level: int, month: str, used: tuple[int, int]) -> None:
    from chatbot.tenants.models import Membership, Role

    field = "warned_100" if level == 100 else "warned_80"
    with transaction.atomic():
        # Claimed under the row lock: two workers never both send this month's email.
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if getattr(locked, field) == month:
            return
        setattr(locked, field, month)
        locked.save(update_fields=[field])
    plan = account.plan
    assert plan is not None
    owners = list(
        Membership.objects.filter(
            tenant_id=account.tenant_id, role__in=[Role.OWNER, Role.ADMIN]
        ).values_list("user__email", flat=True)
    )
    if not owners:
        return
    if level == 100:
        subject = f"{account.tenant.name}: your bots have stopped answering (plan limit reached)"
        lead = (
            "Your workspace has used its whole monthly allowance. The bots no longer answer "
            "visitors until next month; your team can still chat with them from the inbox."
        )
    else:
        subject = f"{account.tenant.name}: 80% of this month's plan is used"
        lead = "Your workspace has used 80% of its monthly allowance."
    lines = [lead, ""]
    if plan.monthly_messages:
        lines.append(f"Bot replies: {used[0]:,} of {plan.monthly_messages:,}")
    if plan.monthly_tokens:
        lines.append(f"Model tokens: {used[1]:,} of {plan.monthly_tokens:,}")
    lines += ["", "Ask the platform's operator for a larger plan to lift the limit."]
    send_mail(subject, "\n".join(lines), None, owners)
    log.info("usage warning tenant=%s level=%s", account.tenant_id, level)


@shared_task(acks_late=True)
def check_usage() -> int:
    """Reconcile each tenant's month counters with its messages; email at 80% and 100%."""
    now = datetime.now(UTC)
    month = month_of(now)
    totals = month_totals(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    warned = 0
    for account in Account.objects.select_related("plan", "tenant"):
        replies, tokens = totals.get(account.tenant_id, (0, 0))
        reconcile(account.tenant_id, month, replies, tokens)
        plan = account.plan
        if plan is None or not (plan.monthly_messages or plan.monthly_tokens):
            continue
        used = usage_now(account.tenant_id, month)
        share = max(_share(used[0], plan.monthly_messages), _share(used[1], plan.monthly_tokens))
        if share >= 1 and account.warned_100 != month:
            _warn(account, 100, month, used)
            warned += 1
        elif share >= 0.8 and account.warned_80 != month and account.warned_100 != month:
            _warn(account, 80, month, used)
            warned += 1
    return warned
