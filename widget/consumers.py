"""The widget's WebSocket: `/ws/widget/<public key>` (docs/widget-protocol.md, section 5)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from chatbot.billing.meter import tenant_suspended
from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.broadcast import group_for
from chatbot.lib import revocation
from chatbot.lib.db import db_async
from chatbot.lib.sockets import FanoutWebsocketConsumer

from . import botcache, ratelimit
from .session import (
    FrameError,
    WidgetSession,
    authenticate,
    handshake_origin_allowed,
    parse_frame,
    revoked_reason,
)
from .tokens import TokenError

log = logging.getLogger(__name__)

HELLO_TIMEOUT_SECONDS = 10.0


class Close:
    PROTOCOL = 4000
    BAD_TOKEN = 4001
    TOKEN_EXPIRED = 4002
    ORIGIN_NOT_ALLOWED = 4003
    BOT_DISABLED = 4004
    TOO_LARGE = 4009
    RATE_LIMITED = 4029


TOKEN_CLOSE_CODES = {
    "bad_token": Close.BAD_TOKEN,
    "token_expired": Close.TOKEN_EXPIRED,
    "origin_not_allowed": Close.ORIGIN_NOT_ALLOWED,
    "bot_disabled": Close.BOT_DISABLED,
}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:
                return None
    return None


def client_ip(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _open_session(
    bot: Bot,
    token: object,
    origin: str | None,
    user_agent: str,
    ip: str,
    sender: str,
    conversation: object,
) -> WidgetSession:
    """Check the hello's token and open the visitor's session (one database trip)."""
    bot, visitor, claims = authenticate(token, bot=bot)
    # A page (not our frame) connecting directly must be the page the token was for.
    if origin != claims.origin and not handshake_origin_is_frame(origin):
        raise TokenError("origin_not_allowed", "The token is for another site.")
    # For the agents' view of the visitor: the host page's origin and the browser.
    actions.note_visitor_context(visitor, page_url=claims.origin, user_agent=user_agent)
    session = WidgetSession(bot, visitor, claims, ip, sender=sender)
    session.conversation = session.sync_select(conversation)
    return session


class WidgetConsumer(FanoutWebsocketConsumer):
    socket_kind = "widget"
    session: WidgetSession | None = None
    group: str | None = None
    hello_timer: asyncio.Task[None] | None = None
    expiry_timer: asyncio.Task[None] | None = None
    revoked = False  # closing after a revocation: the client's frames are no longer read
    orphan_watch: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        key = self.scope["url_route"]["kwargs"]["public_key"]
        origin = _header(self.scope, b"origin")
        bot = await botcache.bot_for_key(key)
        # Refused before accept (the browser sees a failed handshake): no bot, no or a
        # foreign Origin. Exact string match, so look-alike hosts never pass.
        if (
            bot is None
            or not bot.enabled
            or tenant_suspended(bot)
            or not handshake_origin_allowed(bot, origin)
        ):
            log.info("widget handshake refused (key=%s origin=%r)", key[:12], origin)
            await self.close()
            return
        self.bot = bot
        self.origin = origin
        self.ip = client_ip(self.scope)
        await self.accept()
        try:
            await ratelimit.ahit("connect:ip", self.ip)
        except ratelimit.RateLimited as exc:
            await self.close(code=Close.RATE_LIMITED, reason=f"rate_limited:{exc.retry_after}")
            return
        self.hello_timer = asyncio.create_task(self._hello_deadline())

    async def _hello_deadline(self) -> None:
        await asyncio.sleep(HELLO_TIMEOUT_SECONDS)
        if self.session is None:
            await self.close(code=Close.PROTOCOL, reason="protocol")

    async def disconnect(self, code: int) -> None:
        if self.hello_timer is not None:
            self.hello_timer.cancel()
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
        if self.orphan_watch is not None:
            self.orphan_watch.cancel()

    def _watch_orphans(self) -> None:
        """Watch replies of other processes that this socket resumed (at most one watcher)."""
        session = self.session
        if session is None or not session.watch:
            return
        if self.orphan_watch is not None:
            self.orphan_watch.cancel()
        self.orphan_watch = asyncio.create_task(session.watch_orphans())

    async def _follow(self) -> None:
        """Subscribe to the session's current conversation (before reading its state)."""
        session = self.session
        assert session is not None
        wanted = group_for(session.conversation.pk) if session.conversation else None
        if wanted == self.group:
            return
        if self.group is not None:
            self.unfollow(self.group)
        self.group = wanted
        if wanted is not None:
            await self.follow(wanted)

    async def send_json(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event, separators=(",", ":")))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.revoked:
            return
        if text_data is None:
            await self.send_json(
                FrameError("binary", "Binary frames are not supported; send JSON text.").as_event()
            )
            return
        try:
            frame = parse_frame(text_data)
        except FrameError as exc:
            if exc.code == "too_large":
                await self.close(code=Close.TOO_LARGE, reason="too_large")
            else:
                await self.send_json(exc.as_event())
            return
        if self.session is not None and self.session.claims.expired:
            await self.close(code=Close.TOKEN_EXPIRED, reason="token_expired")
            return
        try:
            if frame["type"] == "hello":
                await self._hello(frame)
            elif self.session is None:
                raise FrameError("not_ready", "Send hello first.")
            elif frame["type"] == "token.refresh":
                await self._refresh(frame)
            else:
                await self._handle(frame)
        except FrameError as exc:
            extra = (
                {"client_id": frame["client_id"]} if isinstance(frame.get("client_id"), str) else {}
            )
            await self.send_json(exc.as_event(**extra))
        except TokenError as exc:
            await self.close(code=TOKEN_CLOSE_CODES.get(exc.code, Close.BAD_TOKEN), reason=exc.code)

    async def _hello(self, frame: dict[str, Any]) -> None:
        if self.session is not None:
            raise FrameError("bad_request", "hello was already sent.")
        session = await db_async(_open_session)(
            self.bot,
            frame.get("token"),
            self.origin,
            _header(self.scope, b"user-agent") or "",
            self.ip,
            self.channel_name,
            frame.get("conversation"),
        )
        self.session = session
        if self.hello_timer is not None:
            self.hello_timer.cancel()
        # Revocations decided from now on reach this socket (chatbot.lib.revocation); both
        # groups joined at once: with Redis each is a round trip before `ready`.
        await asyncio.gather(
            self.follow(revocation.bot_group(self.bot.pk)),
            self.follow(revocation.tenant_group(self.bot.tenant_id)),
        )
        self._arm_expiry()
        await self._follow()
        after_seq = frame.get("resume_after_seq") or 0
        # A visitor without a conversation yet has nothing to read: no database trip.
        ready = (
            session.sync_ready(after_seq)
            if session.conversation is None
            else await db_async(session.sync_ready)(after_seq)
        )
        for event in ready:
            await self.send_json(event)
        self._watch_orphans()

    async def _refresh(self, frame: dict[str, Any]) -> None:
        assert self.session is not None
        _bot, visitor, claims = await db_async(authenticate)(frame.get("token"), bot=self.bot)
        if visitor.pk != self.session.visitor.pk:
            raise FrameError("bad_request", "A refreshed token must be for the same visitor.")
        self.session.claims = claims
        self._arm_expiry()

    def _arm_expiry(self) -> None:
        """Close with 4002 when the token expires, even if the client sends nothing."""
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
        self.expiry_timer = asyncio.create_task(self._expire())

    async def _expire(self) -> None:
        session = self.session
        assert session is not None
        claims = session.claims
        await asyncio.sleep(max(0.0, claims.expires_at - time.time()))
        if session.claims is claims:  # not refreshed meanwhile
            await self._revoke(TokenError("token_expired", "The session token has expired."))

    async def _revoke(self, reason: TokenError) -> None:
        """Close with the protocol's code for the reason; hear nothing more before that."""
        log.info("widget socket closed: %s (bot=%s)", reason.code, self.bot.pk)
        self.unfollow_all()
        self.session = None
        self.revoked = True
        await self.close(
            code=TOKEN_CLOSE_CODES.get(reason.code, Close.BAD_TOKEN), reason=reason.code
        )

    async def revoke_check(self, message: dict[str, Any]) -> None:
        """A revocation notice: check this session's rights again, from the rows."""
        session = self.session
        if session is None:
            return
        reason = await db_async(revoked_reason)(self.bot.pk, session.claims)
        if reason is not None and self.session is session:
            await self._revoke(reason)

    async def _handle(self, frame: dict[str, Any]) -> None:
        session = self.session
        assert session is not None
        events, reply_conversation = await session.handle(frame)
        # Follow a newly created or reopened conversation before anything is said in it.
        await self._follow()
        for event in events:
            await self.send_json(event)
        self._watch_orphans()
        if reply_conversation is not None:
            actions.start_reply(reply_conversation, session.take_prepared_reply(reply_conversation))

    async def conv_event(self, message: dict[str, Any]) -> None:
        if self.session is None:
            return
        event = self.session.filter_event(message["event"])
        if event is not None:
            await self.send_json(event)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        for timer in (self.hello_timer, self.expiry_timer):
            if timer is not None and timer is not asyncio.current_task():
                timer.cancel()
        with contextlib.suppress(Exception):
            await super().close(code=code, reason=reason)


def handshake_origin_is_frame(origin: str | None) -> bool:
    from .tokens import site_origin

    return origin == site_origin()
