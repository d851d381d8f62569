"""Full-text search over messages, and the inbox's filtered conversation list.

PostgreSQL: a stored generated column `search_vector = to_tsvector('simple', text)` with a
GIN index (migrations 0003 and 0004; the column is not in the Django model).
SQLite (the embedded default): an FTS5 table kept in step with the messages by triggers
(same migration). The 'simple' configuration does not stem: visitors write in many
languages, and a wrong stemmer is worse than none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

from chatbot.tenants.models import Tenant

from .models import Conversation, Feedback, Message, Status

WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 8


def _terms(query: str) -> list[str]:
    return WORD.findall(query.lower())[:MAX_TERMS]


def matching_conversation_ids(query: str) -> RawSQL | None:
    """A subquery of the ids of conversations with a message matching every word of `query`.

    None when the query has no words (nothing to filter on).
    """
    terms = _terms(query)
    if not terms:
        return None
    if connection.vendor == "postgresql":
        # Each word as a prefix (':*'), all required; the words are \\w+ only, so the
        # tsquery syntax cannot be injected, and they travel as a parameter anyway.
        tsquery = " & ".join(f"{term}:*" for term in terms)
        return RawSQL(
            "SELECT conversation_id FROM conversations_message "
            "WHERE search_vector @@ to_tsquery('simple', %s)",
            [tsquery],
        )
    # FTS5: each word quoted (no operators from the visitor's text) and as a prefix.
    fts_query = " ".join('"' + term.replace('"', '""') + '"*' for term in terms)
    return RawSQL(
        "SELECT m.conversation_id FROM conversations_message m "
        "JOIN conversations_message_fts f ON f.rowid = m.id "
        "WHERE conversations_message_fts MATCH %s",
        [fts_query],
    )


@dataclass(frozen=True)
class InboxFilter:
    """What the conversation list is narrowed to (every field optional)."""

    query: str = ""
    bot_id: int | None = None
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    rating: str = ""  # "up" / "down": has a reply rated so
    identity: str = ""  # "identified" / "anonymous"
    assignee: str = ""  # "me" / "unassigned"


def _day_start(day: date, tenant: Tenant) -> datetime:
    import zoneinfo

    zone = zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    return datetime.combine(day, time.min, tzinfo=zone)


def filter_conversations(
    tenant: Tenant, wanted: InboxFilter, *, user_id: int | None = None
) -> QuerySet[Conversation]:
    """The tenant's conversations matching `wanted`, newest activity first."""
    conversations = Conversation.objects.for_tenant(tenant)
    if wanted.bot_id is not None:
        conversations = conversations.filter(bot_id=wanted.bot_id)
    if wanted.status in Status.values:
        conversations = conversations.filter(status=wanted.status)
    if wanted.date_from is not None:
        conversations = conversations.filter(updated_at__gte=_day_start(wanted.date_from, tenant))
    if wanted.date_to is not None:
        end = _day_start(wanted.date_to + timedelta(days=1), tenant)
        conversations = conversations.filter(created_at__lt=end)
    if wanted.rating in (Feedback.UP, Feedback.DOWN):
        rated = Message.objects.filter(conversation=OuterRef("pk"), feedback=wanted.rating)
        conversations = conversations.filter(Exists(rated))
    if wanted.identity == "identified":
        conversations = conversations.filter(visitor__verified=True)
    elif wanted.identity == "anonymous":
        conversations = conversations.filter(visitor__verified=False)
    if wanted.assignee == "me" and user_id is not None:
        conversations = conversations.filter(assignee_id=user_id)
    elif wanted.assignee == "unassigned":
        conversations = conversations.filter(assignee__isnull=True)
    ids = matching_conversation_ids(wanted.query)
    if ids is not None:
        conversations = conversations.filter(pk__in=ids)
    return conversations.order_by("-updated_at", "-pk")


def waiting_count(tenant: Tenant) -> int:
    return Conversation.objects.for_tenant(tenant).filter(status=Status.WAITING).count()
