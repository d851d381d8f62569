from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from chatbot.bots.models import Bot


@login_required
def home(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    bots = Bot.objects.for_tenant(tenant).order_by("name") if tenant else Bot.objects.none()
    return render(request, "dashboard/home.html", {"tenant": tenant, "bots": bots})
