"""Every write of the tools domain: actions, their calls in conversations, contacts.

Calls are recorded by the reply task (through a database thread) and announced to the
conversation's group after commit as `{"type": "action", "action": call_payload(...)}`: the
visitor's frame shows the running state, the confirmation card and result cards from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from chatbot.bots.models import Bot
from chatbot.conversations.actions import ActionError
from chatbot.conversations.broadcast import broadcast
from chatbot.conversations.models import Conversation, Status, Visitor
from chatbot.lib import events, ids
from chatbot.tenants import audit
from chatbot.tenants.models import Tenant

from . import endpoint
from .cards import CARD_SCHEMA, clean_card
from .models import Action, ActionCall, ActionKind, CallStatus, Contact
from .schema import SchemaProblem, parse_arguments

# What the built-ins look like when an owner adds one (all of it editable but the kind).
BUILTINS: dict[str, dict[str, Any]] = {
    ActionKind.CAPTURE_LEAD: {
        "name": "capture_lead",
        "title": "Saving your details",
        "description": "Save the visitor's contact details so the team can get back to them. "
        "Use it when the visitor wants to be contacted and has given an email address or a "
        "phone number.",
        "parameters": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "The visitor's name"},
                "email": {"type": "string", "description": "Email address"},
                "phone": {"type": "string", "description": "Phone number"},
                "message": {"type": "string", "description": "What they want"},
            },
        },
    },
    ActionKind.HANDOFF: {
        "name": "handoff_to_person",
        "title": "Asking a person to join",
        "description": "Ask a person from the team to take over the conversation. Use it when "
        "the visitor asks for a human or when you cannot help.",
        "parameters": {"type": "object", "properties": {}},
    },
    ActionKind.SEARCH_KNOWLEDGE: {
        "name": "search_knowledge",
        "title": "Searching our help pages",
        "description": "Search the knowledge base again with better words when the sources "
        "you have do not answer the question.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look for"}},
            "required": ["query"],
        },
    },
    ActionKind.SHOW_CARD: {
        "name": "show_card",
        "title": "Showing details",
        "description": "Show the visitor a card with a title, labelled fields, links and quick "
        "answers they can tap.",
        "parameters": CARD_SCHEMA,
    },
}

PHONE = re.compile(r"^\+?[0-9 ().-]{5,40}$")


# --- Calls in a conversation ------------------------------------------------------------------


def _argument_words(call: ActionCall, schema: dict[str, Any]) -> list[dict[str, str]]:
    """The arguments as label/value pairs a visitor can read on a confirmation card."""
    properties = (schema or {}).get("properties") or {}
    words = []
    for name, value in (call.arguments or {}).items():
        prop = properties.get(name) if isinstance(properties, dict) else None
        label = (prop or {}).get("description") if isinstance(prop, dict) else None
        label = str(label or name.replace("_", " ").capitalize())[:60]
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            import json

            text = json.dumps(value, ensure_ascii=False)
        words.append({"label": label, "value": text[:200]})
    return words


def call_payload(call: ActionCall, *, seq: int | None = None) -> dict[str, Any]:
    """What the widget gets: no endpoint, no error detail (agents see those)."""
    schema = call.action.parameters if call.action_id and call.action else {}
    return {
        "id": call.public_id,
        "seq": seq if seq is not None else (call.message.seq if call.message else None),
        "title": call.title or call.name,
        "status": call.status,
        "arguments": _argument_words(call, schema) if call.status == CallStatus.AWAITING else [],
        "card": call.card,
    }


def _announce(call: ActionCall, seq: int | None) -> None:
    payload = call_payload(call, seq=seq)
    conversation_id = call.conversation_id
    transaction.on_commit(lambda: broadcast(conversation_id, {"type": "action", "action": payload}))


@dataclass(frozen=True, slots=True)
class NewCall:
    call_id: str
    name: str
    action_id: int | None
    title: str
    kind: str
    arguments: dict[str, Any]
    status: str
    error: str = ""


def record_calls(
    conversation_id: int, message_id: int, seq: int, calls: Sequence[NewCall]
) -> list[ActionCall]:
    """The calls the model asked for in one step, as rows (announced after commit)."""
    with transaction.atomic():
        rows = ActionCall.objects.bulk_create(
            ActionCall(
                conversation_id=conversation_id,
                message_id=message_id,
                action_id=new.action_id,
                call_id=new.call_id[:100],
                name=new.name[:48],
                title=new.title[:80],
                kind=new.kind,
                arguments=new.arguments,
                status=new.status,
                error=new.error[:500],
            )
            for new in calls
        )
        loaded = list(
            ActionCall.objects.filter(pk__in=[row.pk for row in rows])
            .select_related("action")
            .order_by("pk")
        )
        for row in loaded:
            _announce(row, seq)
    return loaded


def finish_call(
    call_id: int,
    seq: int | None,
    *,
    status: str,
    result: Any = None,
    card: Any = None,
    error: str = "",
    duration_ms: int | None = None,
) -> ActionCall:
    with transaction.atomic():
        call = ActionCall.objects.select_related("action").get(pk=call_id)
        call.status = status
        call.result = result
        call.card = card
        call.error = error[:500]
        call.duration_ms = duration_ms
        call.save()
        _announce(call, seq)
    return call


def start_confirmed(call_id: int, seq: int | None) -> None:
    with transaction.atomic():
        call = ActionCall.objects.select_related("action").get(pk=call_id)
        call.status = CallStatus.RUNNING
        call.save(update_fields=["status", "updated_at"])
        _announce(call, seq)


def answer_confirmation(
    visitor: Visitor, conversation: Conversation, public_id: object, accept: object
) -> int | None:
    """The visitor confirms (or declines) a call that changes something. Returns the
    conversation whose reply should continue (the reply runs a confirmed call first)."""
    if not isinstance(public_id, str) or not isinstance(accept, bool):
        raise ActionError("bad_request", "action.confirm needs an id and accept: true or false.")
    with transaction.atomic():
        call = (
            ActionCall.objects.select_for_update(of=("self",))
            .select_related("conversation", "action", "message")
            .filter(conversation=conversation, conversation__visitor=visitor, public_id=public_id)
            .first()
        )
        if call is None:
            raise ActionError("not_found", "No such action in this conversation.")
        if call.status != CallStatus.AWAITING:
            raise ActionError("bad_request", "This action was already answered.")
        call.status = CallStatus.CONFIRMED if accept else CallStatus.DECLINED
        if accept:
            call.confirmed_by = visitor.public_id
            call.confirmed_at = timezone.now()
        call.save()
        _announce(call, call.message.seq if call.message_id and call.message else None)
    if call.conversation.status != Status.BOT:
        return None  # a person answers now; they see the call in the transcript
    return conversation.pk


# --- Contacts ---------------------------------------------------------------------------------


class LeadProblem(ValueError):
    pass


def capture_lead(conversation_id: int, arguments: dict[str, Any]) -> Contact:
    """Save a lead from the built-in action (for the tenant of the conversation's bot)."""
    name = str(arguments.get("name") or "").strip()[:200]
    email = str(arguments.get("email") or "").strip()[:254]
    phone = str(arguments.get("phone") or "").strip()[:40]
    message = str(arguments.get("message") or "").strip()[:2000]
    if not email and not phone:
        raise LeadProblem("ask the visitor for an email address or a phone number first")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise LeadProblem(f"{email!r} is not a valid email address; ask again") from None
    if phone and not PHONE.match(phone):
        raise LeadProblem(f"{phone!r} is not a phone number; ask again")
    conversation = Conversation.objects.select_related("bot", "visitor").get(pk=conversation_id)
    contact = Contact.objects.create(
        tenant_id=conversation.bot.tenant_id,
        bot=conversation.bot,
        visitor=conversation.visitor,
        conversation=conversation,
        name=name,
        email=email,
        phone=phone,
        message=message,
    )
    events.emit(
        conversation.bot_id,
        "contact.created",
        lambda: {
            "contact": {**contact_payload(contact), "created_at": contact.created_at.isoformat()}
        },
        order_key=conversation.public_id,
    )
    return contact


def contact_payload(contact: Contact) -> dict[str, Any]:
    """A contact as the API and the `contact.created` webhook show it (select_related bot,
    visitor and conversation to keep a list at a fixed number of queries)."""
    return {
        "id": ids.encode("ctc", contact.pk),
        "bot": ids.encode("bot", contact.bot_id) if contact.bot_id else None,
        "visitor": contact.visitor.public_id if contact.visitor_id and contact.visitor else None,
        "conversation": contact.conversation.public_id
        if contact.conversation_id and contact.conversation
        else None,
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "message": contact.message,
        "created_at": contact.created_at,
    }


def delete_action(tenant: Tenant, actor: Any, action: Action) -> None:
    """Delete an action; its recorded calls stay in their conversations (without the link)."""
    with transaction.atomic():
        name = action.name
        action.delete()
        audit.record(tenant, actor, "action.deleted", target=name)


def delete_contact(tenant: Tenant, actor: Any, contact: Contact) -> None:
    with transaction.atomic():
        public = f"contact {contact.pk}"
        contact.delete()
        audit.record(tenant, actor, "contact.deleted", target=public)


def bots_for(tenant: Tenant, bot_ids: Sequence[int]) -> list[Bot]:
    """The tenant's bots among `bot_ids` (a foreign id is refused like a missing one)."""
    bots = list(Bot.objects.for_tenant(tenant).filter(pk__in=list(bot_ids)))
    if len(bots) != len(set(bot_ids)):
        raise ActionError("not_found", "No such bot.")
    return bots


# --- "Test this action" (the dashboard's button and the API's operation) -----------------------


BUILTIN_TRIAL = "The arguments fit; a test does not run built-ins."


@dataclass(frozen=True, slots=True)
class TrialResult:
    """What a test call did. `request` has header values masked and `response` has every
    header value redacted (chatbot.tools.endpoint), so both may be shown."""

    ok: bool
    error: str = ""
    status: int | None = None
    request: dict[str, Any] | None = None
    response: Any = None
    duration_ms: int | None = None


def try_action(tenant: Tenant, actor: Any, action: Action, sample: str) -> TrialResult:
    """Call the action with sample arguments (JSON text) through the guarded client. Built-ins
    are only checked: nothing is saved or handed off from a test."""
    try:
        arguments = parse_arguments(sample[:16_000], action.parameters or {})
    except SchemaProblem as exc:
        outcome = TrialResult(False, f"The sample arguments do not fit the schema: {exc}")
    else:
        if action.kind == ActionKind.HTTP:
            result = async_to_sync(endpoint.call)(action, arguments)
            outcome = TrialResult(
                result.ok,
                result.error,
                result.status,
                result.request,
                result.body,
                result.duration_ms,
            )
        elif action.kind == ActionKind.SHOW_CARD:
            card = clean_card(arguments)
            outcome = TrialResult(card is not None, response=card)
        else:
            outcome = TrialResult(
                True, response="The arguments fit; a test does not run built-ins."
            )
    audit.record(tenant, actor, "action.tested", target=action.name)
    return outcome
