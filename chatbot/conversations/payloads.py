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

# What a visitor may read about a reply that failed: a wording chosen by the error's code. The
# stored `error_message` is the operator's detail (endpoint names, addresses, exception names)
# and stays in the dashboard and the log. The frame words the code in the visitor's language
# (widget/static/widget/i18n.js); this English text is for API and fallback clients.
_UNAVAILABLE = "The assistant is unavailable right now. Please try again in a moment."
VISITOR_ERROR_TEXT = {
    "offline": _UNAVAILABLE,
    "connect": _UNAVAILABLE,
    "timeout": _UNAVAILABLE,
    "auth": _UNAVAILABLE,
    "not_found": _UNAVAILABLE,
    "upstream": _UNAVAILABLE,
    "overloaded": "The assistant is busy right now. Please try again in a moment.",
    "rate_limited": "The assistant is busy right now. Please try again in a moment.",
    "context": "This conversation is too long for the assistant. Please start a new one.",
    "interrupted": "This reply was interrupted.",
    "cancelled": "This reply was interrupted.",
}
VISITOR_ERROR_DEFAULT = "Something went wrong. Please try again."


# The platform's own refusals (chatbot/billing): their stored sentence is written for visitors.
VISITOR_WORDED_CODES = frozenset({"quota_exceeded", "workspace_suspended"})


def visitor_error(code: str, stored: str = "") -> dict[str, str]:
    if code in VISITOR_WORDED_CODES and stored:
        return {"code": code, "message": stored}
    return {"code": code, "message": VISITOR_ERROR_TEXT.get(code, VISITOR_ERROR_DEFAULT)}


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
    error = visitor_error(message.error_code, message.error_message) if message.error_code else None
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
        # The visitor sees each source's title and address; the passage text is for agents.
        "citations": [
            {"title": str(c.get("title", "")), "url": str(c.get("url", ""))}
            for c in message.citations or []
        ],
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


# --- Webhook event data (chatbot.lib.events) --------------------------------------------------
# Public ids only, the same shapes as the REST API's (chatbot/conversations/api.py).


def event_conversation(conversation: Conversation) -> dict[str, Any]:
    from chatbot.lib import ids

    return {
        "id": conversation.public_id,
        "bot": ids.encode("bot", conversation.bot_id),
        "visitor": conversation.visitor.public_id if conversation.visitor_id else None,
        "status": conversation.status,
        "assignee": ids.encode("usr", conversation.assignee_id)
        if conversation.assignee_id
        else None,
    }


def event_message(message: Message, conversation: Conversation) -> dict[str, Any]:
    from chatbot.lib import ids

    return {
        "conversation": event_conversation(conversation),
        "message": {
            "seq": message.seq,
            "role": message.role,
            "text": message.text,
            "status": message.status,
            "author": ids.encode("usr", message.author_id) if message.author_id else None,
            "feedback": message.feedback or None,
            "created_at": message.created_at.isoformat() if message.created_at else None,
        },
    }
