"""Conversations, messages, visitors and canned responses in the REST API.

Agent writes go through `takeover` (the same functions as the inbox) acting as the key's
creator; exports and erasure reuse `export`. Lists read a fixed number of queries whatever
the page size (pinned in tests/api and bench/api).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema, Status

from chatbot.api.auth import actor, require_manager, require_write
from chatbot.api.errors import ApiError
from chatbot.api.schemas import (
    Limit,
    Text,
    check_public_id,
    decode_or_404,
    page_by_pk,
    page_by_time,
    with_errors,
)
from chatbot.lib import ids

from . import export, takeover
from .actions import ActionError
from .models import CannedResponse, Conversation, Message, Visitor
from .search import InboxFilter, filter_conversations

router = Router(tags=["conversations"])


# --- Schemas ----------------------------------------------------------------------------------


class VisitorBrief(Schema):
    id: str
    name: str
    email: str
    verified: bool


class ConversationOut(Schema):
    id: str
    bot: str
    visitor: VisitorBrief
    status: str
    assignee: str | None
    last_seq: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class ConversationPage(Schema):
    data: list[ConversationOut]
    next_cursor: str | None


class MessageOut(Schema):
    seq: int
    role: str
    text: str
    status: str
    author: str | None
    feedback: str | None
    created_at: datetime
    error_code: str


class MessagePage(Schema):
    data: list[MessageOut]
    next_after_seq: int | None


class TextIn(Schema):
    text: Text


class AssignIn(Schema):
    member: Text | None = None


class VisitorOut(Schema):
    id: str
    bot: str
    name: str
    email: str
    verified: bool
    external_id: str
    locale: str
    page_url: str
    created_at: datetime
    last_seen_at: datetime


class ErasedOut(Schema):
    conversations: int
    messages: int
    attachments: int
    contacts: int


class CannedIn(Schema):
    shortcut: Text
    text: Text


class CannedOut(Schema):
    id: str
    shortcut: str
    text: str
    created_at: datetime


class CannedPage(Schema):
    data: list[CannedOut]
    next_cursor: str | None


class ConversationFilters(Schema):
    q: Text = ""
    status: Literal["bot", "waiting", "agent", "closed", ""] = ""
    bot: Text = ""
    assignee: Text = ""
    identity: Literal["identified", "anonymous", ""] = ""
    rating: Literal["up", "down", ""] = ""
    date_from: date | None = None
    date_to: date | None = None
    cursor: Text | None = None
    limit: Limit = 25


class ExportFilters(Schema):
    """The list's filters (without paging) and the file's format."""

    q: Text = ""
    status: Literal["bot", "waiting", "agent", "closed", ""] = ""
    bot: Text = ""
    assignee: Text = ""
    identity: Literal["identified", "anonymous", ""] = ""
    rating: Literal["up", "down", ""] = ""
    date_from: date | None = None
    date_to: date | None = None
    format: Literal["json", "csv"] = "json"


class CannedPatch(Schema):
    shortcut: Text | None = None
    text: Text | None = None


# --- Helpers ----------------------------------------------------------------------------------


def _tenant(request: HttpRequest) -> Any:
    return request.tenant  # type: ignore[attr-defined]


def conversation_out(conversation: Conversation) -> dict[str, Any]:
    visitor = conversation.visitor
    return {
        "id": conversation.public_id,
        "bot": ids.encode("bot", conversation.bot_id),
        "visitor": {
            "id": visitor.public_id,
            "name": visitor.name,
            "email": visitor.email,
            "verified": visitor.verified,
        },
        "status": conversation.status,
        "assignee": ids.encode("usr", conversation.assignee_id)
        if conversation.assignee_id
        else None,
        "last_seq": conversation.last_seq,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "closed_at": conversation.closed_at,
    }


def message_out(message: Message) -> dict[str, Any]:
    return {
        "seq": message.seq,
        "role": message.role,
        "text": message.text,
        "status": message.status,
        "author": ids.encode("usr", message.author_id) if message.author_id else None,
        "feedback": message.feedback or None,
        "created_at": message.created_at,
        "error_code": message.error_code,
    }


def get_conversation(request: HttpRequest, conversation_id: str) -> Conversation:
    check_public_id(conversation_id, "conversation")
    found = (
        Conversation.objects.for_tenant(_tenant(request))
        .select_related("visitor")
        .filter(public_id=conversation_id)
        .first()
    )
    if found is None:
        raise ApiError(404, "No such conversation.")
    return found


def get_visitor(request: HttpRequest, visitor_id: str) -> Visitor:
    check_public_id(visitor_id, "visitor")
    found = Visitor.objects.for_tenant(_tenant(request)).filter(public_id=visitor_id).first()
    if found is None:
        raise ApiError(404, "No such visitor.")
    return found


def _refusal(exc: ActionError) -> ApiError:
    status = {"not_found": 404, "conversation_closed": 409}.get(exc.code, 422)
    return ApiError(status, exc.message, exc.code)


# --- Conversations ----------------------------------------------------------------------------


@router.get(
    "/conversations",
    response=with_errors(ConversationPage),
    url_name="conversations",
    summary="List conversations, newest activity first, with the inbox's filters and search",
    tags=["conversations"],
)
def list_conversations(request: HttpRequest, filters: Query[ConversationFilters]) -> Any:
    rows, next_cursor = page_by_time(
        _filtered(request, filters).select_related("visitor"),
        filters.cursor,
        filters.limit,
        "updated_at",
    )
    return {"data": [conversation_out(c) for c in rows], "next_cursor": next_cursor}


def _filtered(request: HttpRequest, filters: ConversationFilters | ExportFilters) -> Any:
    """The inbox's filters over the key's workspace (`assignee=me` is the key's creator)."""
    bot_id = None
    if filters.bot:
        bot_id = ids.decode("bot", filters.bot) or -1  # unknown: matches nothing
    wanted = InboxFilter(
        query=filters.q[:200],
        bot_id=bot_id,
        status=filters.status,
        date_from=filters.date_from,
        date_to=filters.date_to,
        rating=filters.rating,
        identity=filters.identity,
        assignee=filters.assignee if filters.assignee in ("me", "unassigned") else "",
    )
    key = request.auth  # type: ignore[attr-defined]
    conversations = filter_conversations(_tenant(request), wanted, user_id=key.created_by_id)
    if filters.assignee not in ("", "me", "unassigned"):
        conversations = conversations.filter(assignee_id=ids.decode("usr", filters.assignee) or -1)
    return conversations


# Before /conversations/{conversation_id}, which would otherwise take "export" for an id.
@router.get(
    "/conversations/export",
    response=with_errors(dict[str, Any]),
    url_name="conversations_export",
    summary="Every conversation matching the list's filters, as JSON or CSV (owners and admins)",
    openapi_extra={"responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}},
)
def export_conversations(request: HttpRequest, filters: Query[ExportFilters]) -> Any:
    require_manager(request)
    conversations = _filtered(request, filters)
    count = conversations.count()
    given = {
        name: str(value)
        for name, value in filters.dict(exclude={"format"}).items()
        if value not in ("", None)
    }
    export.record_export(
        _tenant(request),
        actor(request),
        "filtered set",
        fmt=filters.format,
        count=count,
        filters=urlencode(given),
    )
    items = export.conversation_dicts(conversations)
    if filters.format == "csv":
        response = StreamingHttpResponse(
            export.csv_chunks(items), content_type="text/csv; charset=utf-8"
        )
    else:
        response = StreamingHttpResponse(
            export.json_chunks(items, {}), content_type="application/json"
        )
    response["Content-Disposition"] = f'attachment; filename="conversations.{filters.format}"'
    response["Cache-Control"] = "no-store"
    return response


@router.get(
    "/conversations/{conversation_id}",
    response=with_errors(ConversationOut),
    url_name="conversation",
    summary="Read a conversation",
)
def read_conversation(request: HttpRequest, conversation_id: str) -> Any:
    return conversation_out(get_conversation(request, conversation_id))


def _agent_action(request: HttpRequest, conversation_id: str, act: Any) -> Any:
    conversation = get_conversation(request, conversation_id)
    require_write(request)
    try:
        updated = act(conversation, actor(request))
    except ActionError as exc:
        raise _refusal(exc) from None
    updated.visitor = conversation.visitor
    return conversation_out(updated)


@router.post(
    "/conversations/{conversation_id}/take-over",
    response=with_errors(ConversationOut),
    url_name="conversation_take_over",
    summary="The key's member takes the conversation over; the bot stops",
)
def take_over(request: HttpRequest, conversation_id: str) -> Any:
    return _agent_action(request, conversation_id, takeover.take_over)


@router.post(
    "/conversations/{conversation_id}/hand-back",
    response=with_errors(ConversationOut),
    url_name="conversation_hand_back",
    summary="The bot answers again",
)
def hand_back(request: HttpRequest, conversation_id: str) -> Any:
    return _agent_action(request, conversation_id, takeover.hand_back)


@router.post(
    "/conversations/{conversation_id}/close",
    response=with_errors(ConversationOut),
    url_name="conversation_close",
    summary="Close the conversation",
)
def close(request: HttpRequest, conversation_id: str) -> Any:
    return _agent_action(request, conversation_id, takeover.close)


@router.post(
    "/conversations/{conversation_id}/reopen",
    response=with_errors(ConversationOut),
    url_name="conversation_reopen",
    summary="Reopen a closed conversation (the key's member has it)",
)
def reopen(request: HttpRequest, conversation_id: str) -> Any:
    return _agent_action(request, conversation_id, takeover.reopen)


@router.post(
    "/conversations/{conversation_id}/assign",
    response=with_errors(ConversationOut),
    url_name="conversation_assign",
    summary="Assign to a member (`member`: a member id from /members), or to nobody (null)",
)
def assign(request: HttpRequest, conversation_id: str, payload: AssignIn) -> Any:
    member = payload.member
    user_pk: int | None = None
    if member:
        user_pk = ids.decode("usr", member)
        if user_pk is None:
            get_conversation(request, conversation_id)  # a missing conversation wins
            raise ApiError(404, "No such member.", "not_found")
    return _agent_action(
        request,
        conversation_id,
        lambda conversation, user: takeover.assign(conversation, user, user_pk),
    )


@router.get(
    "/conversations/{conversation_id}/export",
    response=with_errors(dict[str, Any]),
    url_name="conversation_export",
    summary="The conversation with its visitor and every message (owners and admins)",
)
def export_conversation(request: HttpRequest, conversation_id: str) -> Any:
    conversation = get_conversation(request, conversation_id)
    require_manager(request)
    export.record_export(
        _tenant(request), actor(request), conversation.public_id, fmt="json", count=1
    )
    items = list(export.conversation_dicts(Conversation.objects.filter(pk=conversation.pk)))
    return items[0]


# --- Messages ---------------------------------------------------------------------------------


@router.get(
    "/conversations/{conversation_id}/messages",
    response=with_errors(MessagePage),
    url_name="conversation_messages",
    summary="Messages in order, after `after_seq` (0 for the start); internal notes included",
)
def list_messages(
    request: HttpRequest, conversation_id: str, after_seq: int = 0, limit: Limit = 100
) -> Any:
    conversation = get_conversation(request, conversation_id)
    if not 0 <= after_seq < 2**31:
        raise ApiError(422, "after_seq: must be between 0 and 2147483647.", "invalid")
    rows = list(
        Message.objects.filter(conversation=conversation, seq__gt=after_seq).order_by("seq")[
            : limit + 1
        ]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [message_out(m) for m in rows],
        "next_after_seq": rows[-1].seq if more else None,
    }


@router.post(
    "/conversations/{conversation_id}/messages",
    response=with_errors(MessageOut, 201),
    url_name="conversation_messages",
    summary="Send a message to the visitor as the key's member (takes the conversation over)",
)
def send_message(request: HttpRequest, conversation_id: str, payload: TextIn) -> Any:
    conversation = get_conversation(request, conversation_id)
    require_write(request)
    try:
        message = takeover.agent_reply(conversation, actor(request), payload.text)
    except ActionError as exc:
        raise _refusal(exc) from None
    return Status(201, message_out(message))


@router.post(
    "/conversations/{conversation_id}/notes",
    response=with_errors(MessageOut, 201),
    url_name="conversation_notes",
    summary="Add an internal note (seen by the team, never by the visitor)",
)
def add_note(request: HttpRequest, conversation_id: str, payload: TextIn) -> Any:
    conversation = get_conversation(request, conversation_id)
    require_write(request)
    try:
        note = takeover.add_note(conversation, actor(request), payload.text)
    except ActionError as exc:
        raise _refusal(exc) from None
    return Status(201, message_out(note))


# --- Visitors ---------------------------------------------------------------------------------


def visitor_out(visitor: Visitor) -> dict[str, Any]:
    return {
        "id": visitor.public_id,
        "bot": ids.encode("bot", visitor.bot_id),
        **{
            name: getattr(visitor, name)
            for name in (
                "name",
                "email",
                "verified",
                "external_id",
                "locale",
                "page_url",
                "created_at",
                "last_seen_at",
            )
        },
    }


@router.get(
    "/visitors/{visitor_id}",
    response=with_errors(VisitorOut),
    url_name="visitor",
    summary="Read a visitor",
    tags=["visitors"],
)
def read_visitor(request: HttpRequest, visitor_id: str) -> Any:
    return visitor_out(get_visitor(request, visitor_id))


@router.get(
    "/visitors/{visitor_id}/export",
    response=with_errors(dict[str, Any]),
    url_name="visitor_export",
    summary="Everything stored about a visitor (owners and admins)",
    tags=["visitors"],
)
def export_visitor(request: HttpRequest, visitor_id: str) -> Any:
    visitor = get_visitor(request, visitor_id)
    require_manager(request)
    data = export.visitor_export(visitor)
    export.record_export(
        _tenant(request),
        actor(request),
        f"visitor {visitor.public_id}",
        fmt="json",
        count=len(data["conversations"]),
    )
    return data


@router.delete(
    "/visitors/{visitor_id}",
    response=with_errors(ErasedOut),
    url_name="visitor",
    summary="Erase a visitor: conversations, messages, files, contacts (owners and admins)",
    tags=["visitors"],
)
def erase_visitor(request: HttpRequest, visitor_id: str) -> Any:
    visitor = get_visitor(request, visitor_id)
    require_write(request)
    require_manager(request)
    return export.erase_visitor(_tenant(request), actor(request), visitor)


# --- Canned responses -------------------------------------------------------------------------


def canned_out(canned: CannedResponse) -> dict[str, Any]:
    return {
        "id": ids.encode("cnd", canned.pk),
        "shortcut": canned.shortcut,
        "text": canned.text,
        "created_at": canned.created_at,
    }


@router.get(
    "/canned-responses",
    response=with_errors(CannedPage),
    url_name="canned_responses",
    summary="List canned responses",
    tags=["canned responses"],
)
def list_canned(request: HttpRequest, cursor: Text | None = None, limit: Limit = 25) -> Any:
    rows, next_cursor = page_by_pk(
        CannedResponse.objects.for_tenant(_tenant(request)), cursor, limit, "cnd"
    )
    return {"data": [canned_out(c) for c in rows], "next_cursor": next_cursor}


def _checked_canned(shortcut: str, text: str) -> tuple[str, str]:
    shortcut, text = shortcut.strip().lower(), text.strip()
    if not re.fullmatch(r"[a-z0-9_-]{1,40}", shortcut) or not text or len(text) > 2000:
        raise ApiError(
            422,
            "A shortcut is 1-40 letters, digits, - or _, and the text 1-2000 characters.",
            "invalid",
        )
    return shortcut, text


def get_canned(request: HttpRequest, canned_id: str) -> CannedResponse:
    pk = decode_or_404("cnd", canned_id, "canned response")
    canned = CannedResponse.objects.for_tenant(_tenant(request)).filter(pk=pk).first()
    if canned is None:
        raise ApiError(404, "No such canned response.")
    return canned


@router.post(
    "/canned-responses",
    response=with_errors(CannedOut, 201),
    url_name="canned_responses",
    summary="Add a canned response (owners and admins)",
    tags=["canned responses"],
)
def create_canned(request: HttpRequest, payload: CannedIn) -> Any:
    require_write(request)
    require_manager(request)
    shortcut, text = _checked_canned(payload.shortcut, payload.text)
    try:
        with transaction.atomic():
            canned = CannedResponse.objects.create(
                tenant=_tenant(request), shortcut=shortcut, text=text
            )
    except IntegrityError:
        raise ApiError(409, f"The shortcut /{shortcut} is already taken.") from None
    return Status(201, canned_out(canned))


@router.patch(
    "/canned-responses/{canned_id}",
    response=with_errors(CannedOut),
    url_name="canned_response",
    summary="Change a canned response's shortcut or text (owners and admins)",
    tags=["canned responses"],
)
def update_canned(request: HttpRequest, canned_id: str, payload: CannedPatch) -> Any:
    canned = get_canned(request, canned_id)
    require_write(request)
    require_manager(request)
    shortcut, text = _checked_canned(
        canned.shortcut if payload.shortcut is None else payload.shortcut,
        canned.text if payload.text is None else payload.text,
    )
    canned.shortcut, canned.text = shortcut, text
    try:
        with transaction.atomic():
            canned.save(update_fields=["shortcut", "text"])
    except IntegrityError:
        raise ApiError(409, f"The shortcut /{shortcut} is already taken.") from None
    return canned_out(canned)


@router.delete(
    "/canned-responses/{canned_id}",
    response=with_errors(None, 204),
    url_name="canned_response",
    summary="Delete a canned response (owners and admins)",
    tags=["canned responses"],
)
def delete_canned(request: HttpRequest, canned_id: str) -> Any:
    canned = get_canned(request, canned_id)
    require_write(request)
    require_manager(request)
    canned.delete()
    return Status(204, None)
