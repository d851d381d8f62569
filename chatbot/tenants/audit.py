"""The audit log: who did what and when, for administrative actions.

Any app records an event with one call, inside the same transaction as the change it
describes (so a rolled-back change leaves no event behind):

    from chatbot.tenants import audit
    audit.record(tenant, request.user, "bot.updated", target=bot.name, fields=["greeting"])

Actions are dotted "<noun>.<verb>" names: member.invited, member.removed, member.role_changed,
key.created, key.revoked, bot.updated, conversation.exported, conversation.erased,
settings.updated, tenant.deleted. `details` must be JSON-serialisable and must never hold a
secret (keys, tokens, passwords).
"""

from __future__ import annotations

import logging
from typing import Any

from .models import AuditEvent, Tenant

log = logging.getLogger("parley.audit")


def record(
    tenant: Tenant | None, actor: Any, action: str, target: str = "", **details: Any
) -> AuditEvent:
    """Write one audit event. `actor` is a User, or None/AnonymousUser for the system."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    event = AuditEvent.objects.create(
        tenant=tenant,
        actor=user,
        actor_email=user.email if user is not None else "",
        action=action,
        target=str(target)[:200],
        details=details,
    )
    # The same line goes to the application log, which outlives a deleted tenant.
    log.info(
        "audit",
        extra={
            "tenant": tenant.pk if tenant is not None else details.get("tenant_id"),
            "actor": event.actor_email or "system",
            "action": action,
            "target": event.target,
        },
    )
    return event
