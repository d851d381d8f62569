"""The analytics page: charts with their tables and CSV downloads, top and unanswered
questions, and "add an answer" into the knowledge base. Reads the roll-ups only."""

from __future__ import annotations

import csv
from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from chatbot.bots.models import Bot
from chatbot.tenants.permissions import manager_required

from . import report
from .tasks import roll_up_day, today_for

PERIODS = {"7": 7, "30": 30, "90": 90}


@manager_required
def report_page(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    bots = list(Bot.objects.for_tenant(tenant).order_by("name"))
    period = request.GET.get("days", "30")
    days = PERIODS.get(period, 30)
    bot = next((b for b in bots if str(b.pk) == request.GET.get("bot")), None)
    end = today_for(tenant)
    start = end - timedelta(days=days - 1)
    data = report.build(tenant, start, end, bot.pk if bot else None)
    wanted = request.GET.get("csv")
    if wanted:
        chart = next((c for c in data["charts"] if c.id == wanted), None)
        if chart is not None:
            response = HttpResponse(content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = (
                f'attachment; filename="parley-{chart.id}-{start}-{end}.csv"'
            )
            writer = csv.writer(response)
            writer.writerow(chart.columns)
            writer.writerows(chart.rows)
            return response
    names = {b.pk: b.name for b in bots}
    return render(
        request,
        "analytics/report.html",
        {
            **data,
            "bots": bots,
            "bot": bot,
            "bot_names": names,
            "days": days,
            "periods": list(PERIODS),
            "start": start,
            "end": end,
            "query": request.GET.urlencode(),
        },
    )


@manager_required
@require_POST
def rebuild(request: HttpRequest) -> HttpResponse:
    """Rebuild the roll-up of one day (idempotent), e.g. after a time-zone change."""
    tenant = request.tenant  # type: ignore[attr-defined]
    from datetime import date

    try:
        day = date.fromisoformat(request.POST.get("day", ""))
    except ValueError:
        messages.error(request, "Choose a day as YYYY-MM-DD.")
        return redirect("analytics:report")
    roll_up_day.delay(tenant.pk, day.isoformat())
    messages.success(request, f"The figures for {day} are being rebuilt.")
    return redirect("analytics:report")


@manager_required
@require_http_methods(["GET", "POST"])
def add_answer(request: HttpRequest, bot_id: int) -> HttpResponse:
    """One click from an unanswered question to a Q&A entry in that bot's knowledge."""
    from chatbot.knowledge import actions as knowledge

    tenant = request.tenant  # type: ignore[attr-defined]
    bot = Bot.objects.get_for_tenant_or_404(tenant, pk=bot_id)
    question = (request.POST.get("question") or request.GET.get("question") or "")[:300]
    answer = request.POST.get("answer", "")
    error = ""
    if request.method == "POST":
        try:
            knowledge.add_qa(bot, question=question, answer=answer)
        except knowledge.KnowledgeError as exc:
            error = str(exc)
        else:
            messages.success(request, f"{bot.name} now knows the answer to “{question}”.")
            return redirect("analytics:report")
    return render(
        request,
        "analytics/add_answer.html",
        {"bot": bot, "question": question, "answer": answer, "error": error},
        status=400 if error else 200,
    )
