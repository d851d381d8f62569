"""Actions, their recorded calls, and contacts in the REST API.

Action writes go through the dashboard's own validation (ActionForm), so the API and the
dashboard accept exactly the same values; "test" runs `actions.try_action`, the function
behind the dashboard's test button (the guarded outbound client, header values redacted).
Header values are write-only: answers carry `header_names`, never a value.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from chatbot.api.auth import actor, require_manager, require_write
from chatbot.api.errors import ApiError
from chatbot.api.schemas import Limit, Text, decode_or_404, page_by_pk, with_errors
from chatbot.conversations.actions import ActionError
from chatbot.conversations.api import get_conversation
from chatbot.lib import ids
from chatbot.tenants import audit

from . import actions, export
from .endpoint import headers_of
from .forms import HEADER_NAME, ActionForm
from .models import MAX_HEADERS, MAX_TIMEOUT_SECONDS, Action, ActionCall, ActionKind, Contact

router = Router(tags=["actions"])

ActionKindName = Literal["http", "capture_lead", "handoff", "search_knowledge", "show_card"]
MethodName = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


# --- Schemas ----------------------------------------------------------------------------------


class ActionOut(Schema):
    id: str
    kind: str
    name: str
    title: str
    description: str
    parameters: dict[str, Any]
    url: str
    method: str
    header_names: list[str]
    timeout_seconds: int
    needs_confirmation: bool
    enabled: bool
    bots: list[str]
    created_at: datetime
    updated_at: datetime


class ActionPage(Schema):
    data: list[ActionOut]
    next_cursor: str | None


class ActionIn(Schema):
    """Every field optional on update. To create: `kind` (default `http`); a built-in kind
    starts from its usual name, title, description and arguments. `headers` replaces the
    stored ones (`{}` removes them; leave it out to keep them); values are never returned."""

    kind: ActionKindName | None = None
    name: Text | None = None
    title: Text | None = None
    description: Text | None = None
    parameters: dict[str, Any] | None = None
    url: Text | None = None
    method: MethodName | None = None
    headers: dict[Text, Text] | None = Field(default=None, max_length=MAX_HEADERS)
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_SECONDS)
    needs_confirmation: bool | None = None
    enabled: bool | None = None
    bots: list[Text] | None = Field(default=None, max_length=500)


class TrialIn(Schema):
    arguments: dict[str, Any] = {}


class TrialOut(Schema):
    ok: bool
    error: str
    status: int | None
    request: dict[str, Any] | None
    response: Any
    duration_ms: int | None


class CallOut(Schema):
    id: str
    reply_seq: int | None
    action: str | None
    name: str
    title: str
    kind: str
    arguments: dict[str, Any]
    status: str
    result: Any
    card: dict[str, Any] | None
    error: str
    duration_ms: int | None
    confirmed_by: str | None
    confirmed_at: datetime | None
    created_at: datetime


class CallPage(Schema):
    data: list[CallOut]
    next_cursor: str | None


class ContactOut(Schema):
    id: str
    bot: str | None
    visitor: str | None
    conversation: str | None
    name: str
    email: str
    phone: str
    message: str
    created_at: datetime


class ContactPage(Schema):
    data: list[ContactOut]
    next_cursor: str | None


class ContactFilters(Schema):
    q: Text = ""
    bot: Text = ""
    cursor: Text | None = None
    limit: Limit = 25


class ContactExportFilters(Schema):
    q: Text = ""
    bot: Text = ""
    format: Literal["json", "csv"] = "json"


# --- Helpers ----------------------------------------------------------------------------------


def _tenant(request: HttpRequest) -> Any:
    return request.tenant  # type: ignore[attr-defined]


def _header_names(action: Action) -> list[str]:
    if not action.headers_encrypted:
        return []
    try:
        return sorted(headers_of(action))
    except Exception:  # encrypted under a key no longer configured: set them again
        return []


def action_out(action: Action) -> dict[str, Any]:
    return {
        "id": ids.encode("act", action.pk),
        "kind": action.kind,
        "name": action.name,
        "title": action.title,
        "description": action.description,
        "parameters": action.parameters or {},
        "url": action.url,
        "method": action.method,
        "header_names": _header_names(action),
        "timeout_seconds": action.timeout_seconds,
        "needs_confirmation": action.needs_confirmation,
        "enabled": action.enabled,
        "bots": [ids.encode("bot", bot.pk) for bot in action.bots.all()],
        "created_at": action.created_at,
        "updated_at": action.updated_at,
    }


def _action_to_change(request: HttpRequest, action_id: str) -> Action:
    """The action a write names: found first (another workspace's is a 404 for any key),
    then a read-write key of an owner or admin."""
    action = get_action(request, action_id)
    require_write(request)
    require_manager(request)
    return action


def get_action(request: HttpRequest, action_id: str) -> Action:
    """The key's workspace's action, or the same 404 as a missing one."""
    pk = decode_or_404("act", action_id, "action")
    found = (
        Action.objects.for_tenant(_tenant(request)).prefetch_related("bots").filter(pk=pk).first()
    )
    if found is None:
        raise ApiError(404, "No such action.")
    return found


MAX_DEPTH = 32


def _json_problem(value: Any) -> str | None:
    """What makes free-form JSON unusable: nesting deeper than MAX_DEPTH (schemas and
    arguments are shallow; deep ones only exhaust the stack), or NUL or a lone surrogate in
    a string (PostgreSQL's jsonb and UTF-8 refuse them: the rule of `Text`). Iterative, so
    any depth the JSON parser accepted is walked safely."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or any("\ud800" <= ch <= "\udfff" for ch in item):
                return "must not contain NUL characters or lone surrogates"
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return f"must not be nested more than {MAX_DEPTH} levels deep"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, f"{field}: {message}", "invalid")


def _bot_pks(request: HttpRequest, values: list[str]) -> list[int]:
    """The workspace's bots by id; an unknown or another workspace's id is a 404."""
    pks = [ids.decode("bot", value) for value in values]
    if any(pk is None for pk in pks):
        raise ApiError(404, "No such bot.")
    wanted = [pk for pk in pks if pk is not None]
    try:
        actions.bots_for(_tenant(request), wanted)
    except ActionError:
        raise ApiError(404, "No such bot.") from None
    return wanted


def _form(request: HttpRequest, action: Action | None, payload: ActionIn) -> ActionForm:
    """The dashboard's form, bound to the action's current values with the payload's changes."""
    given = payload.dict(exclude_unset=True)
    problem = _json_problem(given.get("parameters"))
    if problem:
        raise _invalid("parameters", problem)
    headers = given.get("headers")
    if headers is not None and any(
        "\r" in text or "\n" in text for pair in headers.items() for text in pair
    ):
        raise _invalid("headers", "a header name or value cannot contain a line break")
    if headers is not None and any(not re.match(HEADER_NAME, n) for n in headers):
        raise _invalid("headers", "header names are letters, digits and - (at most 64)")
    bot_pks = _bot_pks(request, given["bots"]) if given.get("bots") is not None else None

    kind = action.kind if action is not None else (given.get("kind") or ActionKind.HTTP)
    if action is not None:
        data: dict[str, Any] = {
            name: getattr(action, name)
            for name in (
                "name",
                "title",
                "description",
                "url",
                "method",
                "timeout_seconds",
                "needs_confirmation",
                "enabled",
            )
        }
        data["parameters"] = action.parameters or {}
        data["bots"] = [bot.pk for bot in action.bots.all()]
    else:
        data = {
            "url": "",
            "method": "POST",
            "timeout_seconds": 10,
            "needs_confirmation": False,
            "enabled": True,
            "bots": [],
            "parameters": {"type": "object", "properties": {}},
            **actions.BUILTINS.get(kind, {}),
        }
    for name in (
        "name",
        "title",
        "description",
        "url",
        "method",
        "timeout_seconds",
        "needs_confirmation",
        "enabled",
        "parameters",
    ):
        if given.get(name) is not None:
            data[name] = given[name]
    if bot_pks is not None:
        data["bots"] = bot_pks
    if action is None and not data.get("name"):
        raise _invalid("name", "an action needs a name (lower-case letters, digits and _)")
    posted: dict[str, Any] = {
        "name": data.get("name") or "",
        "title": data.get("title") or "",
        "description": data.get("description") or "",
        "url": data["url"],
        "method": data["method"],
        "timeout_seconds": data["timeout_seconds"],
        "schema_mode": "raw",
        "parameters_json": json.dumps(data["parameters"]),
        "bots": data["bots"],
    }
    # Unchecked boxes are absent ones; headers: "" keeps the stored ones, "clear" removes them.
    if data["needs_confirmation"]:
        posted["needs_confirmation"] = "on"
    if data["enabled"]:
        posted["enabled"] = "on"
    if headers is not None:
        posted["headers_text"] = (
            "\n".join(f"{name}: {value}" for name, value in headers.items()) or "clear"
        )
    form = ActionForm(data=posted, instance=action, tenant=_tenant(request), kind=kind)
    if not form.is_valid():
        names = {"parameters_json": "parameters", "headers_text": "headers", "__all__": "action"}
        fields = [
            {"field": names.get(name, name), "message": " ".join(str(m) for m in messages)}
            for name, messages in form.errors.items()
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
        raise ApiError(422, f"The action is not valid ({summary}).", "invalid")
    return form


def _save(request: HttpRequest, form: ActionForm, event: str) -> Action:
    with transaction.atomic():
        action = form.save()
        audit.record(_tenant(request), actor(request), event, target=action.name)
    return Action.objects.prefetch_related("bots").get(pk=action.pk)


# --- Actions ----------------------------------------------------------------------------------


@router.get(
    "/actions", response=with_errors(ActionPage), url_name="actions", summary="List actions"
)
def list_actions(request: HttpRequest, cursor: Text | None = None, limit: Limit = 25) -> Any:
    rows, next_cursor = page_by_pk(
        Action.objects.for_tenant(_tenant(request)).prefetch_related("bots"), cursor, limit, "act"
    )
    return {"data": [action_out(a) for a in rows], "next_cursor": next_cursor}


@router.post(
    "/actions",
    response=with_errors(ActionOut, 201),
    url_name="actions",
    summary="Create an action (owners and admins)",
)
def create_action(request: HttpRequest, payload: ActionIn) -> Any:
    require_write(request)
    require_manager(request)
    action = _save(request, _form(request, None, payload), "action.created")
    return Status(201, action_out(action))


@router.get(
    "/actions/{action_id}",
    response=with_errors(ActionOut),
    url_name="action",
    summary="Read an action",
)
def read_action(request: HttpRequest, action_id: str) -> Any:
    return action_out(get_action(request, action_id))


@router.patch(
    "/actions/{action_id}",
    response=with_errors(ActionOut),
    url_name="action",
    summary="Update an action, its headers or the bots that use it (owners and admins)",
)
def update_action(request: HttpRequest, action_id: str, payload: ActionIn) -> Any:
    action = _action_to_change(request, action_id)
    if payload.kind is not None and payload.kind != action.kind:
        raise _invalid("kind", "an action's kind cannot change; create a new action")
    return action_out(_save(request, _form(request, action, payload), "action.updated"))


@router.delete(
    "/actions/{action_id}",
    response=with_errors(None, 204),
    url_name="action",
    summary="Delete an action (its recorded calls stay in their conversations)",
)
def delete_action(request: HttpRequest, action_id: str) -> Any:
    action = _action_to_change(request, action_id)
    actions.delete_action(_tenant(request), actor(request), action)
    return Status(204, None)


@router.post(
    "/actions/{action_id}/test",
    response=with_errors(TrialOut),
    url_name="action_test",
    summary="Call the action with sample arguments, as the dashboard's test button does",
)
def run_action_test(request: HttpRequest, action_id: str, payload: TrialIn) -> Any:
    action = _action_to_change(request, action_id)
    problem = _json_problem(payload.arguments)
    if problem:
        raise _invalid("arguments", problem)
    sample = json.dumps(payload.arguments)
    if len(sample) > 16_000:
        raise _invalid("arguments", "at most 16,000 characters of JSON")
    result = actions.try_action(_tenant(request), actor(request), action, sample)
    return {
        "ok": result.ok,
        "error": result.error,
        "status": result.status,
        "request": result.request,
        "response": result.response,
        "duration_ms": result.duration_ms,
    }


# --- Recorded calls ---------------------------------------------------------------------------


def call_out(call: ActionCall) -> dict[str, Any]:
    return {
        "id": call.public_id,
        "reply_seq": call.message.seq if call.message_id and call.message else None,
        "action": ids.encode("act", call.action_id) if call.action_id else None,
        "name": call.name,
        "title": call.title,
        "kind": call.kind,
        "arguments": call.arguments if isinstance(call.arguments, dict) else {},
        "status": call.status,
        "result": call.result,
        "card": call.card if isinstance(call.card, dict) else None,
        "error": call.error,
        "duration_ms": call.duration_ms,
        "confirmed_by": call.confirmed_by or None,
        "confirmed_at": call.confirmed_at,
        "created_at": call.created_at,
    }


@router.get(
    "/conversations/{conversation_id}/action-calls",
    response=with_errors(CallPage),
    url_name="conversation_action_calls",
    summary="The actions the bot called in a conversation, newest first",
    tags=["conversations"],
)
def list_calls(
    request: HttpRequest, conversation_id: str, cursor: Text | None = None, limit: Limit = 25
) -> Any:
    conversation = get_conversation(request, conversation_id)
    rows, next_cursor = page_by_pk(
        ActionCall.objects.filter(conversation=conversation).select_related("message"),
        cursor,
        limit,
        "acl",
    )
    return {"data": [call_out(c) for c in rows], "next_cursor": next_cursor}


# --- Contacts ---------------------------------------------------------------------------------


def _bot_filter(value: str) -> int | None:
    if not value:
        return None
    return ids.decode("bot", value) or -1  # unknown: matches nothing


@router.get(
    "/contacts",
    response=with_errors(ContactPage),
    url_name="contacts",
    summary="List contacts (leads the bots captured), newest first; `q` searches name and email",
    tags=["contacts"],
)
def list_contacts(request: HttpRequest, filters: Query[ContactFilters]) -> Any:
    rows = export.contacts_for(_tenant(request), filters.q, _bot_filter(filters.bot))
    page, next_cursor = page_by_pk(
        rows.select_related("visitor", "conversation"), filters.cursor, filters.limit, "ctc"
    )
    return {"data": [actions.contact_payload(c) for c in page], "next_cursor": next_cursor}


# Before /contacts/{contact_id}, which would otherwise take "export" for an id.
@router.get(
    "/contacts/export",
    response=with_errors(dict[str, Any]),
    url_name="contacts_export",
    summary="Every contact matching `q` and `bot`, as JSON or CSV (owners and admins)",
    tags=["contacts"],
    openapi_extra={
        "responses": {
            200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        }
    },
)
def export_contacts(request: HttpRequest, filters: Query[ContactExportFilters]) -> Any:
    require_manager(request)
    rows = export.contacts_for(_tenant(request), filters.q, _bot_filter(filters.bot))
    export.record_export(
        _tenant(request), actor(request), fmt=filters.format, q=filters.q, bot=filters.bot
    )
    if filters.format == "csv":
        response = StreamingHttpResponse(
            export.csv_chunks(rows), content_type="text/csv; charset=utf-8"
        )
    else:
        response = StreamingHttpResponse(export.json_chunks(rows), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="contacts.{filters.format}"'
    response["Cache-Control"] = "no-store"
    return response


def get_contact(request: HttpRequest, contact_id: str) -> Contact:
    pk = decode_or_404("ctc", contact_id, "contact")
    found = (
        Contact.objects.for_tenant(_tenant(request))
        .select_related("visitor", "conversation")
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise ApiError(404, "No such contact.")
    return found


@router.get(
    "/contacts/{contact_id}",
    response=with_errors(ContactOut),
    url_name="contact",
    summary="Read a contact",
    tags=["contacts"],
)
def read_contact(request: HttpRequest, contact_id: str) -> Any:
    return actions.contact_payload(get_contact(request, contact_id))


@router.delete(
    "/contacts/{contact_id}",
    response=with_errors(None, 204),
    url_name="contact",
    summary="Delete a contact (owners and admins); erasing its visitor deletes it too",
    tags=["contacts"],
)
def delete_contact(request: HttpRequest, contact_id: str) -> Any:
    contact = get_contact(request, contact_id)
    require_write(request)
    require_manager(request)
    actions.delete_contact(_tenant(request), actor(request), contact)
    return Status(204, None)
