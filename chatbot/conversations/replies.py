"""The bot's reply: assemble the history, stream from the model route, publish, persist.

Started only through `actions.start_reply`. The text so far lives in `streams` (updated
before each delta is published) and in the message row (every few seconds), so a visitor
reconnecting to any process gets it; see docs/widget-protocol.md, "Where the streaming text
lives". Between the visitor's message and the upstream request there is one trip to a
database thread (`_prepare`: the reply's row, the history, knowledge and the route); during
the stream there is none per delta.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.db.models import Exists, OuterRef

from chatbot.billing import meter
from chatbot.bots.models import Bot
from chatbot.knowledge.models import Chunk
from chatbot.lib.db import db_async
from chatbot.llm.types import (
    ChatMessage,
    Event,
    Finish,
    ImagePart,
    Routed,
    StreamError,
    TextDelta,
    TextPart,
    Usage,
)
from chatbot.tools.loop import HAS_ACTIONS, ToolBox, ToolRun, call_messages, load_toolbox

from . import actions, streams
from .broadcast import abroadcast
from .models import Message, MessageStatus, Role

log = logging.getLogger(__name__)

_HAS_KNOWLEDGE = Exists(Chunk.objects.filter(bot_id=OuterRef("pk")))

FLUSH_EVERY_SECONDS = 0.05
PERSIST_EVERY_SECONDS = 2.0
HISTORY_MESSAGES = 30
SEARCH_TURNS = 3  # visitor messages that make the knowledge search (the last one counts most)
_CITED = re.compile(r"\[(\d{1,2})\]")


async def stream_reply(
    bot: Bot,
    history: Sequence[ChatMessage],
    *,
    knowledge: Sequence[Any] = (),
    route: Any = None,
    **tooling: Any,
) -> AsyncGenerator[Event, None]:
    """The LLM service's `stream_reply`, imported late so this module loads without it.
    `tooling` (tools, system_note) comes only from the tool loop."""
    try:
        from chatbot.llm.service import stream_reply as service_stream_reply
    except ImportError:
        yield Finish("error", StreamError("offline", "No model service is installed."))
        return
    async for event in service_stream_reply(
        bot, history, knowledge=knowledge, route=route, **tooling
    ):
        yield event


def _route(bot: Bot) -> Any:
    """The bot's model route, read once per reply (None without the LLM service)."""
    try:
        from chatbot.llm.service import resolve_route
    except ImportError:
        return None
    return resolve_route(bot)


def route_accepts_images(bot: Bot) -> bool:
    try:
        from chatbot.llm.service import route_accepts_images as accepts
    except ImportError:
        return False
    return bool(accepts(bot))


def bot_model_status(bot: Bot) -> str:
    try:
        from chatbot.llm.service import bot_model_status as status
    except ImportError:
        return "offline"
    return str(status(bot))


def _retrieve(bot: Bot, turns: list[str]) -> list[Any]:
    """Passages for the visitor's latest message, `turns` being their messages oldest first."""
    if not getattr(bot, "has_knowledge", True):
        return []  # nothing to search: no query, no stemming
    try:
        from chatbot.knowledge.retrieval import retrieve
    except ImportError:
        return []
    try:
        return list(retrieve(bot, turns, k=5))
    except Exception:  # knowledge is a bonus: a failing index must not cost the reply
        log.exception("knowledge retrieval failed for bot %s", bot.pk)
        return []


@dataclass
class Context:
    bot: Bot
    history: list[ChatMessage]
    knowledge: list[Any]
    with_images: bool
    route: Any = field(default=None)
    # Only for bots with actions (None otherwise: no extra query, no extra work).
    toolbox: ToolBox | None = None
    question: str = ""


@dataclass(frozen=True, slots=True)
class _Turn:
    """A message of the history, as much of it as the model's request needs."""

    pk: int
    role: str
    text: str
    attachments: Sequence[Any] = ()


def _load_context(conversation_id: int) -> Context:
    # The bot is read again for every reply: an owner's edit (persona, route) applies to the
    # next reply of every open conversation. The tenant's plan and standing come in the same
    # query, for the quota check (billing.meter), and so do the actions and knowledge flags:
    # a bot without actions or knowledge pays nothing for them.
    bot = (
        Bot.objects.select_related("tenant__billing__plan")
        .annotate(has_actions=HAS_ACTIONS, has_knowledge=_HAS_KNOWLEDGE)
        .get(conversations__pk=conversation_id)
    )
    toolbox, calls_by_message = (
        load_toolbox(bot, conversation_id) if bot.has_actions else (None, {})
    )
    route = _route(bot)
    with_images = bool(route.accepts_images) if route is not None else False
    history_rows = (
        Message.objects.filter(conversation_id=conversation_id)
        .exclude(role__in=[Role.NOTE, Role.SYSTEM])
        .exclude(status__in=[MessageStatus.STREAMING, MessageStatus.FAILED])
        .order_by("-seq")
    )
    rows: list[_Turn]
    if with_images:
        rows = [
            _Turn(row.pk, row.role, row.text, list(row.attachments.all()))
            for row in history_rows.prefetch_related("attachments")[:HISTORY_MESSAGES]
        ]
    else:  # the three columns only: no model instances for up to 30 rows per reply
        rows = [
            _Turn(*values)
            for values in history_rows.values_list("pk", "role", "text")[:HISTORY_MESSAGES]
        ]
    rows.reverse()
    history: list[ChatMessage] = []
    for row in rows:
        if row.role == Role.VISITOR:
            parts: list[TextPart | ImagePart] = []
            if with_images:
                for attachment in row.attachments:
                    try:
                        from django.core.files.storage import default_storage

                        with default_storage.open(attachment.stored_name) as handle:
                            parts.append(ImagePart(handle.read(), attachment.content_type))
                    except OSError:
                        log.warning("attachment %s is missing", attachment.public_id)
            if row.text:
                parts.append(TextPart(row.text))
            if parts:
                history.append(ChatMessage("user", tuple(parts)))
        else:
            if calls_by_message and row.pk in calls_by_message:
                history.extend(call_messages(calls_by_message[row.pk]))
            if row.text:
                history.append(ChatMessage.text("assistant", row.text))
    # The search follows the conversation: a follow-up ("and for e-bikes?") keeps the subject
    # of the visitor's earlier messages (weighted lower; see knowledge.retrieval).
    turns = [r.text for r in rows if r.role == Role.VISITOR and r.text][-SEARCH_TURNS:]
    knowledge = _retrieve(bot, turns) if turns else []
    question = turns[-1] if turns else ""
    return Context(bot, history, knowledge, with_images, route, toolbox, question=question)


def _prepare(conversation_id: int) -> tuple[Message, Context] | None:
    """The reply's `streaming` row and what the model needs, in one database trip."""
    message = actions.create_reply_message(conversation_id)
    if message is None:
        return None
    return message, load_context(message)


def load_context(reply: Message) -> Context:
    """What the model needs for `reply` (a `streaming` row just created), read in the
    caller's database trip (sync)."""
    context = _load_context(reply.conversation_id)
    # finish_reply stores the outcome through this row without reading it again.
    reply.conversation.bot = context.bot
    return context


def _citations(knowledge: Sequence[Any], text: str) -> list[dict[str, str]]:
    """The sources the reply used: those it cites by number ([2]), in the prompt's numbering
    (relevant passages only). A reply that cites none is credited with the relevant passages;
    one made without any (the bot said it does not know) cites nothing. Each citation has a
    title, so the widget never shows an empty "Sources:" line; `passage` is for agents.
    """
    relevant = [p for p in knowledge if getattr(p, "relevant", True)]
    cited = {int(n) for n in _CITED.findall(text)}
    chosen = [p for number, p in enumerate(relevant, start=1) if number in cited] or relevant
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for passage in chosen:
        url = str(getattr(passage, "url", "") or "")
        title = str(getattr(passage, "title", "") or "") or url or "Untitled"
        entry = seen.setdefault(
            (title, url),
            {"title": title, "url": url, "heading": str(getattr(passage, "heading", "") or "")},
        )
        excerpt = str(getattr(passage, "text", "") or "").strip()
        if excerpt:
            entry["passage"] = (entry.get("passage", "") + "\n…\n" + excerpt).strip("\n…")[:2000]
    return list(seen.values())


def _unanswered(knowledge: Sequence[Any]) -> bool:
    """Retrieval found passages, and none of them answers: the bot was told to say so."""
    return bool(knowledge) and not any(getattr(p, "relevant", True) for p in knowledge)


def _finish(message: Message, question: str, unanswered: bool, **fields: Any) -> None:
    """Store the reply's outcome and, when knowledge had no answer, the question: one trip."""
    message_id = message.pk
    actions.finish_reply(message_id, row=message, **fields)
    if unanswered and question:
        try:
            from chatbot.knowledge.actions import record_unanswered
        except ImportError:
            return
        record_unanswered(message_id, question)


async def run_reply(
    conversation_id: int, reply: Message | None = None, context: Context | None = None
) -> None:
    """The bot's reply in the conversation. `reply`: its `streaming` row when the visitor's
    message trip made it (with its `context`, unless a reply before it was still running);
    else one trip makes both here."""
    if reply is None:
        prepared = await db_async(_prepare)(conversation_id)
        if prepared is None:
            return
        message, context = prepared
    else:
        message = reply
        if context is None:
            context = await db_async(load_context)(message)
    bot, history, knowledge = context.bot, context.history, context.knowledge
    # The quota check counts this reply, once (one Redis round trip, no query).
    refusal = await meter.areserve(meter.limits_for_bot(bot), message.pk)
    if refusal is not None:
        log.info(
            "reply refused tenant=%s code=%s reason=%s",
            bot.tenant_id,
            refusal.code,
            refusal.owner_reason,
        )
        await _store(
            message,
            "",
            StreamError(cast(Any, refusal.code), refusal.visitor_message),
            {},
            None,
            time.monotonic(),
            context,
            _nothing_to_flush,
            bot.tenant_id,
        )
        return

    text = ""
    sent = 0  # characters already broadcast
    started = time.monotonic()
    ttft_ms: int | None = None
    meta: dict[str, Any] = {}
    error: StreamError | None = None
    stop_reason: StreamError | None = None
    flush_lock = asyncio.Lock()
    reply_task = asyncio.current_task()

    async def flush() -> None:
        nonlocal sent
        async with flush_lock:
            if sent == len(text):
                return
            snapshot = text
            # Stored first, then published: a reader who subscribed and then read the store
            # never misses the text in between.
            await streams.save(conversation_id, message.seq, snapshot)
            delta = {"type": "delta", "seq": message.seq, "offset": sent, "text": snapshot[sent:]}
            sent = len(snapshot)
            await abroadcast(conversation_id, delta)

    async def flusher() -> None:
        """Batch deltas every FLUSH_EVERY_SECONDS and save the row every few seconds, also
        while the model stalls; stop the reply when the bot no longer owns the conversation."""
        nonlocal stop_reason
        last_persist = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_EVERY_SECONDS)
            await flush()
            if time.monotonic() - last_persist >= PERSIST_EVERY_SECONDS:
                last_persist = time.monotonic()
                keep_going = await db_async(actions.save_partial_reply)(message.pk, text)
                if not keep_going and reply_task is not None:
                    stop_reason = StreamError("cancelled", "A person took over the conversation.")
                    reply_task.cancel()
                    return

    flusher_task = asyncio.create_task(flusher())
    events: AsyncIterator[Event]
    if context.toolbox is None:
        events = stream_reply(bot, history, knowledge=knowledge, route=context.route)
    else:
        tool_run = ToolRun(
            stream_reply, bot, context.toolbox, conversation_id, message.pk, message.seq
        )
        events = tool_run.events(history, knowledge=knowledge, route=context.route)
    try:
        async for event in events:
            if isinstance(event, Routed):
                meta["endpoint"], meta["model"] = event.endpoint, event.model
            elif isinstance(event, TextDelta):
                text += event.text
                if ttft_ms is None:
                    ttft_ms = int((time.monotonic() - started) * 1000)
                    # The first words go out at once (time to first token is what visitors
                    # feel); the rest is batched by the flusher.
                    await flush()
            elif isinstance(event, Usage):
                meta["tokens_in"] = event.prompt_tokens
                meta["tokens_out"] = event.completion_tokens
            elif isinstance(event, Finish):
                if event.error is not None:
                    error = event.error
                break
    except asyncio.CancelledError:
        flusher_task.cancel()
        error = stop_reason or StreamError("cancelled", "The reply was stopped.")
        await _store(message, text, error, meta, ttft_ms, started, context, flush, bot.tenant_id)
        if stop_reason is not None:
            return  # stopped by us (takeover), not by whoever cancels this task
        raise
    except Exception as exc:  # a bug in a layer below must still leave a stored outcome
        log.exception("reply for conversation %s failed", conversation_id)
        error = StreamError("upstream", f"The reply failed: {type(exc).__name__}")
    flusher_task.cancel()
    await _store(message, text, error, meta, ttft_ms, started, context, flush, bot.tenant_id)
    if context.toolbox is not None and context.toolbox.handoff_requested:
        # After the reply is stored: the hand-off ends the bot's part in the conversation.
        await db_async(actions.hand_off)(conversation_id)


async def _nothing_to_flush() -> None:
    return None


async def _store(
    message: Message,
    text: str,
    error: StreamError | None,
    meta: dict[str, Any],
    ttft_ms: int | None,
    started: float,
    context: Context,
    flush: Any,
    tenant_id: int,
) -> None:
    await asyncio.shield(flush())
    if error is not None and error.code != "cancelled":
        # The operator's detail (endpoint, address) goes to the log and the dashboard only.
        log.warning(
            "reply failed conversation=%s seq=%s code=%s: %s",
            message.conversation_id,
            message.seq,
            error.code,
            error.message,
        )
    if error is None:
        status = MessageStatus.COMPLETE
    elif text:
        status = MessageStatus.INCOMPLETE
    else:
        status = MessageStatus.FAILED
    complete = status == MessageStatus.COMPLETE
    unanswered = complete and _unanswered(context.knowledge)
    await asyncio.shield(
        db_async(_finish)(
            message,
            context.question,
            unanswered,
            text=text,
            status=status,
            error_code=error.code if error else "",
            error_message=error.message if error else "",
            model=meta.get("model", ""),
            endpoint=meta.get("endpoint", ""),
            tokens_in=meta.get("tokens_in"),
            tokens_out=meta.get("tokens_out"),
            ttft_ms=ttft_ms,
            duration_ms=int((time.monotonic() - started) * 1000),
            citations=_citations(context.knowledge, text) if complete and not unanswered else (),
        )
    )
    tokens = (meta.get("tokens_in") or 0) + (meta.get("tokens_out") or 0)
    usage = [meter.TokenRecord(tenant_id, message.pk, tokens)] if tokens else []
    # The tokens join the pipeline that forgets the streaming text: no round trip of their own.
    await streams.forget(message.conversation_id, message.seq, also=usage)
