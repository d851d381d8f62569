"""Installation help pages for a bot: "check my site" and the install guides."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from chatbot.bots.models import Bot
from chatbot.bots.snippets import embed_snippet, loader_url, site_origin
from chatbot.tenants.permissions import manager_required

from . import actions


def _bot(request: HttpRequest, bot_id: int) -> Bot:
    return Bot.objects.get_for_tenant_or_404(request.tenant, pk=bot_id)  # type: ignore[attr-defined]


@manager_required
@require_http_methods(["GET", "POST"])
def check(request: HttpRequest, bot_id: int) -> HttpResponse:
    """GET: the sites and the form; POST: fetch the page and explain what blocks the widget."""
    bot = _bot(request, bot_id)
    url = (request.POST.get("url") or "").strip()[:2000] if request.method == "POST" else ""
    report = actions.check_site(bot, url) if url else None
    return render(
        request,
        "installs/check.html",
        {
            "bot": bot,
            "sites": actions.site_statuses(bot),
            "report": report,
            "check_url": url or (bot.allowed_origins[0] + "/" if bot.allowed_origins else ""),
        },
        status=200,
    )


@manager_required
def guides(request: HttpRequest, bot_id: int) -> HttpResponse:
    bot = _bot(request, bot_id)
    return render(
        request,
        "installs/guides.html",
        {
            "bot": bot,
            "snippet": embed_snippet(bot),
            "loader_url": loader_url(),
            "platform": site_origin(),
            "stub": actions.inline_stub(bot).strip(),
            "stub_hash": actions.inline_hash(bot),
        },
    )
