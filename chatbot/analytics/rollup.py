"""Build a tenant's roll-up rows for one day from the raw messages (idempotent).

One ordered pass over the day's messages (streamed, `iterator()`), plus one aggregate over
the conversations started that day and one over the actions called that day: the same code
on SQLite and PostgreSQL, so the numbers agree on both. Days are the tenant's calendar days
(Tenant.timezone).
"""

from __future__ import annotations

import re
import zoneinfo
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum

from chatbot.billing.meter import REFUSAL_CODES
from chatbot.billing.models import StorageDay
from chatbot.conversations.models import Conversation, Message, MessageStatus, Role, Status
from chatbot.knowledge.analysis import STOPWORDS as _SEARCH_STOPWORDS
from chatbot.tenants.models import Tenant
from chatbot.tools.models import ActionCall, CallStatus

from .models import (
    LATENCY_EDGES_MS,
    WAIT_EDGES_S,
    ActionDay,
    BotDay,
    EndpointDay,
    QuestionDay,
)

TOP_QUESTIONS_PER_DAY = 50
# Knowledge search's stop words of every language it knows, plus greetings: "hi, what are your
# hours?" groups with "your hours".
STOPWORDS = frozenset().union(*_SEARCH_STOPWORDS.values()) | {
    "hi",
    "hello",
    "hey",
    "please",
    "thanks",
    "thank",
}
WORD = re.compile(r"\w+", re.UNICODE)


def day_bounds(tenant: Tenant, day: date) -> tuple[datetime, datetime]:
    zone = zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def question_key(text: str) -> str:
    """Questions with the same words (order, case, filler words aside) share a key."""
    words = sorted({w for w in WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1})
    return " ".join(words[:12])[:200]


def bucket(edges: tuple[int, ...], value: float) -> int:
    return bisect_left(edges, value)


def empty_histogram(edges: tuple[int, ...]) -> list[int]:
    return [0] * (len(edges) + 1)


@dataclass
class _Bot:
    visitors: set[int] = field(default_factory=set)
    visitor_messages: int = 0
    replies: int = 0
    reply_errors: int = 0
    refused: int = 0
    agent_messages: int = 0
    feedback_up: int = 0
    feedback_down: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    hours: list[int] = field(default_factory=lambda: [0] * 24)


@dataclass
class _Endpoint:
    replies: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    ttft: list[int] = field(default_factory=lambda: empty_histogram(LATENCY_EDGES_MS))


def _conversation_facts(tenant: Tenant, start: datetime, end: datetime) -> list[dict[str, Any]]:
    handed = Q(messages__role__in=[Role.AGENT, Role.SYSTEM])
    facts: Any = (
        Conversation.objects.filter(bot__tenant=tenant, created_at__gte=start, created_at__lt=end)
        .values("pk", "bot_id", "status")
        .annotate(
            handoff_messages=Count("messages", filter=handed),
            answered=Count(
                "messages",
                filter=Q(messages__role=Role.ASSISTANT, messages__status=MessageStatus.COMPLETE),
            ),
            asked_at=Min("messages__created_at", filter=Q(messages__role=Role.SYSTEM)),
            agent_at=Min("messages__created_at", filter=Q(messages__role=Role.AGENT)),
        )
    )
    return list(facts)


def _action_days(tenant: Tenant, day: date, start: datetime, end: datetime) -> list[ActionDay]:
    """The day's action calls (by the time the model asked for them) per bot and action name:
    one aggregate. The name is the one recorded with the call, so a deleted or renamed
    action keeps its history."""
    durations = Q(duration_ms__isnull=False, status__in=[CallStatus.DONE, CallStatus.FAILED])
    grouped: Any = (
        ActionCall.objects.filter(
            conversation__bot__tenant=tenant, created_at__gte=start, created_at__lt=end
        )
        .order_by()
        .values("conversation__bot_id", "name")
        .annotate(
            kind=Max("kind"),
            calls=Count("pk"),
            succeeded=Count("pk", filter=Q(status=CallStatus.DONE)),
            failed=Count("pk", filter=Q(status=CallStatus.FAILED)),
            declined=Count("pk", filter=Q(status=CallStatus.DECLINED)),
            duration=Sum("duration_ms", filter=durations),
            timed=Count("pk", filter=durations),
        )
    )
    return [
        ActionDay(
            tenant=tenant,
            bot_id=row["conversation__bot_id"],
            day=day,
            name=row["name"],
            kind=row["kind"] or "",
            calls=row["calls"],
            succeeded=row["succeeded"],
            failed=row["failed"],
            declined=row["declined"],
            duration_ms=int(row["duration"] or 0),
            timed=row["timed"],
        )
        for row in grouped
    ]


def roll_up(tenant: Tenant, day: date) -> None:
    """Rewrite the tenant's BotDay, EndpointDay, QuestionDay, ActionDay and StorageDay rows
    for `day`."""
    start, end = day_bounds(tenant, day)
    zone = start.tzinfo
    bots: dict[int, _Bot] = defaultdict(_Bot)
    endpoints: dict[tuple[int, str, str], _Endpoint] = defaultdict(_Endpoint)
    questions: dict[int, Counter[str]] = defaultdict(Counter)
    unanswered: dict[int, Counter[str]] = defaultdict(Counter)
    samples: dict[tuple[int, str], str] = {}
    pending: dict[int, tuple[int, str]] = {}  # conversation → (bot, question key) awaiting a reply

    handoff_conversations: set[int] = set()
    conversations = _conversation_facts(tenant, start, end)
    for facts in conversations:
        if facts["handoff_messages"] or facts["status"] in (Status.WAITING, Status.AGENT):
            handoff_conversations.add(facts["pk"])

    rows = (
        Message.objects.filter(
            conversation__bot__tenant=tenant, created_at__gte=start, created_at__lt=end
        )
        # No ORDER BY: the database then reads the day through the created_at index (ordering
        # by conversation would make it walk every message); one day's rows are sorted here.
        .order_by()
        .values_list(
            "conversation_id",
            "conversation__bot_id",
            "conversation__visitor_id",
            "role",
            "status",
            "error_code",
            "feedback",
            "endpoint",
            "model",
            "tokens_in",
            "tokens_out",
            "ttft_ms",
            "created_at",
            "text",
            "citations",
            "seq",
        )
    )
    for (
        conversation_id,
        bot_id,
        visitor_id,
        role,
        status,
        error_code,
        feedback,
        endpoint,
        model,
        tokens_in,
        tokens_out,
        ttft_ms,
        created_at,
        text,
        citations,
        _seq,
    ) in sorted(rows, key=lambda row: (row[0], row[15])):
        stats = bots[bot_id]
        if role == Role.VISITOR:
            stats.visitor_messages += 1
            stats.visitors.add(visitor_id)
            stats.hours[created_at.astimezone(zone).hour] += 1
            key = question_key(text or "")
            if key:
                questions[bot_id][key] += 1
                samples.setdefault((bot_id, key), " ".join((text or "").split())[:300])
                pending[conversation_id] = (bot_id, key)
        elif role == Role.ASSISTANT:
            asked = pending.pop(conversation_id, None)
            if error_code in REFUSAL_CODES:
                stats.refused += 1
                if asked is not None:
                    unanswered[asked[0]][asked[1]] += 1
                continue
            stats.replies += 1
            failed = status in (MessageStatus.FAILED, MessageStatus.INCOMPLETE)
            stats.reply_errors += failed
            stats.feedback_up += feedback == "up"
            stats.feedback_down += feedback == "down"
            stats.tokens_in += tokens_in or 0
            stats.tokens_out += tokens_out or 0
            usage = endpoints[(bot_id, endpoint or "", model or "")]
            usage.replies += 1
            usage.errors += failed
            usage.tokens_in += tokens_in or 0
            usage.tokens_out += tokens_out or 0
            if ttft_ms is not None:
                usage.ttft[bucket(LATENCY_EDGES_MS, ttft_ms)] += 1
            if asked is not None and (failed or not citations or feedback == "down"):
                unanswered[asked[0]][asked[1]] += 1
        elif role == Role.AGENT:
            stats.agent_messages += 1
        if role in (Role.AGENT, Role.SYSTEM):
            asked = pending.pop(conversation_id, None)
            if asked is not None:
                unanswered[asked[0]][asked[1]] += 1

    per_bot_conversations: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "handoffs": 0, "resolved": 0, "wait": empty_histogram(WAIT_EDGES_S)}
    )
    for facts in conversations:
        summary = per_bot_conversations[facts["bot_id"]]
        summary["n"] += 1
        if facts["pk"] in handoff_conversations:
            summary["handoffs"] += 1
            if facts["asked_at"] and facts["agent_at"] and facts["agent_at"] >= facts["asked_at"]:
                wait = (facts["agent_at"] - facts["asked_at"]).total_seconds()
                summary["wait"][bucket(WAIT_EDGES_S, wait)] += 1
        elif facts["answered"]:
            summary["resolved"] += 1
    action_days = _action_days(tenant, day, start, end)

    with transaction.atomic():
        BotDay.objects.filter(tenant=tenant, day=day).delete()
        EndpointDay.objects.filter(tenant=tenant, day=day).delete()
        QuestionDay.objects.filter(tenant=tenant, day=day).delete()
        ActionDay.objects.filter(tenant=tenant, day=day).delete()
        BotDay.objects.bulk_create(
            BotDay(
                tenant=tenant,
                bot_id=bot_id,
                day=day,
                conversations=per_bot_conversations[bot_id]["n"],
                visitors=len(bots[bot_id].visitors),
                visitor_messages=bots[bot_id].visitor_messages,
                replies=bots[bot_id].replies,
                reply_errors=bots[bot_id].reply_errors,
                refused=bots[bot_id].refused,
                agent_messages=bots[bot_id].agent_messages,
                handoffs=per_bot_conversations[bot_id]["handoffs"],
                resolved_by_bot=per_bot_conversations[bot_id]["resolved"],
                feedback_up=bots[bot_id].feedback_up,
                feedback_down=bots[bot_id].feedback_down,
                tokens_in=bots[bot_id].tokens_in,
                tokens_out=bots[bot_id].tokens_out,
                hours=bots[bot_id].hours,
                first_agent_reply=per_bot_conversations[bot_id]["wait"],
            )
            for bot_id in set(bots) | set(per_bot_conversations)
        )
        EndpointDay.objects.bulk_create(
            EndpointDay(
                tenant=tenant,
                bot_id=bot_id,
                day=day,
                endpoint=endpoint[:200],
                model=model[:200],
                replies=usage.replies,
                errors=usage.errors,
                tokens_in=usage.tokens_in,
                tokens_out=usage.tokens_out,
                ttft=usage.ttft,
            )
            for (bot_id, endpoint, model), usage in endpoints.items()
        )
        QuestionDay.objects.bulk_create(
            QuestionDay(
                tenant=tenant,
                bot_id=bot_id,
                day=day,
                key=key,
                sample=samples[(bot_id, key)],
                count=count,
                unanswered=unanswered[bot_id][key],
            )
            for bot_id, counted in questions.items()
            for key, count in _top(counted, unanswered[bot_id])
        )
        ActionDay.objects.bulk_create(action_days)
        _storage(tenant, day)


def _top(counted: Counter[str], unanswered: Counter[str]) -> list[tuple[str, int]]:
    """The day's most asked questions, and its most unanswered ones (bounded rows)."""
    keep = dict(counted.most_common(TOP_QUESTIONS_PER_DAY))
    for key, _ in unanswered.most_common(TOP_QUESTIONS_PER_DAY):
        keep[key] = counted[key]
    return list(keep.items())


def _storage(tenant: Tenant, day: date) -> None:
    from chatbot.knowledge.models import Document, SourceKind

    documents = Document.objects.filter(source__bot__tenant=tenant).aggregate(
        n=Count("pk"),
        chars=Sum("chars"),
        crawled=Count("pk", filter=Q(source__kind__in=[SourceKind.URL, SourceKind.SITEMAP])),
    )
    StorageDay.objects.update_or_create(
        tenant=tenant,
        day=day,
        defaults={
            "knowledge_bytes": int(documents["chars"] or 0),
            "documents": documents["n"],
            "crawled_pages": documents["crawled"],
        },
    )
