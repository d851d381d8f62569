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
        assert self.membership is not None
        kind = frame["type"]
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

    async def conv_event(self, message: dict[str, Any]) -> None:
        event = dict(message["event"])
        if event.get("type") == "typing":
            if event.get("sender") == self.channel_name:
                return  # our own typing
            event.pop("sender", None)
        await self.send_json(event)

    async def inbox_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])
