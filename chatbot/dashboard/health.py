"""The model's state as the workspace's owners see it on Home.

Two signals: the route's status as this process knows it (`bot_model_status`: no endpoint,
a breaker open, or the last attempt failed with a "down" error), and, shared by every
process, replies that failed that way in the last hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from chatbot.bots.models import Bot
from chatbot.conversations.models import Message, MessageStatus, Role
from chatbot.conversations.replies import bot_model_status
from chatbot.llm.types import DOWN_CODES
from chatbot.tenants.models import Tenant

RECENT = timedelta(hours=1)


@dataclass(frozen=True)
class ModelAlert:
    bot: Bot
    offline: bool  # the route is known to be down right now
    failed_replies: int  # replies that failed for that reason in the last hour


def model_alerts(tenant: Tenant, bots: list[Bot]) -> list[ModelAlert]:
    if not bots:
        return []
    # The last hour's failures first (the created_at index), then this tenant's among them:
    # with the tenant in the same WHERE, SQLite walks every conversation of the tenant
    # instead (1 s at a million messages, bench/analytics).
    recent = Message.objects.filter(
        role=Role.ASSISTANT,
        status__in=[MessageStatus.FAILED, MessageStatus.INCOMPLETE],
        error_code__in=DOWN_CODES,
        created_at__gte=timezone.now() - RECENT,
    ).values("pk")
    failed = dict(
        Message.objects.filter(pk__in=recent, conversation__bot__tenant=tenant)
        .values_list("conversation__bot_id")
        .annotate(n=Count("id"))
    )
    alerts = []
    for bot in bots:
        if not bot.enabled:
            continue
        offline = bot_model_status(bot) == "offline"
        if offline or failed.get(bot.pk):
            alerts.append(ModelAlert(bot, offline, failed.get(bot.pk, 0)))
    return alerts
