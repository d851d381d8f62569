"""Dashboard pages for bots: list, create, edit (with a live preview and the embed snippet)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import json_script
from django.views.decorators.http import require_http_methods, require_POST

from chatbot.billing.actions import QuotaError, check_can_add_bot
from chatbot.installs.actions import site_statuses
from chatbot.tenants.permissions import manager_required

from . import actions
from .forms import BotForm
from .models import Bot
from .snippets import embed_snippet, loader_url, site_origin


def _llm() -> ModuleType | None:
    try:
        from chatbot.llm import service
    except ImportError:
        return None
    return service


def _endpoints(request: HttpRequest) -> list[Any] | None:
    service = _llm()
    return None if service is None else list(service.endpoints_for_tenant(request.tenant))  # type: ignore[attr-defined]


def _initial_route(bot: Bot) -> dict[str, int | None]:
    service = _llm()
    route = list(service.bot_route(bot)) if service is not None else []
    # bot_route falls back to the operator's default when the bot has none of its own.
    own = bot.llm_route.exists() if hasattr(bot, "llm_route") else False
    ids = [endpoint.pk for endpoint in route] if own else []
    return {
        "primary_endpoint": ids[0] if ids else None,
        "fallback_endpoint": ids[1] if len(ids) > 1 else None,
    }


def _save_route(form: BotForm, bot: Bot) -> None:
    route = form.route()
    service = _llm()
    if route is not None and service is not None:
        service.set_bot_route(bot, route)


@manager_required
def bot_list(request: HttpRequest) -> HttpResponse:
    bots = Bot.objects.for_tenant(request.tenant).order_by("name")  # type: ignore[attr-defined]
    return render(request, "bots/list.html", {"bots": bots})


@manager_required
@require_http_methods(["GET", "POST"])
def bot_create(request: HttpRequest) -> HttpResponse:
    endpoints = _endpoints(request)
    form = BotForm(request.POST or None, endpoints=endpoints, initial={"enabled": True})
    if request.method == "POST" and form.is_valid():
        try:
            check_can_add_bot(request.tenant)  # type: ignore[attr-defined]
        except QuotaError as exc:
            form.add_error(None, str(exc))
            return render(request, "bots/edit.html", _edit_context(form, None), status=400)
        with transaction.atomic():
            bot = actions.create_bot(request.tenant, request.user, **form.bot_fields())  # type: ignore[attr-defined]
            _save_route(form, bot)
        messages.success(request, f"{bot.name} is ready. Add the snippet below to your site.")
        return redirect("bots:edit", bot_id=bot.pk)
    return render(request, "bots/edit.html", _edit_context(form, None))


@manager_required
@require_http_methods(["GET", "POST"])
def bot_edit(request: HttpRequest, bot_id: int) -> HttpResponse:
    bot = Bot.objects.get_for_tenant_or_404(request.tenant, pk=bot_id)  # type: ignore[attr-defined]
    endpoints = _endpoints(request)
    form = BotForm(
        request.POST or None,
        instance=bot,
        endpoints=endpoints,
        initial=_initial_route(bot) if endpoints is not None else None,
    )
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # The form's instance was changed by validation; save through the action,
            # from a fresh row, so only the editable fields are written.
            fresh = Bot.objects.get(pk=bot.pk)
            actions.update_bot(fresh, request.user, **form.bot_fields())
            _save_route(form, fresh)
        messages.success(request, "Saved.")
        return redirect("bots:edit", bot_id=bot.pk)
    return render(request, "bots/edit.html", _edit_context(form, bot))


def _edit_context(form: BotForm, bot: Bot | None) -> dict[str, Any]:
    preview_config: dict[str, Any] = {}
    if bot is not None:
        preview_config = bot.widget_config()
    return {
        "form": form,
        "bot": bot,
        "sites": site_statuses(bot) if bot is not None else [],
        "snippet": embed_snippet(bot) if bot is not None else "",
        "loader_url": loader_url(),
        # The origin the preview frame and this page post messages to (read per request).
        "site_origin": site_origin(),
        # json_script escapes <, > and & so a bot's text cannot close the script element.
        "preview_config_script": json_script(preview_config, "bot-preview-config"),
    }


@manager_required
@require_POST
def bot_rotate_secret(request: HttpRequest, bot_id: int) -> HttpResponse:
    bot = Bot.objects.get_for_tenant_or_404(request.tenant, pk=bot_id)  # type: ignore[attr-defined]
    actions.rotate_identity_secret(bot, request.user)
    messages.success(
        request,
        "New identity secret created. Update your site's server; visitors' sessions restart.",
    )
    return redirect("bots:edit", bot_id=bot.pk)


@manager_required
@require_POST
def bot_delete(request: HttpRequest, bot_id: int) -> HttpResponse:
    bot = Bot.objects.get_for_tenant_or_404(request.tenant, pk=bot_id)  # type: ignore[attr-defined]
    name = bot.name
    actions.delete_bot(bot, request.user)
    messages.success(request, f"{name} was deleted.")
    return redirect("bots:list")
