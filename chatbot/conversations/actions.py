"""Every write to visitors, conversations and messages, and the reply task registry.

Views and consumers parse and authorise, then call one of these. Broadcasts go out in
`transaction.on_commit`. The reply task is started and cancelled only here
(`start_reply` / `cancel_reply`), so agent takeover has one place to stop the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatbot.bots.models import Bot
from chatbot.lib import db, events, fanout
from chatbot.llm.types import DOWN_CODES

from .broadcast import broadcast
from .models import (
    Attachment,
    Conversation,
    Feedback,
    Message,
    MessageStatus,
    Role,
    Status,
    Visitor,
)
from .payloads import conversation_payload, event_conversation, event_message, message_payload

if TYPE_CHECKING:
    from .images import CleanImage

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4000
MAX_ATTACHMENTS = 4
ATTACHMENT_CLAIM_WINDOW = timedelta(hours=1)
STALE_REPLY_AFTER = timedelta(minutes=10)
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class ActionError(Exception):
    """A refusal the visitor can act on; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- Visitors ---------------------------------------------------------------------------------


def open_visitor(
    bot: Bot,
    *,
    resume_visitor_id: str | None = None,
    identity: Any = None,
    locale: str = "",
    preview: bool = False,
    page_url: str = "",
    user_agent: str = "",
) -> Visitor:
    """The visitor for a new widget session, with the page and browser it came from (so the
    socket's `hello` usually finds them unchanged and writes nothing: note_visitor_context).

    A verified identity (already checked by the caller) selects that host user's visitor.
    A resume id brings back an *anonymous* visitor only: a verified visitor is reachable with
    a valid identity token and nothing else, and nothing anonymous merges into it.
    """
    if identity is not None:
        for _ in range(2):  # a concurrent first visit may win the unique constraint
            visitor = Visitor.objects.filter(
                bot=bot, verified=True, external_id=identity.external_id
            ).first()
            if visitor is not None:
                changed = [
                    f
                    for f, v in (("name", identity.name), ("email", identity.email))
                    if v and getattr(visitor, f) != v
                ]
                for field in changed:
                    setattr(visitor, field, getattr(identity, field))
                changed += _context_changes(visitor, page_url, user_agent)
                visitor.save(update_fields=[*changed, "last_seen_at"])
                return visitor
            try:
                with transaction.atomic():
                    return Visitor.objects.create(
                        bot=bot,
                        verified=True,
                        external_id=identity.external_id,
                        name=identity.name,
                        email=identity.email,
                        locale=locale[:10],
                        page_url=page_url[:500],
                        user_agent=user_agent[:300],
                    )
            except IntegrityError:
                continue
        raise ActionError("bad_request", "Could not open the visitor session; try again.")
    if resume_visitor_id:
        visitor = Visitor.objects.filter(
            bot=bot, public_id=resume_visitor_id, verified=False, preview=preview
        ).first()
        if visitor is not None:
            changed = _context_changes(visitor, page_url, user_agent)
            visitor.save(update_fields=[*changed, "last_seen_at"])
            return visitor
    return Visitor.objects.create(
        bot=bot,
        locale=locale[:10],
        preview=preview,
        page_url=page_url[:500],
        user_agent=user_agent[:300],
    )


def _context_changes(visitor: Visitor, page_url: str, user_agent: str) -> list[str]:
    """Set the visitor's page and browser when given and different; the fields changed."""
    changed = []
    for field, value in (("page_url", page_url[:500]), ("user_agent", user_agent[:300])):
        if value and getattr(visitor, field) != value:
            setattr(visitor, field, value)
            changed.append(field)
    return changed


def note_visitor_context(visitor: Visitor, *, page_url: str = "", user_agent: str = "") -> None:
    """Remember where and with what browser the visitor chats (shown to agents)."""
    page_url, user_agent = page_url[:500], user_agent[:300]
    if (visitor.page_url, visitor.user_agent) != (page_url, user_agent):
        visitor.page_url, visitor.user_agent = page_url, user_agent
        Visitor.objects.filter(pk=visitor.pk).update(page_url=page_url, user_agent=user_agent)


# --- Conversations ----------------------------------------------------------------------------


def start_conversation(visitor: Visitor) -> Conversation:
    conversation = Conversation.objects.create(bot_id=visitor.bot_id, visitor=visitor)
    conversation.visitor = visitor
    events.emit(
        conversation.bot_id,
        "conversation.created",
        lambda: event_conversation(conversation),
        order_key=conversation.public_id,
    )
    return conversation


def emit_message(message: Message, conversation: Conversation) -> None:
    """`message.created` for a visitor's, the bot's or an agent's message (after commit)."""
    events.emit(
        conversation.bot_id,
        "message.created",
        lambda: event_message(message, conversation),
        order_key=conversation.public_id,
    )


def _lock(conversation_id: int) -> Conversation:
    # select_for_update locks the row on PostgreSQL; on SQLite the IMMEDIATE transaction
    # already serialises writers, and select_for_update is a no-op.
    return Conversation.objects.select_for_update().get(pk=conversation_id)


def _next_seq(conversation: Conversation, count: int = 1) -> int:
    """The first of `count` new sequence numbers (one UPDATE however many)."""
    conversation.last_seq += count
    conversation.save(update_fields=["last_seq", "updated_at"])
    return conversation.last_seq - count + 1


def _announce(message: Message, conversation: Conversation | None = None) -> None:
    """Publish the message after commit; the inbox list moves too. `conversation`, when the
    caller has the row as it will be committed (bot loaded), saves the inbox a query."""
    payload = message_payload(message)
    conversation_id = message.conversation_id

    def send() -> None:
        broadcast(conversation_id, {"type": "message", "message": payload})
        if message.role != Role.ASSISTANT or message.status != MessageStatus.STREAMING:
            from .takeover import touch_inbox  # the agents' inbox list moves too

            touch_inbox(conversation_id, conversation, by_visitor=message.role == Role.VISITOR)

    transaction.on_commit(send)


@dataclass(frozen=True, slots=True)
class Received:
    message: Message
    conversation: Conversation
    duplicate: bool
    reply_wanted: bool
    # The bot's `streaming` row, when the caller asked for it (`with_reply`) and a reply is
    # wanted: created in the same transaction as the visitor's message.
    reply: Message | None = None


def receive_visitor_message(
    visitor: Visitor,
    conversation: Conversation | None,
    *,
    client_id: object,
    text: object,
    attachment_ids: Sequence[object] = (),
    with_reply: bool = False,
) -> Received:
    """Store a visitor message exactly once per `client_id`, before anything is relayed.

    `with_reply`: when the bot is to answer, also create its `streaming` row (the next seq),
    in the same transaction: the reply then needs no locking trip of its own
    (`start_reply(conversation_id, prepared)`). Only for a conversation with no reply running.
    """
    if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
        raise ActionError("bad_request", "client_id must be 1-64 letters, digits, - or _.")
    if not isinstance(text, str):
        raise ActionError("bad_request", "text must be a string.")
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ActionError("bad_request", f"A message is at most {MAX_TEXT_CHARS} characters.")
    if not isinstance(attachment_ids, list | tuple) or len(attachment_ids) > MAX_ATTACHMENTS:
        raise ActionError("bad_request", f"At most {MAX_ATTACHMENTS} attachments per message.")
    ids = {a for a in attachment_ids if isinstance(a, str)}
    if len(ids) != len(attachment_ids):
        raise ActionError("bad_request", "attachment_ids must be a list of ids.")
    if not text and not ids:
        raise ActionError("bad_request", "The message is empty.")

    # A resend (same client_id) answers with the stored message wherever it landed, even if
    # the first send created the conversation and the client never learnt its id. With a
    # conversation, the one look is made under its lock (a concurrent resend waits for it).
    def earlier() -> Message | None:
        # The usual answer is "none": asked for ids only, unordered (a cheap query to build
        # and run); the row is read only when there is one.
        found = list(
            Message.objects.filter(conversation__visitor=visitor, client_id=client_id)
            .order_by()
            .values_list("pk", flat=True)[:1]
        )
        return Message.objects.select_related("conversation").get(pk=found[0]) if found else None

    if conversation is None and (found := earlier()) is not None:
        return Received(found, found.conversation, duplicate=True, reply_wanted=False)

    from . import takeover

    with transaction.atomic():
        if conversation is None:
            conversation = start_conversation(visitor)
            found = None
            locked = _lock(conversation.pk)
        else:
            locked = _lock(conversation.pk)
            found = earlier()
        if locked.visitor_id != visitor.pk:
            raise ActionError("not_found", "No such conversation.")
        if found is not None:
            return Received(found, found.conversation, duplicate=True, reply_wanted=False)
        if locked.status == Status.CLOSED:
            raise ActionError(
                "conversation_closed", "This conversation is closed; start a new one."
            )
        reply_wanted = locked.status == Status.BOT and not takeover.asks_for_a_person(text)
        attachments = (
            list(
                Attachment.objects.filter(
                    visitor=visitor,
                    public_id__in=ids,
                    message__isnull=True,
                    created_at__gte=timezone.now() - ATTACHMENT_CLAIM_WINDOW,
                )
            )
            if ids
            else []
        )
        if len(attachments) != len(ids):
            raise ActionError("not_found", "An attachment is unknown or already used.")
        create_reply = with_reply and reply_wanted
        seq = _next_seq(locked, 2 if create_reply else 1)
        message = Message.objects.create(
            conversation=locked,
            seq=seq,
            client_id=client_id,
            role=Role.VISITOR,
            text=text,
        )
        if attachments:
            Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(message=message)
        # The attachments are known: payloads built from this row need no query for them.
        message._prefetched_objects_cache = {"attachments": attachments}  # type: ignore[attr-defined]
        if "bot" in visitor._state.fields_cache:
            locked.bot = visitor.bot  # known already: the inbox summary needs no query
        _announce(message, locked)
        emit_message(message, locked)
        thanks = takeover.capture_followup_email(locked, text)
        if thanks is not None:
            _announce(thanks)
        reply = None
        if create_reply:
            reply = Message.objects.create(
                conversation=locked,
                seq=seq + 1,
                role=Role.ASSISTANT,
                status=MessageStatus.STREAMING,
            )
            _announce(reply)
    if locked.status == Status.BOT and not reply_wanted:
        # "Can I talk to a person?" typed instead of the button: same as the button.
        request_handoff(visitor, locked)
        return Received(message, locked, duplicate=False, reply_wanted=False)
    return Received(message, locked, duplicate=False, reply_wanted=reply_wanted, reply=reply)


def set_feedback(
    visitor: Visitor, conversation: Conversation, seq: object, value: object
) -> Message:
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ActionError("bad_request", "seq must be a number.")
    if value not in ("up", "down", None):
        raise ActionError("bad_request", 'value must be "up", "down" or null.')
    with transaction.atomic():
        message = Message.objects.filter(
            conversation=conversation,
            conversation__visitor=visitor,
            seq=seq,
            role=Role.ASSISTANT,
        ).first()
        if message is None:
            raise ActionError("not_found", "No such reply in this conversation.")
        message.feedback = value or Feedback.NONE
        message.save(update_fields=["feedback", "updated_at"])
        _announce(message)
        if value:
            events.emit(
                conversation.bot_id,
                "feedback.received",
                lambda: event_message(message, conversation),
                order_key=conversation.public_id,
            )
    return message


def request_handoff(
    visitor: Visitor, conversation: Conversation, *, cancel: bool = True
) -> Message | None:
    """The visitor asks for a person: the bot steps back and the inbox shows it waiting.
    `cancel=False` when the bot's own reply asks (it has finished)."""
    with transaction.atomic():
        locked = _lock(conversation.pk)
        if locked.visitor_id != visitor.pk:
            raise ActionError("not_found", "No such conversation.")
        if locked.status != Status.BOT:
            return None
        locked.status = Status.WAITING
        locked.save(update_fields=["status", "updated_at"])
        from .takeover import handoff_requested

        message = Message.objects.create(
            conversation=locked,
            seq=_next_seq(locked),
            role=Role.SYSTEM,
            text=handoff_requested(locked),  # a code, or the office's away text
        )
        _announce(message)
        locked.visitor = visitor
        events.emit(
            locked.bot_id,
            "conversation.handoff_requested",
            lambda: event_conversation(locked),
            order_key=locked.public_id,
        )
        status = {"type": "conversation", "conversation": conversation_payload(locked)}
        transaction.on_commit(lambda: broadcast(locked.pk, status))
    if cancel:
        cancel_reply(conversation.pk)
    return message


def hand_off(conversation_id: int) -> None:
    """The bot's reply asked for a person (the built-in hand-off action)."""
    conversation = Conversation.objects.select_related("visitor").get(pk=conversation_id)
    request_handoff(conversation.visitor, conversation, cancel=False)


# --- Replies (rows) ---------------------------------------------------------------------------


def create_reply_message(conversation_id: int) -> Message | None:
    """The assistant's row, `streaming`, or None when the bot no longer answers here."""
    with transaction.atomic():
        locked = _lock(conversation_id)
        if locked.status != Status.BOT:
            return None
        message = Message.objects.create(
            conversation=locked,
            seq=_next_seq(locked),
            role=Role.ASSISTANT,
            status=MessageStatus.STREAMING,
        )
        _announce(message)
    return message


def save_partial_reply(message_id: int, text: str) -> bool:
    """Persist the text so far; False when the reply should stop (agent took over)."""
    Message.objects.filter(pk=message_id, status=MessageStatus.STREAMING).update(
        text=text, updated_at=timezone.now()
    )
    return Conversation.objects.filter(messages__pk=message_id, status=Status.BOT).exists()


def finish_reply(
    message_id: int,
    *,
    text: str,
    status: str,
    error_code: str = "",
    error_message: str = "",
    model: str = "",
    endpoint: str = "",
    tokens_in: int | None = None,
    tokens_out: int | None = None,
    ttft_ms: int | None = None,
    duration_ms: int | None = None,
    citations: Sequence[dict[str, str]] = (),
    row: Message | None = None,
) -> Message:
    """Store a reply's outcome and announce it. `row`: the reply's row as its task holds it,
    its conversation's bot loaded (the task's own replies: no query to read it again)."""
    fields: dict[str, Any] = {
        "text": text,
        "status": status,
        "error_code": error_code[:32],
        "error_message": error_message[:500],
        "model": model[:200],
        "endpoint": endpoint[:200],
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "ttft_ms": ttft_ms,
        "duration_ms": duration_ms,
        "citations": list(citations),
    }
    with transaction.atomic():
        now = timezone.now()
        if row is not None and row.pk == message_id:
            message = row
            for name, value in fields.items():
                setattr(message, name, value)
            message.updated_at = now
            Message.objects.filter(pk=message_id).update(**fields, updated_at=now)
        else:
            message = (
                Message.objects.select_for_update(of=("self",))
                .select_related("conversation__bot")
                .get(pk=message_id)
            )
            for name, value in fields.items():
                setattr(message, name, value)
            message.save()
        Conversation.objects.filter(pk=message.conversation_id).update(updated_at=now)
        message.conversation.updated_at = now
        _announce(message, message.conversation)
        emit_message(message, message.conversation)
        if status != MessageStatus.COMPLETE and error_code in DOWN_CODES:
            _alert_model_down(message.conversation.bot)
    return message


MODEL_DOWN_ALERT_EVERY = 3600


def _alert_model_down(bot: Bot) -> None:
    """The model could not be reached for this reply: email the workspace's owners and
    admins, at most once an hour per workspace (the cache decides, across processes)."""
    if not cache.add(f"parley:model-down-alert:{bot.tenant_id}", 1, MODEL_DOWN_ALERT_EVERY):
        return
    bot_id = bot.pk

    def queue() -> None:
        from .tasks import alert_model_down

        try:
            alert_model_down.delay(bot_id)
        except Exception:  # the broker being down must not fail the reply's bookkeeping
            log.exception("could not queue the model-down alert")

    transaction.on_commit(queue)


def sweep_stale_replies(older_than: timedelta = STALE_REPLY_AFTER) -> int:
    """Mark replies left `streaming` by a process that died as incomplete."""
    cutoff = timezone.now() - older_than
    stale = list(
        Message.objects.filter(status=MessageStatus.STREAMING, updated_at__lt=cutoff).values_list(
            "pk", "text"
        )
    )
    for pk, text in stale:
        finish_reply(
            pk,
            text=text,
            status=MessageStatus.INCOMPLETE if text else MessageStatus.FAILED,
            error_code="interrupted",
            error_message="The reply was interrupted.",
        )
    return len(stale)


def settle_if_orphaned(conversation_id: int, seq: int, owner: str) -> bool:
    """Mark a `streaming` reply interrupted when the process running it (`owner`) has
    stopped; True once the reply is no longer streaming (settled here or finished)."""
    from chatbot.lib import fanout

    from . import streams

    if fanout.process_alive(owner):
        return not Message.objects.filter(
            conversation_id=conversation_id, seq=seq, status=MessageStatus.STREAMING
        ).exists()
    row = Message.objects.filter(
        conversation_id=conversation_id, seq=seq, status=MessageStatus.STREAMING
    ).first()
    if row is not None:
        partial = streams.read(conversation_id, seq)
        text = (
            partial.text if partial is not None and len(partial.text) > len(row.text) else row.text
        )
        finish_reply(
            row.pk,
            text=text,
            status=MessageStatus.INCOMPLETE if text else MessageStatus.FAILED,
            error_code="interrupted",
            error_message="The reply was interrupted.",
        )
    return True


def can_retry_reply(visitor: Visitor, conversation: Conversation) -> bool:
    last = (
        Message.objects.filter(conversation=conversation)
        .exclude(role__in=[Role.NOTE, Role.SYSTEM])
        .order_by("-seq")
        .first()
    )
    if conversation.visitor_id != visitor.pk or conversation.status != Status.BOT:
        return False
    if last is None:
        return False
    return last.role == Role.VISITOR or (
        last.role == Role.ASSISTANT
        and last.status in (MessageStatus.INCOMPLETE, MessageStatus.FAILED)
    )


# --- The reply task registry ------------------------------------------------------------------
# Tasks belong to this process's event loop, not to a socket: a visitor who disconnects
# mid-reply still gets the reply stored. Another process stops a reply by changing the
# conversation's status (the task checks it each time it saves partial text).

_running: dict[int, asyncio.Task[None]] = {}


def reply_running(conversation_id: int) -> bool:
    """Whether this process runs a reply in the conversation (callable from any thread)."""
    task = _running.get(conversation_id)
    return task is not None and not task.done()


def start_reply(
    conversation_id: int, prepared: tuple[Message, Any] | None = None
) -> asyncio.Task[None]:
    """Start (or queue behind the running one) the bot's reply in this conversation.
    `prepared`: the reply's row and context (`replies.Context`), when the caller's trip made
    them (`receive_visitor_message(with_reply=True)`, then `replies.load_context`)."""
    from .replies import run_reply

    fanout.start()  # the heartbeat that tells other processes this reply is alive
    loop = asyncio.get_running_loop()
    previous = _running.get(conversation_id)
    if previous is not None and previous.get_loop() is not loop:
        previous = None  # left by a loop that is gone (tests run one loop per test)

    async def runner() -> None:
        if previous is not None and not previous.done():
            # Its own failure is already recorded on its message.
            with contextlib.suppress(BaseException):
                await asyncio.shield(previous)
            if prepared is not None:
                # Its context was read before the previous reply ended: read it again.
                await run_reply(conversation_id, prepared[0])
                return
        if prepared is not None:
            await run_reply(conversation_id, *prepared)
        else:
            await run_reply(conversation_id)

    # A fresh context: the task must not inherit the request's thread-sensitive executor
    # (asgiref), which is shut down when the request that started the reply ends. It keeps
    # the tenant tag: the reply's database calls take its tenant's turns (chatbot.lib.db).
    task = loop.create_task(runner(), name=f"reply:{conversation_id}", context=db.tenant_context())
    _running[conversation_id] = task

    def forget(done: asyncio.Task[None]) -> None:
        if _running.get(conversation_id) is done:
            del _running[conversation_id]
        if not done.cancelled() and done.exception() is not None:
            log.error("reply task failed", exc_info=done.exception())

    task.add_done_callback(forget)
    return task


def cancel_reply(conversation_id: int) -> bool:
    """Stop this process's reply in the conversation (the task stores what it had)."""
    task = _running.get(conversation_id)
    if task is None or task.done():
        return False
    # Callers may be in a worker thread (sync actions); cancel on the task's own loop.
    task.get_loop().call_soon_threadsafe(task.cancel)
    return True


def running_reply(conversation_id: int) -> asyncio.Task[None] | None:
    return _running.get(conversation_id)


async def wait_for_replies() -> None:
    """Wait until every reply task of this process is done (tests, graceful shutdown)."""
    loop = asyncio.get_running_loop()
    while mine := [t for t in _running.values() if t.get_loop() is loop and not t.done()]:
        await asyncio.wait(mine)


# --- Attachments ------------------------------------------------------------------------------


def store_attachment(visitor: Visitor, data: bytes) -> Attachment:
    """Validate and re-encode an upload, store it under a generated name (ImageRejected).

    From async code, clean the image in the heavy-work pool (chatbot/lib/heavy.py) and call
    `store_clean_image` in a database thread instead."""
    from .images import clean_image

    return store_clean_image(visitor, clean_image(data))


def store_clean_image(visitor: Visitor, image: CleanImage) -> Attachment:
    """Store an image already validated and re-encoded by `images.clean_image`."""
    import hashlib
    import secrets

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    extension = "png" if image.content_type == "image/png" else "jpg"
    name = f"widget-attachments/{visitor.bot_id}/{secrets.token_hex(16)}.{extension}"
    stored = default_storage.save(name, ContentFile(image.data))
    return Attachment.objects.create(
        bot_id=visitor.bot_id,
        visitor=visitor,
        content_type=image.content_type,
        size=len(image.data),
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(image.data).hexdigest(),
        stored_name=stored,
    )
