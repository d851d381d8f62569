"""Tell open sockets that a right they were opened with may be gone.

A socket checks its rights once, at the handshake; what is decided later (a member removed,
a role changed, a log-out, a workspace deleted or suspended, a bot disabled, its secret
rotated, an origin removed) must reach it without waiting for the client's next frame. The
action that changes the right calls `announce` with the groups it touches; after commit, a
`revoke.check` event goes through `chatbot.lib.fanout` (this process's sockets at once, other
processes' through Redis), and every socket following one of those groups reads its rights
again from the database and closes (or downgrades) itself.

The event carries no verdict, only a reason for the log: the socket decides from the rows, so
a notice that arrives late, twice, or for a change that was undone, can never close a socket
that is still allowed. Group names are built here from database ids.

This module sits below the domains (tenants, bots, billing call it; the consumers follow
its groups), so it imports none of them.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db import transaction

from . import fanout

log = logging.getLogger(__name__)

EVENT_TYPE = "revoke.check"


def user_group(user_id: int) -> str:
    """Every dashboard socket of one user (membership, role, log-out)."""
    return f"revoke.user.{int(user_id)}"


def tenant_group(tenant_id: int) -> str:
    """Every socket of one workspace, dashboard and widget (deletion, suspension)."""
    return f"revoke.tenant.{int(tenant_id)}"


def bot_group(bot_id: int) -> str:
    """Every widget socket of one bot (disabled, deleted, secret or key rotated, origins)."""
    return f"revoke.bot.{int(bot_id)}"


def session_digest(session_key: str | None) -> str:
    """What names a log-in session in a notice: never the key itself (it is a credential)."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()[:32]


def announce(groups: list[str], reason: str, *, ended_session: str | None = None) -> None:
    """After the current transaction commits (at once outside one), ask the sockets in
    `groups` to check their rights again. Never inside a rollback: a change that did not
    happen must not be announced.

    `ended_session` names a session that is ending as we speak (a log-out sends its signal
    before the session row is gone, so reading the row could still find it)."""
    event: dict[str, Any] = {"type": EVENT_TYPE, "reason": reason}
    if ended_session:
        event["ended_session"] = session_digest(ended_session)

    def send() -> None:
        log.info("revocation notice reason=%s groups=%s", reason, ",".join(groups))
        for group in groups:
            fanout.publish_soon(group, event)

    transaction.on_commit(send)
