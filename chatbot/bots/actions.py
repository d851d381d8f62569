"""Every write to bots. Views call these after checking the member's role."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import F

from chatbot.lib import revocation
from chatbot.tenants.models import Tenant

from .models import Bot, new_identity_secret, new_public_key

log = logging.getLogger(__name__)

# The fields a form may set; tenant, keys, secrets, generation and timestamps are not here,
# so no payload can assign them.
EDITABLE_FIELDS = (
    "name",
    "system_prompt",
    "greeting",
    "suggested_questions",
    "title",
    "accent_color",
    "position",
    "theme",
    "launcher_icon",
    "avatar_url",
    "default_locale",
    "allowed_origins",
    "enabled",
)
# Changing these may take a right away from open widget sockets (docs/widget-protocol.md,
# close codes 4003 and 4004), so they are announced to them.
REVOKING_FIELDS = frozenset({"allowed_origins", "enabled"})


def _audit(tenant: Tenant, actor: Any, action: str, bot: Bot, **details: Any) -> None:
    try:
        from chatbot.tenants.audit import record
    except ImportError:
        log.info("audit %s %s bot=%s %s", tenant.pk, action, bot.pk, details)
        return
    record(tenant, actor, action, target=f"bot:{bot.pk}", **details)


def create_bot(tenant: Tenant, actor: Any, **fields: Any) -> Bot:
    values = {k: v for k, v in fields.items() if k in EDITABLE_FIELDS}
    with transaction.atomic():
        bot = Bot.objects.create(tenant=tenant, **values)
        _audit(tenant, actor, "bot.created", bot, name=bot.name)
    return bot


def update_bot(bot: Bot, actor: Any, **fields: Any) -> Bot:
    changed = [k for k, v in fields.items() if k in EDITABLE_FIELDS and getattr(bot, k) != v]
    if not changed:
        return bot
    for key in changed:
        setattr(bot, key, fields[key])
    with transaction.atomic():
        bot.save(update_fields=[*changed, "updated_at"])
        _audit(bot.tenant, actor, "bot.updated", bot, fields=sorted(changed))
        if REVOKING_FIELDS.intersection(changed):
            revocation.announce([revocation.bot_group(bot.pk)], "bot.updated")
    return bot


def rotate_identity_secret(bot: Bot, actor: Any) -> Bot:
    """A new identity secret; every visitor session token issued before stops working."""
    with transaction.atomic():
        Bot.objects.filter(pk=bot.pk).update(
            identity_secret=new_identity_secret(),
            session_generation=F("session_generation") + 1,
        )
        bot.refresh_from_db()
        _audit(bot.tenant, actor, "bot.identity_secret_rotated", bot)
        revocation.announce([revocation.bot_group(bot.pk)], "bot.identity_secret_rotated")
    return bot


def rotate_public_key(bot: Bot, actor: Any) -> Bot:
    """A new public key: the old snippet stops working (for a key pasted somewhere wrong)."""
    with transaction.atomic():
        Bot.objects.filter(pk=bot.pk).update(
            public_key=new_public_key(), session_generation=F("session_generation") + 1
        )
        bot.refresh_from_db()
        _audit(bot.tenant, actor, "bot.public_key_rotated", bot)
        revocation.announce([revocation.bot_group(bot.pk)], "bot.public_key_rotated")
    return bot


def delete_bot(bot: Bot, actor: Any) -> None:
    with transaction.atomic():
        _audit(bot.tenant, actor, "bot.deleted", bot, name=bot.name)
        revocation.announce([revocation.bot_group(bot.pk)], "bot.deleted")
        bot.delete()
