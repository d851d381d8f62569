"""Background work for conversations."""

from __future__ import annotations

from celery import shared_task

from . import actions


@shared_task(acks_late=True)
def sweep_stale_replies() -> int:
    """Mark replies left `streaming` by a dead process as incomplete (idempotent)."""
    return actions.sweep_stale_replies()


@shared_task(acks_late=True)
def purge_expired_conversations() -> dict[str, int]:
    """Apply every tenant's retention window (idempotent: a rerun finds nothing left)."""
    from .retention import purge_expired

    return {str(tenant): count for tenant, count in purge_expired().items()}


@shared_task(acks_late=True)
def notify_team_of_waiting(conversation_id: int) -> int:
    """Email the workspace's members that a visitor waits for a person (if email is set up).

    Returns the number of addresses written to. Sent once: a conversation that is no longer
    waiting (someone took it meanwhile) is not announced.
    """
    from django.conf import settings

    from chatbot.core.emails import Email, send_branded
    from chatbot.tenants.models import Membership

    from .models import Conversation, Status

    if not getattr(settings, "EMAIL_CONFIGURED", False):
        return 0
    conversation = (
        Conversation.objects.select_related("bot__tenant", "visitor")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None or conversation.status != Status.WAITING:
        return 0
    recipients = sorted(
        set(
            Membership.objects.filter(tenant_id=conversation.bot.tenant_id).values_list(
                "user__email", flat=True
            )
        )
    )
    if not recipients:
        return 0
    from django.urls import reverse

    link = settings.SITE_URL.rstrip("/") + reverse(
        "conversations:detail", args=[conversation.public_id]
    )
    who = conversation.visitor.name or "A visitor"
    tenant = conversation.bot.tenant
    send_branded(
        Email(
            subject=f"{who} is waiting for a person ({conversation.bot.name})",
            heading=f"{who} is waiting for a person",
            paragraphs=[f"{who} asked to talk to a person on {conversation.bot.name}."],
            action_label="Open the conversation",
            action_url=link,
            tenant_name=tenant.name,
            footer=["You get this email because you are a member of this workspace."],
        ),
        recipients,
    )
    return len(recipients)


@shared_task(acks_late=True)
def alert_model_down(bot_id: int) -> int:
    """Email the workspace's owners and admins that a bot's model could not be reached (if
    email is set up). Queued at most once an hour per workspace (actions._alert_model_down).
    Returns the number of addresses written to."""
    from django.conf import settings
    from django.urls import reverse

    from chatbot.bots.models import Bot
    from chatbot.core.emails import Email, send_branded
    from chatbot.tenants.models import Membership, Role

    if not getattr(settings, "EMAIL_CONFIGURED", False):
        return 0
    bot = Bot.objects.select_related("tenant").filter(pk=bot_id).first()
    if bot is None:
        return 0
    recipients = sorted(
        set(
            Membership.objects.filter(
                tenant_id=bot.tenant_id, role__in=[Role.OWNER, Role.ADMIN]
            ).values_list("user__email", flat=True)
        )
    )
    if not recipients:
        return 0
    site = settings.SITE_URL.rstrip("/")
    send_branded(
        Email(
            subject=f"{bot.name} cannot reach its language model",
            heading=f"{bot.name} cannot answer visitors right now",
            paragraphs=[
                "A reply failed because the bot's language model could not be reached. "
                "Visitors are told the assistant is unavailable and can ask for a person.",
                "Home in the dashboard shows how many replies failed in the last hour.",
            ],
            action_label="Check the model endpoints",
            action_url=site + reverse("llm:endpoints"),
            tenant_name=bot.tenant.name,
            footer=["At most one such email an hour per workspace."],
        ),
        recipients,
    )
    return len(recipients)
