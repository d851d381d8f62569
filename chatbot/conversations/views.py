"""The inbox and history pages: list, search, transcript, takeover, export, erase.

Views parse and authorise (agents and up use the inbox; exports and erasure are for owners
and admins), find rows through the tenant (a foreign id is a 404 like a missing one), and
call takeover.py / export.py. Live updates come over /ws/dashboard/ (consumers.py); the
pages refetch their server-rendered fragments when told something changed, so message text
is only ever rendered here, through chatbot.lib.render.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_POST

from chatbot.bots.models import Bot
from chatbot.lib.ids import parse_id
from chatbot.lib.render import render_markdown
from chatbot.tenants.models import Membership
from chatbot.tenants.permissions import manager_required, member_required

from . import export, takeover
from .actions import ActionError
from .models import CannedResponse, Conversation, Message, Role, Status, Visitor
from .payloads import attachment_url
from .search import InboxFilter, filter_conversations, waiting_count

PAGE_SIZES = (25, 50, 100)


# --- Parsing the filters ----------------------------------------------------------------------


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    """A whole number from the query, bounded like an id (never an overflow in a query)."""
    return parse_id(value)


def parse_filter(request: HttpRequest) -> InboxFilter:
    get = request.GET
    return InboxFilter(
        query=(get.get("q") or "").strip()[:200],
        bot_id=_int(get.get("bot")),
        status=get.get("status") or "",
        date_from=_date(get.get("from")),
        date_to=_date(get.get("to")),
        rating=get.get("rating") or "",
        identity=get.get("identity") or "",
        assignee=get.get("assignee") or "",
    )


def _conversation(request: HttpRequest, public_id: str) -> Conversation:
    return Conversation.objects.get_for_tenant_or_404(
        request.tenant,  # type: ignore[attr-defined]
        public_id=public_id,
    )


def _filtered(request: HttpRequest) -> Any:
    return filter_conversations(
        request.tenant,  # type: ignore[attr-defined]
        parse_filter(request),
        user_id=request.user.pk,
    )


# --- The list ---------------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict[str, Any]:
    tenant = request.tenant  # type: ignore[attr-defined]
    wanted = parse_filter(request)
    last_text = (
        Message.objects.filter(
            conversation=OuterRef("pk"), role__in=[Role.VISITOR, Role.ASSISTANT, Role.AGENT]
        )
        .exclude(text="")
        .order_by("-seq")
        .values("text")[:1]
    )
    last_reply_status = (
        Message.objects.filter(conversation=OuterRef("pk"), role=Role.ASSISTANT)
        .order_by("-seq")
        .values("status")[:1]
    )
    size = _int(request.GET.get("size")) or PAGE_SIZES[0]
    size = size if size in PAGE_SIZES else PAGE_SIZES[0]
    # Two queries for the page whatever its size: the page's ids (sorted and cut by the
    # database on the bare table), then those rows with their related rows joined and the
    # preview as a subquery, which then runs for the page's rows only.
    page = Paginator(_filtered(request).values_list("pk", flat=True), size).get_page(
        request.GET.get("page")
    )
    ids = list(page.object_list)
    rows = (
        Conversation.objects.filter(pk__in=ids)
        .select_related("bot", "visitor", "assignee")
        .annotate(preview=Subquery(last_text), last_reply_status=Subquery(last_reply_status))
        .in_bulk()
    )
    page.object_list = [rows[pk] for pk in ids if pk in rows]
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "page": page,
        "filter": wanted,
        "size": size,
        "sizes": PAGE_SIZES,
        "query_string": query.urlencode(),
        "bots": list(Bot.objects.for_tenant(tenant).order_by("name").values("pk", "name")),
        "statuses": Status.choices,
        "waiting": waiting_count(tenant),
        "can_export": request.membership.can_manage,  # type: ignore[attr-defined]
    }


@member_required
def waiting_json(request: HttpRequest) -> HttpResponse:
    """How many visitors wait for a person (the nav's count refetches it on inbox events)."""
    response = JsonResponse({"waiting": waiting_count(request.tenant)})  # type: ignore[attr-defined]
    response["Cache-Control"] = "no-store"
    return response


@member_required
def conversation_list(request: HttpRequest) -> HttpResponse:
    template = (
        "conversations/_list.html"
        if request.GET.get("fragment") == "list"
        else "conversations/list.html"
    )
    return render(request, template, _list_context(request))


# --- One conversation -------------------------------------------------------------------------

BROWSERS = [
    ("Edge", re.compile(r"Edg/([\d]+)")),
    ("Opera", re.compile(r"OPR/([\d]+)")),
    ("Firefox", re.compile(r"Firefox/([\d]+)")),
    ("Chrome", re.compile(r"Chrome/([\d]+)")),
    ("Safari", re.compile(r"Version/([\d]+).*Safari")),
]
SYSTEMS = [
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
]


def browser_summary(user_agent: str) -> str:
    """ "Firefox 128 on Windows" from a User-Agent string, or "" when unknown."""
    if not user_agent:
        return ""
    browser = next(
        (f"{name} {m.group(1)}" for name, rx in BROWSERS if (m := rx.search(user_agent))), ""
    )
    system = next((label for token, label in SYSTEMS if token in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or user_agent[:60]


def _messages(conversation: Conversation) -> list[Message]:
    from chatbot.tools.models import ActionCall

    calls = Prefetch("action_calls", queryset=ActionCall.objects.order_by("created_at"))
    return list(
        Message.objects.filter(conversation=conversation)
        .select_related("author")
        .prefetch_related("attachments", calls)
        .order_by("seq")
    )


SYSTEM_TEXT = {
    "handoff.requested": "The visitor asked for a person.",
    "agent.joined": "{name} joined the conversation.",
    "agent.left": "{name} handed the conversation back to the bot.",
    "conversation.closed": "{name} closed the conversation.",
}


def system_text(message: Message) -> str:
    """A system line in words (the widget words the same codes in the visitor's language)."""
    name = message.author.display_name if message.author_id and message.author else "Someone"
    template = SYSTEM_TEXT.get(message.text)
    return template.format(name=name) if template else message.text


def _detail_context(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    tenant = request.tenant  # type: ignore[attr-defined]
    visitor = conversation.visitor
    transcript = _messages(conversation)
    replies = [m for m in transcript if m.role == Role.ASSISTANT]
    conversation.last_reply_status = replies[-1].status if replies else None  # type: ignore[attr-defined]
    return {
        "conversation": conversation,
        "visitor": visitor,
        "browser": browser_summary(visitor.user_agent),
        "transcript": transcript,
        "members": list(
            Membership.objects.for_tenant(tenant).select_related("user").order_by("user__email")
        ),
        "canned": list(CannedResponse.objects.for_tenant(tenant).order_by("shortcut")),
        "can_export": request.membership.can_manage,  # type: ignore[attr-defined]
        "waiting": waiting_count(tenant),
        "Status": Status,
        "render_markdown": render_markdown,
        "system_text": system_text,
        # Re-encoded images, served as downloads (Content-Disposition: attachment, nosniff).
        "attachment_url": attachment_url,
    }


def _load(request: HttpRequest, public_id: str) -> Conversation:
    conversation = _conversation(request, public_id)
    # The bot and visitor are shown on every detail render; fetch them with the row.
    return Conversation.objects.select_related("bot", "visitor", "assignee").get(pk=conversation.pk)


@member_required
def conversation_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    conversation = _load(request, public_id)
    return render(request, "conversations/detail.html", _detail_context(request, conversation))


@member_required
def conversation_transcript(request: HttpRequest, public_id: str) -> HttpResponse:
    """The transcript and the status bar alone (the page refetches it on live events)."""
    conversation = _load(request, public_id)
    return render(request, "conversations/_live.html", _detail_context(request, conversation))


def _act(request: HttpRequest, public_id: str, done: str, act: Any) -> HttpResponse:
    conversation = _conversation(request, public_id)
    try:
        act(conversation)
    except ActionError as exc:
        messages.error(request, exc.message)
    else:
        if done:
            messages.success(request, done)
    return redirect("conversations:detail", public_id=public_id)


@member_required
@require_POST
def conversation_takeover(request: HttpRequest, public_id: str) -> HttpResponse:
    return _act(
        request,
        public_id,
        "You have the conversation. The visitor sees that you joined.",
        lambda c: takeover.take_over(c, request.user),  # type: ignore[arg-type]
    )


@member_required
@require_POST
def conversation_handback(request: HttpRequest, public_id: str) -> HttpResponse:
    return _act(
        request,
        public_id,
        "The bot answers again.",
        lambda c: takeover.hand_back(c, request.user),  # type: ignore[arg-type]
    )


@member_required
@require_POST
def conversation_assign(request: HttpRequest, public_id: str) -> HttpResponse:
    conversation = _conversation(request, public_id)
    try:
        takeover.assign(conversation, request.user, request.POST.get("user"))  # type: ignore[arg-type]
    except ActionError as exc:
        if exc.code == "not_found":
            raise Http404("Not found") from None  # a foreign member is a missing one
        messages.error(request, exc.message)
    else:
        messages.success(request, "Assignment saved.")
    return redirect("conversations:detail", public_id=public_id)


@member_required
@require_POST
def conversation_close(request: HttpRequest, public_id: str) -> HttpResponse:
    return _act(
        request,
        public_id,
        "Conversation closed.",
        lambda c: takeover.close(c, request.user),  # type: ignore[arg-type]
    )


@member_required
@require_POST
def conversation_reopen(request: HttpRequest, public_id: str) -> HttpResponse:
    return _act(
        request,
        public_id,
        "Conversation reopened; it is yours.",
        lambda c: takeover.reopen(c, request.user),  # type: ignore[arg-type]
    )


@member_required
@require_POST
def conversation_reply(request: HttpRequest, public_id: str) -> HttpResponse:
    return _act(
        request,
        public_id,
        "",
        lambda c: takeover.agent_reply(c, request.user, request.POST.get("text")),  # type: ignore[arg-type]
    )


@member_required
@require_POST
def conversation_note(request: HttpRequest, public_id: str) -> HttpResponse:
    return _act(
        request,
        public_id,
        "Note added (only your team sees it).",
        lambda c: takeover.add_note(c, request.user, request.POST.get("text")),  # type: ignore[arg-type]
    )


# --- Export and erase (owners and admins) -----------------------------------------------------


def _download(chunks: Any, fmt: str, filename: str) -> StreamingHttpResponse:
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


def _format(request: HttpRequest) -> str:
    return "csv" if request.GET.get("format") == "csv" else "json"


@manager_required
def conversation_export(request: HttpRequest, public_id: str) -> HttpResponseBase:
    conversation = _conversation(request, public_id)
    fmt = _format(request)
    export.record_export(
        request.tenant,  # type: ignore[attr-defined]
        request.user,  # type: ignore[arg-type]
        conversation.public_id,
        fmt=fmt,
        count=1,
    )
    items = export.conversation_dicts(Conversation.objects.filter(pk=conversation.pk))
    chunks = export.csv_chunks(items) if fmt == "csv" else export.json_chunks(items, {})
    return _download(chunks, fmt, conversation.public_id)


@manager_required
def conversations_export(request: HttpRequest) -> HttpResponseBase:
    """Every conversation matching the list's filters."""
    fmt = _format(request)
    conversations = _filtered(request)
    count = conversations.count()
    query = request.GET.copy()
    query.pop("format", None)
    export.record_export(
        request.tenant,  # type: ignore[attr-defined]
        request.user,  # type: ignore[arg-type]
        "filtered set",
        fmt=fmt,
        count=count,
        filters=query.urlencode(),
    )
    items = export.conversation_dicts(conversations)
    chunks = export.csv_chunks(items) if fmt == "csv" else export.json_chunks(items, {})
    return _download(chunks, fmt, "conversations")


def _visitor(request: HttpRequest, visitor_id: str) -> Visitor:
    return Visitor.objects.get_for_tenant_or_404(
        request.tenant,  # type: ignore[attr-defined]
        public_id=visitor_id,
    )


@manager_required
def visitor_export(request: HttpRequest, visitor_id: str) -> HttpResponse:
    visitor = _visitor(request, visitor_id)
    data = export.visitor_export(visitor)
    from chatbot.tenants import audit

    audit.record(
        request.tenant,  # type: ignore[attr-defined]
        request.user,
        "conversation.exported",
        target=f"visitor {visitor.public_id}",
        format="json",
        count=len(data["conversations"]),
    )
    response = JsonResponse(data, json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="visitor-{visitor.public_id}.json"'
    response["Cache-Control"] = "no-store"
    return response


@manager_required
def visitor_erase(request: HttpRequest, visitor_id: str) -> HttpResponse:
    visitor = _visitor(request, visitor_id)
    if request.method != "POST":
        counts = {
            "conversations": Conversation.objects.filter(visitor=visitor).count(),
            "messages": Message.objects.filter(conversation__visitor=visitor).count(),
        }
        return render(request, "conversations/erase.html", {"visitor": visitor, "counts": counts})
    if request.POST.get("confirm") != visitor.public_id:
        messages.error(request, "Type the visitor's id to confirm the erasure.")
        return redirect("conversations:visitor_erase", visitor_id=visitor.public_id)
    counts = export.erase_visitor(request.tenant, request.user, visitor)  # type: ignore[attr-defined, arg-type]
    messages.success(
        request,
        f"Visitor {visitor_id} erased: {counts['conversations']} conversations, "
        f"{counts['messages']} messages and {counts['attachments']} files deleted.",
    )
    return redirect("conversations:list")


# --- Canned responses -------------------------------------------------------------------------


@member_required
def canned_list(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    can_edit = request.membership.can_manage  # type: ignore[attr-defined]
    status = 200
    if request.method == "POST":
        if not can_edit:
            return render(
                request,
                "dashboard/forbidden.html",
                {
                    "needed": gettext_noop("an owner or an admin"),
                    "role": request.membership.get_role_display(),  # type: ignore[attr-defined]
                },
                status=403,
            )
        shortcut = (request.POST.get("shortcut") or "").strip().lower()
        text = (request.POST.get("text") or "").strip()
        if not re.fullmatch(r"[a-z0-9_-]{1,40}", shortcut) or not text or len(text) > 2000:
            messages.error(
                request,
                "A shortcut is 1-40 letters, digits, - or _, and the text 1-2000 characters.",
            )
            status = 400
        else:
            try:
                CannedResponse.objects.create(tenant=tenant, shortcut=shortcut, text=text)
            except IntegrityError:
                messages.error(request, f"The shortcut /{shortcut} is already taken.")
                status = 400
            else:
                messages.success(request, f"Saved /{shortcut}.")
                return redirect("conversations:canned")
    canned = CannedResponse.objects.for_tenant(tenant).order_by("shortcut")
    return render(
        request,
        "conversations/canned.html",
        {"canned": canned, "can_edit": can_edit},
        status=status,
    )


@manager_required
@require_POST
def canned_delete(request: HttpRequest, canned_id: int) -> HttpResponse:
    canned = CannedResponse.objects.get_for_tenant_or_404(
        request.tenant,  # type: ignore[attr-defined]
        pk=canned_id,
    )
    canned.delete()
    messages.success(request, f"Deleted /{canned.shortcut}.")
    return redirect("conversations:canned")
