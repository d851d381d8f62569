"""Every write to plans and accounts, and the checks of the plan's non-message limits.

The operator's actions (plan changes, suspend, resume) are recorded in the tenant's audit
log with the operator as actor.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from chatbot.lib import revocation
from chatbot.tenants import audit

from .models import Account, Plan

if TYPE_CHECKING:
    from chatbot.tenants.models import Tenant

log = logging.getLogger(__name__)


class QuotaError(Exception):
    """A plan limit refuses the change; the message says which and what to do."""


def open_account(sender: Any, instance: Tenant, created: bool = False, **kwargs: Any) -> None:
    """post_save receiver: a new tenant gets an account on the default plan (if any)."""
    if created and not kwargs.get("raw"):
        Account.objects.get_or_create(
            tenant=instance, defaults={"plan": Plan.objects.filter(is_default=True).first()}
        )


def account_for(tenant: Tenant) -> Account:
    account, _ = Account.objects.select_related("plan").get_or_create(tenant=tenant)
    return account


def plan_for(tenant: Tenant) -> Plan | None:
    return account_for(tenant).plan


def _forget_routes() -> None:
    # Replies read the plan with their route; a cached route must not outlive a change.
    from chatbot.llm import registry

    registry.forget_routes()


def set_plan(tenant: Tenant, plan: Plan | None, actor: Any) -> Account:
    with transaction.atomic():
        account = account_for(tenant)
        before = account.plan.name if account.plan else ""
        account.plan = plan
        account.save(update_fields=["plan"])
        audit.record(
            tenant,
            actor,
            "plan.changed",
            target=tenant.name,
            before=before,
            after=plan.name if plan else "",
        )
        transaction.on_commit(_forget_routes)
    return account


def suspend(tenant: Tenant, actor: Any, reason: str = "") -> Account:
    """Widgets and the API refuse the tenant; nothing is deleted (`resume` undoes it)."""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_for(tenant).pk)
        if account.suspended_at is None:
            account.suspended_at = timezone.now()
            account.suspended_reason = reason.strip()[:300]
            account.save(update_fields=["suspended_at", "suspended_reason"])
            audit.record(tenant, actor, "tenant.suspended", target=tenant.name, reason=reason)
            revocation.announce([revocation.tenant_group(tenant.pk)], "tenant.suspended")
    return account


def resume(tenant: Tenant, actor: Any) -> Account:
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_for(tenant).pk)
        if account.suspended_at is not None:
            account.suspended_at = None
            account.suspended_reason = ""
            account.save(update_fields=["suspended_at", "suspended_reason"])
            audit.record(tenant, actor, "tenant.resumed", target=tenant.name)
    return account


def is_suspended(tenant_id: int) -> bool:
    return Account.objects.filter(tenant_id=tenant_id, suspended_at__isnull=False).exists()


# --- Limits other than replies and tokens (checked by the actions that add things) ---------


def check_can_add_bot(tenant: Tenant) -> None:
    from chatbot.bots.models import Bot

    plan = plan_for(tenant)
    if plan is None or plan.max_bots is None:
        return
    if Bot.objects.for_tenant(tenant).count() >= plan.max_bots:
        raise QuotaError(
            f"The {plan.name} plan allows {plan.max_bots} bot(s); remove one or ask for a "
            "larger plan."
        )


def check_can_add_seat(tenant: Tenant) -> None:
    from chatbot.tenants.models import Invitation, Membership

    plan = plan_for(tenant)
    if plan is None or plan.max_seats is None:
        return
    pending = Invitation.objects.for_tenant(tenant).filter(
        accepted_at__isnull=True, expires_at__gt=timezone.now()
    )
    if Membership.objects.for_tenant(tenant).count() + pending.count() >= plan.max_seats:
        raise QuotaError(
            f"The {plan.name} plan allows {plan.max_seats} member(s), pending invitations "
            "included; remove one or ask for a larger plan."
        )


def knowledge_bytes(tenant: Tenant) -> int:
    from chatbot.knowledge.models import Document

    total = Document.objects.filter(source__bot__tenant=tenant).aggregate(n=Sum("chars"))["n"]
    return int(total or 0)


def check_knowledge_room(tenant: Tenant, adding: int = 0) -> None:
    plan = plan_for(tenant)
    if plan is None or plan.max_knowledge_mb is None:
        return
    limit = plan.max_knowledge_mb * 1024 * 1024
    if knowledge_bytes(tenant) + adding > limit:
        raise QuotaError(
            f"The knowledge base is full: the {plan.name} plan keeps {plan.max_knowledge_mb} "
            "MB of text. Remove sources or ask for a larger plan."
        )
