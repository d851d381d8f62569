"""People in the conversation: handoff requests, takeover, hand back, assign, close, notes.

Every write an agent makes goes through here (the visitor's own writes are in actions.py).
Each function locks the conversation row, changes it, writes a message where the visitor or
the transcript should see something, and announces after commit: to `conv.<id>` (the
visitor's tabs and the agents watching it) and to `tenant.<id>.inbox` (the inbox list).

Stopping the bot: `cancel_reply` stops a reply running in this process at once; a reply
running in another ASGI process sees the conversation's status change at its next periodic
partial save (replies.PERSIST_EVERY_SECONDS) and stops, keeping its text as incomplete.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from chatbot.lib import events, fanout
from chatbot.lib.ids import parse_id
from chatbot.tenants.models import Membership, Tenant, User

from .actions import ActionError, _lock, _next_seq, cancel_reply, emit_message
from .broadcast import broadcast
from .models import Conversation, InboxSettings, Message, Role, Status
from .payloads import conversation_payload, event_conversation, message_payload

log = logging.getLogger(__name__)

MAX_AGENT_TEXT = 4000
INBOX_EVENT = "inbox.event"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# "Talk to a person" typed instead of pressing the button, in the widget's languages. Only
# explicit words for a person: "can I talk to someone about sizes?" is left to the bot, which
# still offers the button.
PERSON_REQUEST = re.compile(
    r"\b(talk|speak|chat|connect|transfer|need|want)\b.{0,30}\b(human|person|agent|"
    r"representative|operator|real people|staff)\b"
    r"|^\W*(human|agent|operator|representative|real person)\W*(please)?\W*$"
    r"|\b(parler|discuter)\b.{0,30}\b(humain|personne|conseiller|agent)\b"
    r"|\b(mit einem|einen)\b.{0,20}\b(menschen|mitarbeiter)\b"
    r"|\b(hablar)\b.{0,30}\b(humano|persona|agente)\b",
    re.IGNORECASE,
)


def inbox_group(tenant_id: int) -> str:
    return f"tenant.{int(tenant_id)}.inbox"


def asks_for_a_person(text: str) -> bool:
    return bool(PERSON_REQUEST.search(text or ""))


# --- Announcements ----------------------------------------------------------------------------


def broadcast_inbox(tenant_id: int, event: dict[str, Any]) -> None:
    """From any thread (after commit): scheduled, not waited for (see broadcast.py)."""
    fanout.publish_soon(inbox_group(tenant_id), {"type": INBOX_EVENT, "event": event})


def inbox_summary(conversation: Conversation, *, by_visitor: bool = False) -> dict[str, Any]:
    summary = {
        "type": "inbox.conversation",
        "id": conversation.public_id,
        "status": conversation.status,
        "assignee": conversation.assignee_id,
        "updated_at": conversation.updated_at.isoformat() if conversation.updated_at else None,
    }
    if by_visitor:
        # The visitor wrote: the assignee's dashboard tabs may notify them.
        summary["by"] = "visitor"
    return summary


def touch_inbox(
    conversation_id: int, conversation: Conversation | None = None, *, by_visitor: bool = False
) -> None:
    """Tell the tenant's inbox pages that this conversation changed (call after commit).

    A caller holding the row as committed (with its bot loaded) passes it: no query."""
    if conversation is None or "bot" not in conversation._state.fields_cache:
        conversation = Conversation.objects.select_related("bot").filter(pk=conversation_id).first()
    if conversation is not None:
        broadcast_inbox(
            conversation.bot.tenant_id, inbox_summary(conversation, by_visitor=by_visitor)
        )


def _announce(conversation: Conversation, *messages: Message) -> None:
    payloads = [message_payload(m) for m in messages]
    status = {"type": "conversation", "conversation": conversation_payload(conversation)}
    conversation_id = conversation.pk

    def send() -> None:
        for payload in payloads:
            broadcast(conversation_id, {"type": "message", "message": payload})
        broadcast(conversation_id, status)
        touch_inbox(conversation_id)

    transaction.on_commit(send)


def _system(conversation: Conversation, code: str, author: User | None = None) -> Message:
    return Message.objects.create(
        conversation=conversation,
        seq=_next_seq(conversation),
        role=Role.SYSTEM,
        text=code,
        author=author,
    )


def _locked_in_tenant(conversation: Conversation) -> Conversation:
    return _lock(conversation.pk)


def _emit(conversation: Conversation, event_type: str) -> None:
    events.emit(
        conversation.bot_id,
        event_type,
        lambda: event_conversation(conversation),
        order_key=conversation.public_id,
    )


# --- Office hours -----------------------------------------------------------------------------


def settings_for(tenant: Tenant) -> InboxSettings:
    found = InboxSettings.objects.filter(tenant=tenant).first()
    return found if found is not None else InboxSettings(tenant=tenant)


def live_chat_open(tenant: Tenant, at: datetime | None = None) -> bool:
    """Whether people answer now: always, unless office hours are on and it is outside them."""
    config = settings_for(tenant)
    if not config.office_hours_enabled:
        return True
    if config.office_start is None or config.office_end is None or not config.office_days:
        return False
    local = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(tenant.timezone or "UTC"))
    if local.isoweekday() not in {int(d) for d in config.office_days}:
        return False
    now = local.time()
    if config.office_start <= config.office_end:
        return config.office_start <= now < config.office_end
    return now >= config.office_start or now < config.office_end  # overnight shift


# --- The visitor asks for a person ------------------------------------------------------------


def handoff_requested(conversation: Conversation) -> str:
    """The system text for a new handoff request (inside the request's transaction).

    Announces the waiting conversation to the inbox and emails the team after commit. Outside
    office hours the text asks the visitor for an email address instead.
    """
    tenant = Tenant.objects.get(bots__pk=conversation.bot_id)
    is_open = live_chat_open(tenant)
    conversation_id, tenant_id = conversation.pk, tenant.pk

    def notify() -> None:
        touch_inbox(conversation_id)
        broadcast_inbox(tenant_id, {"type": "inbox.waiting", "id": conversation.public_id})
        from .tasks import notify_team_of_waiting

        try:
            notify_team_of_waiting.delay(conversation_id)
        except Exception:  # the broker being down must not lose the handoff itself
            log.exception("could not queue the waiting-conversation email")

    transaction.on_commit(notify)
    if is_open:
        return "handoff.requested"
    return settings_for(tenant).offline_message or "Our team is away right now."


def capture_followup_email(conversation: Conversation, text: str) -> Message | None:
    """In a waiting conversation outside office hours, keep the address the visitor typed."""
    if conversation.status != Status.WAITING or conversation.followup_email:
        return None
    found = EMAIL.search(text)
    if found is None:
        return None
    conversation.followup_email = found.group(0)[:254]
    conversation.save(update_fields=["followup_email", "updated_at"])
    return _system(conversation, f"Thank you. We will reply to {conversation.followup_email}.")


# --- Agents -----------------------------------------------------------------------------------


def _clean_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ActionError("bad_request", "Write a message first.")
    text = text.strip()
    if len(text) > MAX_AGENT_TEXT:
        raise ActionError("bad_request", f"A message is at most {MAX_AGENT_TEXT} characters.")
    return text


def take_over(conversation: Conversation, agent: User) -> Conversation:
    """The agent joins: the bot stops and the visitor sees who joined."""
    with transaction.atomic():
        locked = _locked_in_tenant(conversation)
        if locked.status == Status.CLOSED:
            raise ActionError("conversation_closed", "Reopen the conversation first.")
        if locked.status == Status.AGENT and locked.assignee_id == agent.pk:
            return locked
        locked.status = Status.AGENT
        locked.assignee = agent
        locked.save(update_fields=["status", "assignee", "updated_at"])
        joined = _system(locked, "agent.joined", author=agent)
        _announce(locked, joined)
        _emit(locked, "conversation.assigned")
        transaction.on_commit(lambda: cancel_reply(locked.pk))
    return locked


def hand_back(conversation: Conversation, agent: User) -> Conversation:
    """The bot answers again; what the agent wrote stays in its context."""
    with transaction.atomic():
        locked = _locked_in_tenant(conversation)
        if locked.status == Status.CLOSED:
            raise ActionError("conversation_closed", "Reopen the conversation first.")
        if locked.status == Status.BOT:
            return locked
        locked.status = Status.BOT
        locked.save(update_fields=["status", "updated_at"])
        left = _system(locked, "agent.left", author=agent)
        _announce(locked, left)
    return locked


def assign(conversation: Conversation, actor: User, user_id: object) -> Conversation:
    """Give the conversation to a teammate (a member of the same tenant), or to nobody."""
    with transaction.atomic():
        locked = _locked_in_tenant(conversation)
        if user_id in (None, ""):
            locked.assignee = None
        else:
            pk = parse_id(user_id if isinstance(user_id, int) else str(user_id))
            if pk is None:
                raise ActionError("not_found", "No such member.")
            tenant_id = Tenant.objects.values_list("pk", flat=True).get(bots__pk=locked.bot_id)
            member = Membership.objects.filter(tenant_id=tenant_id, user_id=pk).first()
            if member is None:
                # A user of another workspace answers exactly like a missing one.
                raise ActionError("not_found", "No such member.")
            locked.assignee_id = pk
        locked.save(update_fields=["assignee", "updated_at"])
        _announce(locked)
        _emit(locked, "conversation.assigned")
    return locked


def close(conversation: Conversation, actor: User) -> Conversation:
    with transaction.atomic():
        locked = _locked_in_tenant(conversation)
        if locked.status == Status.CLOSED:
            return locked
        locked.status = Status.CLOSED
        locked.closed_at = timezone.now()
        locked.save(update_fields=["status", "closed_at", "updated_at"])
        closed = _system(locked, "conversation.closed", author=actor)
        _announce(locked, closed)
        _emit(locked, "conversation.closed")
        transaction.on_commit(lambda: cancel_reply(locked.pk))
    return locked


def reopen(conversation: Conversation, actor: User) -> Conversation:
    """Reopened by an agent, who then has it (the visitor may write again)."""
    with transaction.atomic():
        locked = _locked_in_tenant(conversation)
        if locked.status != Status.CLOSED:
            return locked
        locked.status = Status.AGENT
        locked.assignee = actor
        locked.closed_at = None
        locked.save(update_fields=["status", "assignee", "closed_at", "updated_at"])
        reopened = _system(locked, "agent.joined", author=actor)
        _announce(locked, reopened)
        _emit(locked, "conversation.assigned")
    return locked


def agent_reply(conversation: Conversation, agent: User, text: object) -> Message:
    """The agent writes to the visitor; writing to a bot or waiting conversation takes it."""
    body = _clean_text(text)
    with transaction.atomic():
        locked = _locked_in_tenant(conversation)
        if locked.status == Status.CLOSED:
            raise ActionError("conversation_closed", "Reopen the conversation first.")
        joined: list[Message] = []
        if locked.status != Status.AGENT:
            locked.status = Status.AGENT
            locked.assignee = locked.assignee or agent
            locked.save(update_fields=["status", "assignee", "updated_at"])
            joined.append(_system(locked, "agent.joined", author=agent))
            transaction.on_commit(lambda: cancel_reply(locked.pk))
        message = Message.objects.create(
            conversation=locked, seq=_next_seq(locked), role=Role.AGENT, text=body, author=agent
        )
        _announce(locked, *joined, message)
        emit_message(message, locked)
    return message


def add_note(conversation: Conversation, agent: User, text: object) -> Message:
    """An internal note: in the transcript for the team, never sent to the visitor."""
    body = _clean_text(text)
    with transaction.atomic():
        locked = _locked_in_tenant(conversation)
        note = Message.objects.create(
            conversation=locked, seq=_next_seq(locked), role=Role.NOTE, text=body, author=agent
        )
        _announce(locked, note)
    return note


def agent_typing(conversation_id: int, agent: User, sender: str) -> None:
    broadcast(
        conversation_id,
        {"type": "typing", "who": "agent", "name": agent.display_name, "sender": sender},
    )
