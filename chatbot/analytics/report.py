"""A tenant's (or one bot's) report over a period, read from the roll-up rows only."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from markupsafe import Markup

from chatbot.tenants.models import Tenant
from chatbot.tools.models import Action

from . import charts
from .models import (
    LATENCY_EDGES_MS,
    WAIT_EDGES_S,
    ActionDay,
    BotDay,
    EndpointDay,
    QuestionDay,
)


@dataclass
class Chart:
    id: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    svg: Markup


def percentile(histogram: list[int], edges: tuple[int, ...], share: float) -> str:
    """The bucket that holds the `share` percentile, as "≤ edge" (or "> last edge")."""
    total = sum(histogram)
    if not total:
        return "—"
    running = 0
    for index, count in enumerate(histogram):
        running += count
        if running >= share * total:
            return f"≤ {edges[index]:,}" if index < len(edges) else f"> {edges[-1]:,}"
    return "—"


def _add(target: list[int], values: list[int]) -> None:
    for index, value in enumerate(values):
        if index < len(target):
            target[index] += value


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "—"


def build(tenant: Tenant, start: date, end: date, bot_id: int | None = None) -> dict[str, Any]:
    """Charts, tables and headline figures for the days start..end (inclusive)."""
    scope: dict[str, Any] = {"day__gte": start, "day__lte": end}
    if bot_id is not None:
        scope["bot_id"] = bot_id
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    labels = [d.strftime("%d %b") for d in days]
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hours = [0] * 24
    waits = charts_empty(WAIT_EDGES_S)
    totals: dict[str, int] = defaultdict(int)
    for row in BotDay.objects.for_tenant(tenant).filter(**scope).iterator():
        for name in (
            "conversations",
            "visitors",
            "visitor_messages",
            "replies",
            "reply_errors",
            "refused",
            "handoffs",
            "resolved_by_bot",
            "feedback_up",
            "feedback_down",
            "tokens_in",
            "tokens_out",
            "agent_messages",
        ):
            value = getattr(row, name)
            per_day[row.day][name] += value
            totals[name] += value
        _add(hours, row.hours)
        _add(waits, row.first_agent_reply)

    def series(name: str) -> list[int]:
        return [per_day[d][name] for d in days]

    def daily(chart_id: str, title: str, fields: list[tuple[str, str]]) -> Chart:
        """A per-day line chart of some counters, with the same numbers as its table."""
        return Chart(
            chart_id,
            title,
            ["Day", *(label for label, _ in fields)],
            [[d.isoformat(), *(per_day[d][name] for _, name in fields)] for d in days],
            charts.line_chart(
                chart_id, title, labels, [(label, series(name)) for label, name in fields]
            ),
        )

    volume = daily(
        "volume",
        "Conversations and messages per day",
        [
            ("Conversations", "conversations"),
            ("Visitor messages", "visitor_messages"),
            ("Bot replies", "replies"),
            ("Visitors", "visitors"),
        ],
    )
    busiest = Chart(
        "hours",
        "Busiest hours (visitor messages, your time zone)",
        ["Hour", "Visitor messages"],
        [[f"{h:02d}:00", hours[h]] for h in range(24)],
        charts.bar_chart(
            "hours", "Busiest hours", [f"{h:02d}" for h in range(24)], [float(v) for v in hours]
        ),
    )
    outcome = daily(
        "outcomes",
        "Resolved by the bot and handed to a person, per day",
        [
            ("Conversations", "conversations"),
            ("Resolved by the bot", "resolved_by_bot"),
            ("Handed to a person", "handoffs"),
        ],
    )
    endpoints, tokens = _endpoints(tenant, scope)
    token_chart = Chart(
        "tokens",
        "Model tokens per model",
        ["Endpoint", "Model", "Prompt tokens", "Completion tokens"],
        tokens,
        charts.bar_chart(
            "tokens",
            "Model tokens per model",
            [row[1] or row[0] or "unknown" for row in tokens],
            [float(row[2] + row[3]) for row in tokens],
        ),
    )
    feedback_total = totals["feedback_up"] + totals["feedback_down"]
    headline = {
        "conversations": totals["conversations"],
        "visitors": totals["visitors"],
        "messages": totals["visitor_messages"],
        "replies": totals["replies"],
        "deflection": _rate(totals["resolved_by_bot"], totals["conversations"]),
        "handoff_rate": _rate(totals["handoffs"], totals["conversations"]),
        "first_reply_median": percentile(waits, WAIT_EDGES_S, 0.5),
        "feedback_rate": _rate(feedback_total, totals["replies"]),
        "feedback_score": _rate(totals["feedback_up"], feedback_total),
        "refused": totals["refused"],
    }
    chart_list = [volume, outcome, busiest, token_chart]
    action_chart = _actions(tenant, scope)
    if action_chart is not None:
        chart_list.append(action_chart)
    return {
        "charts": chart_list,
        "endpoints": endpoints,
        "headline": headline,
        "questions": _questions(tenant, scope),
    }


def charts_empty(edges: tuple[int, ...]) -> list[int]:
    return [0] * (len(edges) + 1)


def _endpoints(
    tenant: Tenant, scope: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for row in EndpointDay.objects.for_tenant(tenant).filter(**scope).iterator():
        entry = grouped.setdefault(
            (row.endpoint, row.model),
            {
                "endpoint": row.endpoint,
                "model": row.model,
                "replies": 0,
                "errors": 0,
                "tokens_in": 0,
                "tokens_out": 0,
                "ttft": charts_empty(LATENCY_EDGES_MS),
            },
        )
        entry["replies"] += row.replies
        entry["errors"] += row.errors
        entry["tokens_in"] += row.tokens_in
        entry["tokens_out"] += row.tokens_out
        _add(entry["ttft"], row.ttft)
    endpoints = []
    for entry in sorted(grouped.values(), key=lambda e: -e["replies"]):
        entry["p50"] = percentile(entry["ttft"], LATENCY_EDGES_MS, 0.5)
        entry["p95"] = percentile(entry["ttft"], LATENCY_EDGES_MS, 0.95)
        entry["error_rate"] = _rate(entry["errors"], entry["replies"])
        endpoints.append(entry)
    tokens = [[e["endpoint"], e["model"], e["tokens_in"], e["tokens_out"]] for e in endpoints]
    return endpoints, tokens


def _actions(tenant: Tenant, scope: dict[str, Any]) -> Chart | None:
    """Calls per action with their outcome, success rate and mean duration; None (no chart)
    while the workspace has no actions and none were called in the period."""
    grouped: dict[str, dict[str, int]] = {}
    for row in ActionDay.objects.for_tenant(tenant).filter(**scope).iterator():
        entry = grouped.setdefault(
            row.name,
            {"calls": 0, "succeeded": 0, "failed": 0, "declined": 0, "duration_ms": 0, "timed": 0},
        )
        for name in entry:
            entry[name] += getattr(row, name)
    if not grouped and not Action.objects.for_tenant(tenant).exists():
        return None
    ordered = sorted(grouped.items(), key=lambda item: (-item[1]["calls"], item[0]))
    rows: list[list[Any]] = [
        [
            name,
            e["calls"],
            e["succeeded"],
            e["failed"],
            e["declined"],
            # Of the calls that ran to an end: a declined or still-running call is neither.
            _rate(e["succeeded"], e["succeeded"] + e["failed"]),
            round(e["duration_ms"] / e["timed"]) if e["timed"] else "—",
        ]
        for name, e in ordered
    ]
    return Chart(
        "actions",
        "Actions called and their success",
        [
            "Action",
            "Calls",
            "Succeeded",
            "Failed",
            "Declined by the visitor",
            "Success rate",
            "Mean duration (ms)",
        ],
        rows,
        charts.stacked_bar_chart(
            "actions",
            "Actions called and their success",
            [name for name, _ in ordered],
            [
                ("Succeeded", [float(e["succeeded"]) for _, e in ordered]),
                ("Failed", [float(e["failed"]) for _, e in ordered]),
                (
                    "Other (declined, not finished)",
                    [float(e["calls"] - e["succeeded"] - e["failed"]) for _, e in ordered],
                ),
            ],
        ),
    )


def _questions(tenant: Tenant, scope: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[tuple[int, str], dict[str, Any]] = {}
    for row in QuestionDay.objects.for_tenant(tenant).filter(**scope).iterator():
        entry = grouped.setdefault(
            (row.bot_id, row.key),
            {
                "bot_id": row.bot_id,
                "key": row.key,
                "sample": row.sample,
                "count": 0,
                "unanswered": 0,
            },
        )
        entry["count"] += row.count
        entry["unanswered"] += row.unanswered
    entries = list(grouped.values())
    top = sorted(entries, key=lambda e: (-e["count"], e["key"]))[:20]
    missing = sorted(
        (e for e in entries if e["unanswered"]), key=lambda e: (-e["unanswered"], e["key"])
    )[:20]
    return {"top": top, "unanswered": missing}
