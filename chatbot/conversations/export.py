"""Export conversations (JSON, CSV) and a visitor's data; erase a visitor everywhere.

Exports are streamed and read in a fixed number of queries per chunk (conversations, their
messages with authors, attachments), so a filtered set of thousands does not load at once.
Both exports and erasure are recorded in the audit log by the views' callers here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from chatbot.tenants import audit
from chatbot.tenants.models import Tenant, User

from .models import Attachment, Conversation, Message, Visitor
from .retention import delete_stored_files

CHUNK = 200
CSV_COLUMNS = [
    "conversation",
    "bot",
    "visitor",
    "status",
    "seq",
    "time",
    "role",
    "author",
    "text",
    "message_status",
    "model",
    "tokens_in",
    "tokens_out",
    "ttft_ms",
    "feedback",
    "preview",
]


def _message_dict(message: Message) -> dict[str, Any]:
    return {
        "seq": message.seq,
        "time": message.created_at.isoformat(),
        "role": message.role,
        "author": message.author.email if message.author_id and message.author else None,
        "text": message.text,
        "status": message.status,
        "model": message.model or None,
        "tokens_in": message.tokens_in,
        "tokens_out": message.tokens_out,
        "ttft_ms": message.ttft_ms,
        "feedback": message.feedback or None,
        "attachments": [
            {"id": a.public_id, "content_type": a.content_type, "size": a.size}
            for a in message.attachments.all()
        ],
    }


def _call_dict(call: Any) -> dict[str, Any]:
    """An action the bot called (chatbot.tools): arguments, outcome, who confirmed it."""
    return {
        "id": call.public_id,
        "reply_seq": call.message.seq if call.message else None,
        "time": call.created_at.isoformat(),
        "action": call.name,
        "arguments": call.arguments,
        "status": call.status,
        "result": call.result,
        "error": call.error or None,
        "duration_ms": call.duration_ms,
        "confirmed_by": call.confirmed_by or None,
        "confirmed_at": call.confirmed_at.isoformat() if call.confirmed_at else None,
    }


def _visitor_dict(visitor: Visitor) -> dict[str, Any]:
    return {
        "id": visitor.public_id,
        "verified": visitor.verified,
        "preview": visitor.preview,
        "external_id": visitor.external_id or None,
        "name": visitor.name,
        "email": visitor.email,
        "locale": visitor.locale,
        "page_url": visitor.page_url,
        "user_agent": visitor.user_agent,
        "created_at": visitor.created_at.isoformat(),
    }


def conversation_dicts(conversations: QuerySet[Conversation]) -> Iterator[dict[str, Any]]:
    """Each conversation with its visitor and messages, a chunk of rows at a time."""
    ids = list(conversations.values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        chunk = (
            Conversation.objects.filter(pk__in=ids[start : start + CHUNK])
            .select_related("bot", "visitor", "assignee")
            .prefetch_related("messages__author", "messages__attachments", "action_calls__message")
            .order_by("-updated_at", "-pk")
        )
        for conversation in chunk:
            yield {
                "id": conversation.public_id,
                "bot": conversation.bot.name,
                "status": conversation.status,
                "assignee": conversation.assignee.email if conversation.assignee else None,
                "created_at": conversation.created_at.isoformat(),
                "updated_at": conversation.updated_at.isoformat(),
                "closed_at": conversation.closed_at.isoformat() if conversation.closed_at else None,
                "followup_email": conversation.followup_email or None,
                "visitor": _visitor_dict(conversation.visitor),
                "messages": [_message_dict(m) for m in conversation.messages.all()],
                "actions": [_call_dict(c) for c in conversation.action_calls.all()],
            }


def json_chunks(items: Iterable[dict[str, Any]], head: dict[str, Any]) -> Iterator[str]:
    """A JSON object `{...head, "conversations": [...]}` written item by item."""
    yield (json.dumps(head)[:-1] + ", " if head else "{") + '"conversations": ['
    for index, item in enumerate(items):
        yield ("," if index else "") + "\n" + json.dumps(item)
    yield "\n]}\n"


def csv_chunks(items: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One CSV row per message (the conversation's columns repeated)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for conversation in items:
        for m in conversation["messages"]:
            writer.writerow(
                [
                    conversation["id"],
                    _csv_safe(conversation["bot"]),
                    conversation["visitor"]["id"],
                    conversation["status"],
                    m["seq"],
                    m["time"],
                    m["role"],
                    _csv_safe(m["author"] or ""),
                    _csv_safe(m["text"]),
                    m["status"],
                    _csv_safe(m["model"] or ""),
                    m["tokens_in"] if m["tokens_in"] is not None else "",
                    m["tokens_out"] if m["tokens_out"] is not None else "",
                    m["ttft_ms"] if m["ttft_ms"] is not None else "",
                    m["feedback"] or "",
                    "yes" if conversation["visitor"]["preview"] else "",
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _csv_safe(text: str) -> str:
    # Text that people chose (visitor text, the bot's name, an author's address, a model name)
    # opened in a spreadsheet must not run as a formula (CSV injection). The other columns are
    # ids, enums, times and numbers written by Parley itself.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def record_export(
    tenant: Tenant, actor: User, target: str, *, fmt: str, count: int, **filters: Any
) -> None:
    audit.record(
        tenant, actor, "conversation.exported", target=target, format=fmt, count=count, **filters
    )


# --- One visitor: everything, or nothing ------------------------------------------------------


def visitor_export(visitor: Visitor) -> dict[str, Any]:
    conversations = Conversation.objects.filter(visitor=visitor)
    return {
        "visitor": _visitor_dict(visitor),
        "conversations": list(conversation_dicts(conversations)),
        "contacts": [
            {
                "name": c.name,
                "email": c.email,
                "phone": c.phone,
                "message": c.message,
                "created_at": c.created_at.isoformat(),
            }
            for c in visitor.contacts.all()
        ],
        "uploads_not_sent": [
            {"id": a.public_id, "content_type": a.content_type, "size": a.size}
            for a in Attachment.objects.filter(visitor=visitor, message__isnull=True)
        ],
    }


def erase_visitor(tenant: Tenant, actor: User, visitor: Visitor) -> dict[str, int]:
    """Delete the visitor, every conversation, message and attachment (rows and files), and
    the contacts they left (chatbot.tools: Contact.visitor cascades).

    The audit event keeps only the visitor's public id and the counts: it must not keep the
    personal data it records the deletion of.
    """
    with transaction.atomic():
        names = list(
            Attachment.objects.filter(visitor=visitor).values_list("stored_name", flat=True)
        )
        counts = {
            "conversations": Conversation.objects.filter(visitor=visitor).count(),
            "messages": Message.objects.filter(conversation__visitor=visitor).count(),
            "attachments": len(names),
            "contacts": visitor.contacts.count(),
        }
        public_id = visitor.public_id
        visitor.delete()  # CASCADE: conversations, messages, attachments, contacts
        audit.record(tenant, actor, "visitor.erased", target=public_id, **counts)
        transaction.on_commit(lambda: delete_stored_files(names))
    return counts
