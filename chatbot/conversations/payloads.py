"""The JSON shapes the widget protocol sends (docs/widget-protocol.md, section 5)."""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.urls import reverse

from .models import Attachment, Conversation, Message

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


def message_payload(message: Message, *, text: str | None = None) -> dict[str, Any]:
    error = (
        {"code": message.error_code, "message": message.error_message}
        if message.error_code
        else None
    )
    author = None
    # Agents' replies, notes and system lines ("agent.joined") name the person.
    if message.role in ("agent", "system", "note") and message.author_id is not None:
        author = getattr(message.author, "display_name", None)
    return {
        "seq": message.seq,
        "role": message.role,
        "text": message.text if text is None else text,
        "status": message.status,
        "client_id": message.client_id,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "feedback": message.feedback or None,
        "author": author,
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
