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
