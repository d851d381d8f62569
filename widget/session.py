"""One visitor's widget session, shared by the WebSocket consumer and the HTTP fallback.

The transport parses frames and delivers events; this class authenticates the token, turns
client frames into calls to `chatbot.conversations.actions`, replays missed messages and
filters the conversation group's events for this visitor (docs/widget-protocol.md).
Methods prefixed `sync_` touch the database and run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from chatbot.billing.meter import tenant_suspended
from chatbot.bots.models import Bot
from chatbot.conversations import actions, replies, streams
from chatbot.conversations.actions import ActionError
from chatbot.conversations.broadcast import abroadcast
from chatbot.conversations.models import Conversation, Message, MessageStatus, Role, Visitor
from chatbot.conversations.payloads import conversation_payload, message_payload
from chatbot.core.hygiene import BadInput, check_json_document
from chatbot.lib import fanout
from chatbot.lib.db import db_async, queue_as

from . import ratelimit
from .tokens import TokenError, VisitorClaims, check_claims_for_bot, read_session_token, site_origin

MAX_FRAME_CHARS = 64 * 1024
MAX_DEPTH = 32
CONVERSATION_LIST_LIMIT = 20
# Group events a visitor may see; anything else on the group (agents' notes, inbox
# bookkeeping) stays server-side.
VISITOR_EVENTS = frozenset({"message", "delta", "typing", "agent.joined", "conversation", "action"})


class FrameError(Exception):
    """A client frame that fails; answered with an error frame, the session stays up."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def as_event(self, **extra: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.retry_after is not None:
            event["retry_after"] = self.retry_after
        event.update(extra)
        return event


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (a recursive walk is what deep JSON is meant to break)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def parse_frame(text: str) -> dict[str, Any]:
    """A client frame as a dict with a string `type`, or FrameError."""
    if len(text) > MAX_FRAME_CHARS:
        raise FrameError("too_large", f"A frame is at most {MAX_FRAME_CHARS} characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FrameError("bad_request", "The frame is not valid UTF-8.") from None
    try:
        frame = json.loads(text)
    except RecursionError:
        raise FrameError("bad_request", "The frame is nested too deeply.") from None
    except ValueError:
        raise FrameError("bad_request", "The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise FrameError("bad_request", "A frame is a JSON object with a type.")
    if _depth(frame) > MAX_DEPTH:
        raise FrameError("bad_request", "The frame is nested too deeply.")
    if not isinstance(frame.get("type"), str):
        raise FrameError("bad_request", "A frame needs a string `type`.")
    # NUL, lone surrogates (`"\ud800"` decodes to one), numbers beyond 64 bits: refused here,
    # naming the field, before any of them reaches the database (chatbot/core/hygiene.py).
    try:
        check_json_document(frame)
    except BadInput as exc:
        raise FrameError("bad_request", exc.message) from None
    return frame


def visitor_payload(visitor: Visitor) -> dict[str, Any]:
    return {"id": visitor.public_id, "name": visitor.name, "verified": visitor.verified}


def authenticate(token: object, *, bot: Bot | None = None) -> tuple[Bot, Visitor, VisitorClaims]:
    """Check a session token (sync). Raises TokenError; `bot_disabled` for a disabled bot."""
    claims = read_session_token(token)
    if bot is None:
        bot = (
            Bot.objects.filter(public_key=claims.bot_key).select_related("tenant__billing").first()
        )
        if bot is None:
            raise TokenError("bad_token", "The session token is for an unknown bot.")
    check_claims_for_bot(claims, bot)
    if not bot.enabled or tenant_suspended(bot):
        raise TokenError("bot_disabled", "This assistant is not available.")
    # With the visitor, the id of their most recent open conversation (`sync_select`): a new
    # visitor's hello then needs no second query.
    latest_open = (
        Conversation.objects.filter(visitor=OuterRef("pk"))
        .exclude(status="closed")
        .order_by("-updated_at")
        .values("pk")[:1]
    )
    visitor = (
        Visitor.objects.filter(bot=bot, public_id=claims.visitor_id)
        .annotate(latest_open_conversation=Subquery(latest_open))
        .first()
    )
    if visitor is None:
        raise TokenError("bad_token", "The session token names an unknown visitor.")
    visitor.bot = bot  # already loaded: later steps need no query for it
    return bot, visitor, claims


def revoked_reason(bot_id: int, claims: VisitorClaims) -> TokenError | None:
    """Why a session opened with `claims` may no longer go on, read afresh (sync): the bot
    disabled, deleted or its workspace suspended (`bot_disabled`), its secret or key rotated
    (`bad_token`), the token's origin removed (`origin_not_allowed`), or its expiry passed
    (`token_expired`). None while it stands."""
    bot = Bot.objects.filter(pk=bot_id).select_related("tenant__billing").first()
    if bot is None or not bot.enabled or tenant_suspended(bot):
        return TokenError("bot_disabled", "This assistant is not available.")
    try:
        check_claims_for_bot(claims, bot)
    except TokenError as exc:
        return exc
    if claims.expired:
        return TokenError("token_expired", "The session token has expired.")
    return None


def handshake_origin_allowed(bot: Bot, origin: str | None) -> bool:
    """The frame (platform origin) or a page on one of the bot's allowed origins."""
    return bool(origin) and (origin == site_origin() or bot.allows_origin(origin))


@dataclass
class WidgetSession:
    bot: Bot
    visitor: Visitor
    claims: VisitorClaims
    ip: str
    conversation: Conversation | None = None
    # seq → characters of that streaming message this client already has.
    streamed: dict[int, int] = field(default_factory=dict)
    # Streaming replies of other processes that the transport should watch (see
    # `watch_orphans`): (conversation id, seq, owner process).
    watch: list[tuple[int, int, str]] = field(default_factory=list)
    sender: str = ""
    # The reply `message.send` prepared in its trip, for `take_prepared_reply`.
    prepared_reply: tuple[Message, replies.Context] | None = None

    # --- Opening a conversation -------------------------------------------------------------

    def sync_select(self, public_id: object) -> Conversation | None:
        """The visitor's named conversation, else their most recent open one, else None."""
        visitor_conversations = Conversation.objects.filter(visitor=self.visitor)
        if public_id is not None:
            if not isinstance(public_id, str):
                raise FrameError("bad_request", "conversation must be an id.")
            conversation = visitor_conversations.filter(public_id=public_id).first()
            if conversation is None:
                raise FrameError("not_found", "No such conversation.")
            return conversation
        # Read with the visitor by `authenticate`, in this session's first trip.
        latest: int | str | None = getattr(self.visitor, "latest_open_conversation", "unread")
        if latest is None:
            return None
        if isinstance(latest, int):
            return visitor_conversations.filter(pk=latest).first()
        return visitor_conversations.exclude(status="closed").order_by("-updated_at").first()

    def sync_ready(self, after_seq: object = 0) -> list[dict[str, Any]]:
        """`ready`, then every message after `after_seq`, the streaming one with its text.
        Without a conversation it reads nothing (callable on the event loop then)."""
        if after_seq is None:
            after_seq = 0
        if not isinstance(after_seq, int) or isinstance(after_seq, bool) or after_seq < 0:
            raise FrameError("bad_request", "resume_after_seq must be a whole number.")
        self.streamed.clear()
        conversation = self.conversation
        if conversation is not None:
            conversation.refresh_from_db()
        events: list[dict[str, Any]] = [
            {
                "type": "ready",
                "conversation": conversation_payload(conversation) if conversation else None,
                "visitor": visitor_payload(self.visitor),
                "last_seq": conversation.last_seq if conversation else 0,
            }
        ]
        if conversation is None:
            return events
        stale_before = timezone.now() - actions.STALE_REPLY_AFTER
        rows = (
            # A reply still streaming comes again even if the client saw its seq: it missed
            # the text streamed while it was away (and this socket may have to watch it).
            Message.objects.filter(conversation=conversation)
            .filter(Q(seq__gt=after_seq) | Q(status=MessageStatus.STREAMING))
            .exclude(role=Role.NOTE)
            .select_related("author")
            .prefetch_related("attachments")
            .order_by("seq")
        )
        for row in rows:
            text = None
            partial = None
            if row.status == MessageStatus.STREAMING:
                partial = streams.read(row.conversation_id, row.seq)
            if row.status == MessageStatus.STREAMING and (
                row.updated_at < stale_before
                or (partial is not None and not fanout.process_alive(partial.owner))
            ):
                # Its process died (its heartbeat stopped, or a live reply would have saved
                # within minutes): settle it now, so the visitor can retry.
                kept = (
                    partial.text
                    if partial is not None and len(partial.text) > len(row.text)
                    else row.text
                )
                row = actions.finish_reply(
                    row.pk,
                    text=kept,
                    status=MessageStatus.INCOMPLETE if kept else MessageStatus.FAILED,
                    error_code="interrupted",
                    error_message="The reply was interrupted.",
                )
            if row.status == MessageStatus.STREAMING:
                # The store is newer than the row unless it lost the text (Redis restart).
                text = (
                    partial.text
                    if partial is not None and len(partial.text) >= len(row.text)
                    else row.text
                )
                self.streamed[row.seq] = len(text)
                if partial is not None and partial.owner != fanout.PROCESS_ID:
                    # Run by another process: watch it, in case it died a moment ago (its
                    # heartbeat outlives it by a few seconds).
                    self.watch.append((row.conversation_id, row.seq, partial.owner))
            events.append({"type": "message", "message": message_payload(row, text=text)})
        events += action_events(conversation, after_seq)
        return events

    async def watch_orphans(self) -> None:
        """Until each watched reply stops streaming, check every heartbeat whether its process
        is still alive; a dead one's reply is marked interrupted (and announced)."""
        watched, self.watch = self.watch, []
        while watched:
            await asyncio.sleep(fanout.HEARTBEAT_EVERY_SECONDS)
            watched = [
                item for item in watched if not await db_async(actions.settle_if_orphaned)(*item)
            ]

    def take_prepared_reply(self, conversation_id: int) -> tuple[Message, Any] | None:
        """For `actions.start_reply`: the reply the last send prepared, if it is this one's."""
        prepared, self.prepared_reply = self.prepared_reply, None
        if prepared is None or prepared[0].conversation_id != conversation_id:
            return None
        return prepared

    # --- Filtering the group's events -------------------------------------------------------

    def filter_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        kind = event.get("type")
        if kind not in VISITOR_EVENTS:
            return None
        if kind == "typing":
            if event.get("sender") == self.sender:
                return None
            return {"type": "typing", "who": event.get("who", "agent")}
        if kind == "message":
            message = event["message"]
            if message.get("role") == Role.NOTE:
                return None
            if message.get("status") == MessageStatus.STREAMING:
                if message["seq"] in self.streamed:
                    return None  # older than the snapshot this client already has
                self.streamed[message["seq"]] = len(message.get("text") or "")
            else:
                self.streamed.pop(message["seq"], None)
            return event
        if kind == "delta":
            seq, offset, text = event["seq"], event["offset"], event["text"]
            have = self.streamed.get(seq, offset)
            end = offset + len(text)
            if end <= have:
                return None  # already in the snapshot this client got
            if offset < have:
                text, offset = text[have - offset :], have
            self.streamed[seq] = end
            return {"type": "delta", "seq": seq, "offset": offset, "text": text}
        return event

    # --- Client frames ----------------------------------------------------------------------

    async def handle(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        """Events for the sender, and a conversation id whose reply should start now."""
        kind = frame["type"]
        queue_as(self.bot.tenant_id)  # this socket's database calls take its tenant's turns
        try:
            if kind in _LOOP_HANDLERS:
                return await _LOOP_HANDLERS[kind](self, frame)
            handler = _HANDLERS.get(kind)
            if handler is None:
                raise FrameError("unknown_type", f"Unknown frame type {kind[:40]!r}.")
            if kind in _COUNTS_AS_SEND:
                await ratelimit.ahit_all(
                    ("send:visitor", self.visitor.pk),
                    ("send:ip", self.ip),
                    ("send:bot", self.bot.pk),
                )
            return await db_async(handler)(self, frame)
        except ActionError as exc:
            raise FrameError(exc.code, exc.message) from None
        except ratelimit.RateLimited as exc:
            raise FrameError(
                "rate_limited", "Too many messages; wait a moment.", exc.retry_after
            ) from None

    # Frames answered on the event loop, without a database trip.

    async def _typing(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        if self.conversation is not None:
            await ratelimit.ahit("typing:visitor", self.visitor.pk)
            await abroadcast(
                self.conversation.pk, {"type": "typing", "who": "visitor", "sender": self.sender}
            )
        return [], None

    async def _ping(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        return [{"type": "pong"}], None

    async def _fetch(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        """`reply.fetch {seq, offset}`: a client saw a gap in a stream; send what it misses."""
        seq, offset = frame.get("seq"), frame.get("offset")
        for name, value in (("seq", seq), ("offset", offset)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise FrameError("bad_request", f"{name} must be a whole number.")
        assert isinstance(seq, int) and isinstance(offset, int)
        if self.conversation is None:
            raise FrameError("not_found", "No conversation yet.")
        partial = await streams.aread(self.conversation.pk, seq)
        if partial is not None and len(partial.text) >= offset:
            self.streamed[seq] = len(partial.text)
            return [
                {"type": "delta", "seq": seq, "offset": offset, "text": partial.text[offset:]}
            ], None
        # Finished meanwhile (or the store lost it): the row has the text.
        row = await db_async(self._message_at)(seq)
        if row is None:
            raise FrameError("not_found", "No such message in this conversation.")
        if row.status == MessageStatus.STREAMING:
            self.streamed[seq] = len(row.text)
        else:
            self.streamed.pop(seq, None)
        return [{"type": "message", "message": message_payload(row)}], None

    def _message_at(self, seq: int) -> Message | None:
        assert self.conversation is not None
        return (
            Message.objects.filter(conversation=self.conversation, seq=seq)
            .exclude(role=Role.NOTE)
            .select_related("author")
            .prefetch_related("attachments")
            .first()
        )

    # Frames that read or write the database (run in a database thread).

    def _send(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        created = self.conversation is None
        received = actions.receive_visitor_message(
            self.visitor,
            self.conversation,
            client_id=frame.get("client_id"),
            text=frame.get("text", ""),
            attachment_ids=frame.get("attachment_ids") or [],
            # The reply's row and context in this same trip, unless a reply of this process
            # still runs here (the next one waits for it, and reads its text as history).
            with_reply=self.conversation is None or not actions.reply_running(self.conversation.pk),
        )
        self.conversation = received.conversation
        if received.reply is not None:
            self.prepared_reply = (received.reply, replies.load_context(received.reply))
        ack = {
            "type": "ack",
            "client_id": received.message.client_id,
            "seq": received.message.seq,
            "duplicate": received.duplicate,
            "conversation": received.conversation.public_id,
        }
        message = {"type": "message", "message": message_payload(received.message)}
        events: list[dict[str, Any]] = [ack, message]
        if created and not received.duplicate and not received.reply_wanted:
            # A first message that asked for a person: the answer (the system line, the new
            # status) was announced before this socket could follow the new conversation.
            events += self._said_after(received.conversation.pk, received.message.seq)
        return events, (received.conversation.pk if received.reply_wanted else None)

    def _said_after(self, conversation_id: int, seq: int) -> list[dict[str, Any]]:
        conversation = Conversation.objects.get(pk=conversation_id)
        rows = (
            Message.objects.filter(conversation=conversation, seq__gt=seq)
            .exclude(role=Role.NOTE)
            .select_related("author")
            .order_by("seq")
        )
        events: list[dict[str, Any]] = [
            {"type": "message", "message": message_payload(row)} for row in rows
        ]
        events.append({"type": "conversation", "conversation": conversation_payload(conversation)})
        return events

    def _feedback(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        if self.conversation is None:
            raise FrameError("not_found", "No conversation yet.")
        message = actions.set_feedback(
            self.visitor, self.conversation, frame.get("seq"), frame.get("value")
        )
        return [{"type": "message", "message": message_payload(message)}], None

    def _retry(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        if self.conversation is None or not actions.can_retry_reply(
            self.visitor, self.conversation
        ):
            raise FrameError("bad_request", "There is no failed reply to retry.")
        return [], self.conversation.pk

    def _new(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        self.conversation = actions.start_conversation(self.visitor)
        return self.sync_ready(0), None

    def _open(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        if frame.get("conversation") is None:
            raise FrameError("bad_request", "conversation is required.")
        self.conversation = self.sync_select(frame.get("conversation"))
        return self.sync_ready(frame.get("resume_after_seq") or 0), None

    def _list(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        # One query: each conversation with the text of its last visible message.
        last_text = (
            Message.objects.filter(
                conversation=OuterRef("pk"), role__in=[Role.VISITOR, Role.ASSISTANT, Role.AGENT]
            )
            .exclude(text="")
            .order_by("-seq")
            .values("text")[:1]
        )
        conversations = (
            Conversation.objects.filter(visitor=self.visitor)
            .annotate(preview=Subquery(last_text))
            .order_by("-updated_at")[:CONVERSATION_LIST_LIMIT]
        )
        items = [
            conversation_payload(conversation, preview=conversation.preview or "")
            for conversation in conversations
        ]
        return [{"type": "conversations", "items": items}], None

    def _page(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        """`page {url}`: a single-page app moved to another URL (the host API's `update`).

        Only a URL on the page's own origin (the token's) is kept, for agents to see."""
        url = frame.get("url")
        origin = self.claims.origin
        if (
            not isinstance(url, str)
            or len(url) > 500
            or "\x00" in url
            or not (url == origin or url.startswith(origin + "/") or url.startswith(origin + "?"))
        ):
            raise FrameError("bad_request", "url must be an address on this site.")
        ratelimit.hit("typing:visitor", self.visitor.pk)
        actions.note_visitor_context(self.visitor, page_url=url, user_agent=self.visitor.user_agent)
        return [], None

    def _confirm(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        """`action.confirm {id, accept}`: the visitor's answer to a confirmation card; the
        reply continues (running the action first when confirmed)."""
        if self.conversation is None:
            raise FrameError("not_found", "No conversation yet.")
        from chatbot.tools.actions import answer_confirmation

        return [], answer_confirmation(
            self.visitor, self.conversation, frame.get("id"), frame.get("accept")
        )

    def _handoff(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        if self.conversation is None:
            raise FrameError("not_found", "No conversation yet.")
        actions.request_handoff(self.visitor, self.conversation)
        return [], None


_LOOP_HANDLERS = {
    "typing": WidgetSession._typing,
    "ping": WidgetSession._ping,
    "reply.fetch": WidgetSession._fetch,
}
# Frames that count against the sending limits (they may call the model).
_COUNTS_AS_SEND = frozenset({"message.send", "reply.retry", "action.confirm"})
_HANDLERS = {
    "message.send": WidgetSession._send,
    "feedback": WidgetSession._feedback,
    "reply.retry": WidgetSession._retry,
    "conversation.new": WidgetSession._new,
    "conversation.open": WidgetSession._open,
    "conversations.list": WidgetSession._list,
    "handoff.request": WidgetSession._handoff,
    "page": WidgetSession._page,
    "action.confirm": WidgetSession._confirm,
}


def action_events(conversation: Conversation, after_seq: int) -> list[dict[str, Any]]:
    """The actions of replies after `after_seq`, and every one still awaiting the visitor."""
    from chatbot.tools.actions import call_payload
    from chatbot.tools.models import ActionCall, CallStatus

    calls = (
        ActionCall.objects.filter(conversation=conversation)
        .filter(Q(message__seq__gt=after_seq) | Q(status=CallStatus.AWAITING))
        .select_related("action", "message")
        .order_by("created_at")
    )
    return [{"type": "action", "action": call_payload(call)} for call in calls]
