"""The tenant's usage against its plan, as meters: the dashboard's home and the Usage page.

Five meters: this month's bot replies and model tokens (the live counters of `meter.py`),
and the bots, members (pending invitations included, as `actions.check_can_add_seat`
counts them) and knowledge text kept now. Each says its numbers as text, its state (`near`
from 80%, `full` at the limit) and, from 80% on, what happens at the limit and what to do,
with a link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from chatbot.jinja2 import number

from . import actions, meter

if TYPE_CHECKING:
    from chatbot.tenants.models import Tenant

    from .models import Account

NEAR_SHARE = 80  # percent: the warning email and the meter's "nearly used up" state
MEGABYTE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Meter:
    key: str  # replies, tokens, bots, seats, knowledge
    label: str
    used: int
    limit: int | None  # None: unlimited
    used_text: str
    limit_text: str
    percent: int | None  # of the limit, not capped (tokens may overshoot); None: unlimited
    state: str  # "ok", "near" or "full"
    advice: str  # what happens at the limit and what to do (near and full only)
    fix_label: str
    fix_url: str


@dataclass(frozen=True, slots=True)
class Usage:
    account: Account
    meters: list[Meter]
    reason: str  # why the bots do not answer now (suspended, monthly limit), or ""
    resets_on: date

    @property
    def worst(self) -> str:
        states = {m.state for m in self.meters}
        return "full" if "full" in states else "near" if "near" in states else "ok"


def _megabytes(value: float, places: int = 0) -> str:
    size = formats.number_format(value, places, use_l10n=True, force_grouping=True)
    return _("%(size)s MB") % {"size": size}


def _state(used: int, limit: int | None) -> tuple[int | None, str]:
    if limit is None:
        return None, "ok"
    if limit <= 0:
        return 100, "full"
    percent = 100 * used // limit
    return percent, "full" if used >= limit else "near" if percent >= NEAR_SHARE else "ok"


def _larger_plan() -> tuple[str, str]:
    """Where a tenant asks for a larger plan: the operator's page or address when set, else
    the Usage page (which says to ask the operator)."""
    url = settings.PLAN_CONTACT_URL
    if url:
        return _("Ask for a larger plan"), url
    return _("See your plan"), reverse("billing:usage")


def _meter(
    key: str,
    label: str,
    used: int,
    limit: int | None,
    *,
    advice: dict[str, str],
    fix: tuple[str, str],
    text: tuple[str, str] | None = None,
) -> Meter:
    percent, state = _state(used, limit)
    used_text, limit_text = text or (number(used), "" if limit is None else number(limit))
    return Meter(
        key,
        label,
        used,
        limit,
        used_text,
        limit_text,
        percent,
        state,
        advice.get(state, ""),
        fix[0] if state != "ok" else "",
        fix[1] if state != "ok" else "",
    )


def tenant_usage(tenant: Tenant, *, bots: int | None = None, seats: int | None = None) -> Usage:
    """The meters of `tenant` (pass counts the caller already has to save their queries)."""
    from chatbot.bots.models import Bot
    from chatbot.tenants.models import Invitation, Membership

    account = actions.account_for(tenant)
    plan = account.plan
    replies, tokens = meter.usage_now(tenant.pk)
    if bots is None:
        bots = Bot.objects.for_tenant(tenant).count()
    if seats is None:
        seats = Membership.objects.for_tenant(tenant).count()
    pending = (
        Invitation.objects.for_tenant(tenant)
        .filter(accepted_at__isnull=True, expires_at__gt=timezone.now())
        .count()
    )
    knowledge = actions.knowledge_bytes(tenant)
    knowledge_limit = (
        None if plan is None or plan.max_knowledge_mb is None else plan.max_knowledge_mb * MEGABYTE
    )
    monthly = {
        "near": _(
            "At the limit the bots stop answering visitors until next month; agents can still chat."
        ),
        "full": _(
            "The bots no longer answer visitors until next month (they are told they can ask "
            "for a person); agents can still chat."
        ),
    }
    plan_fix = _larger_plan()
    if not settings.PLAN_CONTACT_URL:
        ask = _("Ask the platform's operator for a larger plan.")
        monthly = {state: f"{text} {ask}" for state, text in monthly.items()}
    meters = [
        _meter(
            "replies",
            _("Bot replies this month"),
            replies,
            plan.monthly_messages if plan else None,
            advice=monthly,
            fix=plan_fix,
        ),
        _meter(
            "tokens",
            _("Model tokens this month"),
            tokens,
            plan.monthly_tokens if plan else None,
            advice=monthly,
            fix=plan_fix,
        ),
        _meter(
            "bots",
            _("Bots"),
            bots,
            plan.max_bots if plan else None,
            advice={
                "full": _("No more bots can be added. Remove one you no longer use."),
            },
            fix=(_("Manage bots"), reverse("bots:list")),
        ),
        _meter(
            "seats",
            _("Members and pending invitations"),
            seats + pending,
            plan.max_seats if plan else None,
            advice={
                "full": _("No one else can be invited. Remove a member or cancel an invitation."),
            },
            fix=(_("Manage the team"), reverse("dashboard:team")),
        ),
        _meter(
            "knowledge",
            _("Knowledge (text kept)"),
            knowledge,
            knowledge_limit,
            advice={
                "near": _("When it is full, new sources and crawls are refused."),
                "full": _("The knowledge base is full: remove sources you no longer need."),
            },
            fix=(_("Manage knowledge"), reverse("knowledge:list")),
            text=(
                _megabytes(knowledge / MEGABYTE, 2 if knowledge < 10 * MEGABYTE else 1),
                ""
                if plan is None or plan.max_knowledge_mb is None
                else _megabytes(plan.max_knowledge_mb),
            ),
        ),
    ]
    reason = ""
    if account.suspended:
        reason = _(
            "The workspace is suspended by the platform's operator: widgets are unavailable."
        )
    elif any(m.state == "full" for m in meters if m.key in ("replies", "tokens")):
        reason = _(
            "The plan's monthly limit is reached: the bots no longer answer visitors (they are "
            "told they can ask for a person) until next month or a larger plan. Agents can "
            "still chat."
        )
    today = datetime.now(UTC).date()
    resets_on = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return Usage(account, meters, reason, resets_on)
