"""The JSON shapes the widget protocol sends (docs/widget-protocol.md, section 5)."""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext

from chatbot.profiles.actions import avatar_url
from chatbot.tenants.models import Tenant

from .models import AgentNames, Attachment, Conversation, InboxSettings, Message

ATTACHMENT_SALT = "parley.widget.attachment"


def attachment_url(attachment: Attachment) -> str:
    # A capability for this one file: no session token travels in the URL.
    signed = signing.dumps(attachment.public_id, salt=ATTACHMENT_SALT)
    return reverse("widget:attachment", args=[signed])


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.public_id,
        "url": attachment_url(attachment),
        "content_type": attachment.content_type,
        "width": attachment.width,
        "height": attachment.height,
    }


def agent_identity(message: Message) -> tuple[str | None, str | None]:
    """(name, avatar URL) of a message's author as visitors see them."""
    policy = (
        InboxSettings.objects.filter(tenant__bots__conversations=message.conversation_id)
        .values_list("agent_names", flat=True)
        .first()
    ) or AgentNames.FULL
    if policy == AgentNames.TEAM:
        tenant = Tenant.objects.filter(bots__conversations=message.conversation_id).first()
        return (gettext("%(name)s team") % {"name": tenant.name} if tenant else None), None
    name = getattr(message.author, "display_name", None)
    if policy == AgentNames.FIRST and name:
        name = name.split()[0]
    avatar = avatar_url(message.author_id) if message.role == "agent" else None
    return name, avatar


def message_payload(message: Message, *, text: str | None = None) -> dict[str, Any]:
    error = (
        {"code": message.error_code, "message": message.error_message}
        if message.error_code
        else None
    )
    author = avatar = None
    # Agents' replies, notes and system lines ("agent.joined") name the person, as the
    # workspace's policy says (InboxSettings.agent_names).
    if message.role in ("agent", "system", "note") and message.author_id is not None:
        author, avatar = agent_identity(message)
    return {
        "seq": message.seq,
        "role": message.role,
        "text": message.text if text is None else text,
        "status": message.status,
        "client_id": message.client_id,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "feedback": message.feedback or None,
        "author": author,
        "author_avatar": avatar,
        # Only visitors attach files: no query for the other roles' messages.
        "attachments": [attachment_payload(a) for a in message.attachments.all()]
        if message.role == "visitor"
        else [],
        "citations": list(message.citations or []),
        "error": error,
    }


def conversation_payload(conversation: Conversation, preview: str = "") -> dict[str, Any]:
    return {
        "id": conversation.public_id,
        "status": conversation.status,
        "last_seq": conversation.last_seq,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "preview": preview[:120],
    }
