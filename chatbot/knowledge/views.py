"""Dashboard pages for a bot's knowledge: the sources, one source, and "test your bot".

Managers only (owners and admins). Every source is read through the tenant
(`get_for_tenant_or_404`): another tenant's id answers 404, like a missing one.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.core.cache import cache
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from chatbot.bots.models import Bot
from chatbot.llm.service import stream_reply
from chatbot.llm.types import ChatMessage, Finish, Passage, TextDelta
from chatbot.tenants.permissions import manager_required

from . import actions
from .forms import FORMS, LANGUAGE_CHOICES, EditForm, FileForm, QAForm, SiteForm, TestForm, TextForm
from .models import Source, SourceKind, SourceStatus, SyncInterval, UnansweredQuestion
from .retrieval import Hit, search_with_embeddings

UNANSWERED_SHOWN = 20

log = logging.getLogger(__name__)

# "Test your bot" calls the model: a few dozen answers per tenant per window is plenty for
# checking knowledge, and keeps a script from turning the page into a free model proxy.
TEST_ANSWERS_PER_WINDOW = 30
TEST_WINDOW_SECONDS = 10 * 60


def _tenant(request: HttpRequest) -> Any:
    return request.tenant  # type: ignore[attr-defined]


def _chosen_bot(request: HttpRequest, bots: list[Bot]) -> Bot | None:
    wanted = request.GET.get("bot") or request.POST.get("bot")
    for bot in bots:
        if str(bot.pk) == wanted:
            return bot
    return bots[0] if bots else None


def _list_url(bot: Bot | None) -> str:
    url = reverse("knowledge:list")
    return f"{url}?bot={bot.pk}" if bot else url


def _list_context(request: HttpRequest, bot: Bot | None, bots: list[Bot]) -> dict[str, Any]:
    sources = list(
        Source.objects.for_tenant(_tenant(request))
        .filter(bot=bot)
        .annotate(chunk_count=Count("chunks"))
        .order_by("-created_at")
        if bot
        else Source.objects.none()
    )
    tenant = _tenant(request)
    initial = {"bot": bot.pk if bot else None}
    return {
        "bots": bots,
        "bot": bot,
        "sources": sources,
        "busy": any(s.status in (SourceStatus.PENDING, SourceStatus.SYNCING) for s in sources),
        "forms": {
            SourceKind.TEXT: TextForm(tenant=tenant, initial=initial),
            SourceKind.QA: QAForm(tenant=tenant, initial=initial),
            SourceKind.FILE: FileForm(tenant=tenant, initial=initial),
            SourceKind.URL: SiteForm(tenant=tenant, initial=initial),
        },
        "open_form": "",
        "intervals": SyncInterval.choices,
        "unanswered": list(
            UnansweredQuestion.objects.for_tenant(tenant)
            .filter(bot=bot)
            .order_by("-created_at")[:UNANSWERED_SHOWN]
            if bot
            else []
        ),
    }


@manager_required
def source_list(request: HttpRequest) -> HttpResponse:
    bots = list(Bot.objects.for_tenant(_tenant(request)).order_by("name"))
    bot = _chosen_bot(request, bots)
    return render(request, "knowledge/list.html", _list_context(request, bot, bots))


@manager_required
@require_POST
def add_source(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    kind = request.POST.get("kind", "")
    form_class = FORMS.get("url" if kind == SourceKind.SITEMAP else kind)
    bots = list(Bot.objects.for_tenant(tenant).order_by("name"))
    if form_class is None:
        messages.error(request, "Choose what kind of source to add.")
        return redirect(_list_url(_chosen_bot(request, bots)))
    form = form_class(request.POST, request.FILES, tenant=tenant)
    if form.is_valid():
        data = form.cleaned_data
        bot: Bot = data["bot"]
        try:
            source = _create(bot, form, data)
        except actions.KnowledgeError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"“{source.title}” was added; it is being read now.")
            return redirect("knowledge:detail", source_id=source.pk)
    bot_choice = form.cleaned_data.get("bot") if hasattr(form, "cleaned_data") else None
    context = _list_context(request, bot_choice or _chosen_bot(request, bots), bots)
    form_key = SourceKind.URL if kind == SourceKind.SITEMAP else kind
    context["forms"][form_key] = form
    context["open_form"] = form_key
    return render(request, "knowledge/list.html", context, status=400)


def _create(bot: Bot, form: Any, data: dict[str, Any]) -> Source:
    if isinstance(form, TextForm):
        return actions.add_text(bot, title=data["title"], text=data["text"])
    if isinstance(form, QAForm):
        return actions.add_qa(bot, question=data["question"], answer=data["answer"])
    if isinstance(form, FileForm):
        return actions.add_file(bot, upload=data["file"], title=data["title"])
    assert isinstance(form, SiteForm)
    return actions.add_site(
        bot,
        url=data["url"],
        kind=data["kind"],
        title=data["title"],
        max_depth=data["max_depth"],
        max_pages=data["max_pages"],
        sync_interval=data["sync_interval"],
    )


@manager_required
@require_http_methods(["GET", "POST"])
def source_detail(request: HttpRequest, source_id: int) -> HttpResponse:
    source: Source = Source.objects.get_for_tenant_or_404(_tenant(request), pk=source_id)
    form = EditForm(
        initial={"title": source.title, "body": source.body, "language": source.language}
    )
    status = 200
    if request.method == "POST":
        form = EditForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                actions.update_source(
                    source,
                    title=data["title"] or None,
                    body=data["body"] if source.kind in (SourceKind.TEXT, SourceKind.QA) else None,
                    sync_interval=data["sync_interval"],
                    language=data["language"] if "language" in request.POST else None,
                )
            except actions.KnowledgeError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Saved.")
                return redirect("knowledge:detail", source_id=source.pk)
        status = 400
    documents = source.documents.annotate(chunk_count=Count("chunks")).order_by("key")[:200]
    return render(
        request,
        "knowledge/detail.html",
        {
            "source": source,
            "bot": source.bot,
            "documents": documents,
            "form": form,
            "intervals": SyncInterval.choices,
            "languages": LANGUAGE_CHOICES,
            "busy": source.status in (SourceStatus.PENDING, SourceStatus.SYNCING),
            "chunk_count": source.chunks.count(),
        },
        status=status,
    )


@manager_required
@require_POST
def source_sync(request: HttpRequest, source_id: int) -> HttpResponse:
    source: Source = Source.objects.get_for_tenant_or_404(_tenant(request), pk=source_id)
    actions.request_sync(source)
    messages.success(request, f"“{source.title}” will be read again now.")
    return redirect("knowledge:detail", source_id=source.pk)


@manager_required
@require_POST
def source_delete(request: HttpRequest, source_id: int) -> HttpResponse:
    source: Source = Source.objects.get_for_tenant_or_404(_tenant(request), pk=source_id)
    bot = source.bot
    title = source.title
    actions.delete_source(source)
    messages.success(request, f"“{title}” was deleted; the bot no longer uses it.")
    return HttpResponseRedirect(_list_url(bot))


def _take_answer_slot(tenant_id: int) -> bool:
    key = f"knowledge:test-answers:{tenant_id}"
    cache.add(key, 0, timeout=TEST_WINDOW_SECONDS)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=TEST_WINDOW_SECONDS)
        used = 1
    return used <= TEST_ANSWERS_PER_WINDOW


async def _answer(bot: Bot, question: str, passages: list[Passage]) -> tuple[str, str]:
    """(the bot's reply, an error message) through the real reply path's model call."""
    text: list[str] = []
    error = ""
    history = [ChatMessage.text("user", question)]
    async for event in stream_reply(bot, history, knowledge=passages):
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, Finish) and event.error is not None:
            error = event.error.message
    return "".join(text), error


@manager_required
@require_http_methods(["GET", "POST"])
def test_bot(request: HttpRequest) -> HttpResponse:
    """Ask a question: see the passages retrieval picks and the answer the bot gives."""
    tenant = _tenant(request)
    bots = list(Bot.objects.for_tenant(tenant).order_by("name"))
    bot = _chosen_bot(request, bots)
    form = TestForm(tenant=tenant, initial={"bot": bot.pk if bot else None})
    hits: list[Hit] = []
    answer = error = ""
    asked = False
    status = 200
    if request.method == "POST":
        form = TestForm(request.POST, tenant=tenant)
        if form.is_valid():
            asked = True
            bot = form.cleaned_data["bot"]
            question = form.cleaned_data["question"]
            assert bot is not None
            hits = search_with_embeddings(bot, question, k=5)
            if _take_answer_slot(tenant.pk):
                passages = [hit.as_passage() for hit in hits]
                try:
                    answer, error = async_to_sync(_answer)(bot, question, passages)
                except Exception:
                    log.exception("knowledge: test answer failed for bot %s", bot.pk)
                    error = "The model could not answer; check the bot's model settings."
            else:
                error = (
                    "You have asked many test questions in a short time; "
                    "wait a few minutes before asking again. The passages are shown below."
                )
                status = 429
        else:
            status = 400
    return render(
        request,
        "knowledge/test.html",
        {
            "bots": bots,
            "bot": bot,
            "form": form,
            "hits": hits,
            "answer": answer,
            "error": error,
            "asked": asked,
        },
        status=status,
    )
