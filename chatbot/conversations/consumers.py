"""The agents' live socket: `/ws/dashboard/` (session cookie, same-origin pages only).

Client → server: `{"type": "subscribe.inbox"}` (the active workspace's inbox),
`{"type": "subscribe.conversation", "conversation": "c_..."}` (one conversation; replaces
the previous one), `{"type": "typing"}` (the agent types in that conversation).
Server → client: `subscribed`, the conversation group's events (`message`, `delta`,
`typing`, `conversation`) and the inbox's (`inbox.conversation`, `inbox.waiting`), `error`.

Group names are built here from database ids, never from client text, and a conversation
is joined only after checking it belongs to the member's active workspace.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import SESSION_KEY as AUTH_USER_KEY
from django.contrib.sessions.backends.base import SessionBase

from chatbot.core.hygiene import BadInput, check_json_document
from chatbot.lib import revocation
from chatbot.lib.db import db_async
from chatbot.lib.sockets import FanoutWebsocketConsumer
from chatbot.tenants.middleware import SESSION_KEY
from chatbot.tenants.models import Membership

from .broadcast import group_for
from .models import Conversation
from .takeover import agent_typing, inbox_group

log = logging.getLogger(__name__)

MAX_FRAME_CHARS = 4096


class Close:
    # The member's right went away while the socket was open (removed, logged out, the
    # workspace deleted); the page reloads into whatever it may still see.
    NOT_ALLOWED = 4003


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def same_site_origin(scope: dict[str, Any]) -> bool:
    """The handshake comes from one of our own pages (as Django's CSRF check would say).

    Browsers always send Origin on WebSocket handshakes; a page on another site carrying
    the member's cookie has its own origin there, which matches neither our configured
    site nor the Host it connected to.
    """
    origin = _header(scope, b"origin")
    host = _header(scope, b"host")
    if not origin:
        return False
    site = urlsplit(settings.SITE_URL)
    if origin == f"{site.scheme}://{site.netloc}" or origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host


def _membership(user_id: int, chosen_tenant: object) -> Membership | None:
    memberships = Membership.objects.filter(user_id=user_id).order_by("id")
    if isinstance(chosen_tenant, int):
        found = memberships.filter(tenant_id=chosen_tenant).first()
        if found is not None:
            return found
    return memberships.first()


def _session_user_id(session: SessionBase | None) -> str | None:
    """Who the socket's log-in session belongs to now, read afresh from the store
    (None once it was logged out, flushed or expired)."""
    if session is None or not session.session_key:
        return None
    fresh = session.__class__(session.session_key)
    value = fresh.get(AUTH_USER_KEY)
    return str(value) if value is not None else None


def _still_member(user_id: int, tenant_id: int, session: SessionBase | None) -> Membership | None:
    """The membership this socket was opened with, if its session and the membership both
    still stand (the role may have changed: the caller compares)."""
    if _session_user_id(session) != str(user_id):
        return None
    return (
        Membership.objects.filter(user_id=user_id, tenant_id=tenant_id)
        .select_related("tenant")
        .first()
    )


def _conversation_in(tenant_id: int, public_id: object) -> Conversation | None:
    if not isinstance(public_id, str) or len(public_id) > 40:
        return None
    return Conversation.objects.filter(bot__tenant_id=tenant_id, public_id=public_id).first()


class InboxConsumer(FanoutWebsocketConsumer):
    socket_kind = "dashboard"
    membership: Membership | None = None
    conversation_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not same_site_origin(self.scope):
            await self.close()  # refused before accept
            return
        session = self.scope.get("session")
        chosen = session.get(SESSION_KEY) if session is not None else None
        self.membership = await db_async(_membership)(user.pk, chosen)
        if self.membership is None:
            await self.close()
            return
        self.user = user
        # Followed before accept: a revocation decided from now on reaches this socket.
        await self.follow(revocation.user_group(user.pk))
        await self.follow(revocation.tenant_group(self.membership.tenant_id))
        await self.accept()

    async def send_json(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event, separators=(",", ":")))

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            await self._error("bad_request", "Send JSON text frames of at most 4 KB.")
            return
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):
            await self._error("bad_request", "The frame is not valid JSON.")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._error("bad_request", "A frame is a JSON object with a type.")
            return
        try:
            check_json_document(frame)
        except BadInput as exc:
            await self._error("bad_request", exc.message)
            return
        if self.membership is None:
            return  # revoked: closing
        kind = frame["type"]
        if kind.startswith("subscribe.") and not await self._recheck():
            return
        if kind == "subscribe.inbox":
            await self.follow(inbox_group(self.membership.tenant_id))
            await self.send_json({"type": "subscribed", "to": "inbox"})
        elif kind == "subscribe.conversation":
            conversation = await db_async(_conversation_in)(
                self.membership.tenant_id, frame.get("conversation")
            )
            if conversation is None:
                # A foreign conversation answers exactly like a missing one.
                await self._error("not_found", "No such conversation.")
                return
            if self.conversation_id is not None:
                self.unfollow(group_for(self.conversation_id))
            self.conversation_id = conversation.pk
            await self.follow(group_for(conversation.pk))
            await self.send_json(
                {"type": "subscribed", "to": "conversation", "conversation": conversation.public_id}
            )
        elif kind == "typing":
            if self.conversation_id is None:
                await self._error("not_subscribed", "Subscribe to a conversation first.")
                return
            # No database trip: the name is the connected member's.
            agent_typing(self.conversation_id, self.user, self.channel_name)
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self._error("unknown_type", f"Unknown frame type {kind[:40]!r}.")

    async def _recheck(self) -> bool:
        """Read the member's rights again; close the socket if they are gone, note a new
        role (a downgrade keeps the socket: every role may watch the inbox). True if the
        socket stays open."""
        if self.membership is None:
            return False
        fresh = await db_async(_still_member)(
            self.user.pk, self.membership.tenant_id, self.scope.get("session")
        )
        if fresh is None:
            log.info(
                "dashboard socket closed: access revoked user=%s tenant=%s",
                self.user.pk,
                self.membership.tenant_id,
            )
            await self._close_revoked()
            return False
        if fresh.role != self.membership.role:
            self.membership = fresh
            await self.send_json({"type": "membership", "role": fresh.role})
        return True

    async def _close_revoked(self) -> None:
        """Close, and hear nothing more first: no event may slip out after the verdict."""
        self.unfollow_all()
        self.membership = None
        await self.close(code=Close.NOT_ALLOWED)

    async def revoke_check(self, message: dict[str, Any]) -> None:
        """A revocation notice (`chatbot.lib.revocation`): check again, from the rows."""
        if self.membership is None:
            return
        session = self.scope.get("session")
        ended = message.get("ended_session")
        if (
            ended
            and session is not None
            and ended == revocation.session_digest(session.session_key)
        ):
            await self._close_revoked()
            return
        await self._recheck()

    async def conv_event(self, message: dict[str, Any]) -> None:
        if self.membership is None:
            return
        event = dict(message["event"])
        if event.get("type") == "typing":
            if event.get("sender") == self.channel_name:
                return  # our own typing
            event.pop("sender", None)
        await self.send_json(event)

    async def inbox_event(self, message: dict[str, Any]) -> None:
        if self.membership is not None:
            await self.send_json(message["event"])
