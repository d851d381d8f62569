"""Dashboard → Webhooks: endpoints, their delivery log, and "send again" (owners and admins)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from chatbot.tenants.permissions import manager_required

from . import actions
from .actions import WebhookError
from .models import EVENTS, Delivery, Endpoint


def _endpoint(request: HttpRequest, webhook_id: str) -> Endpoint:
    return Endpoint.objects.get_for_tenant_or_404(
        request.tenant,  # type: ignore[attr-defined]
        public_id=webhook_id,
    )


@manager_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    new_secret = ""
    status = 200
    if request.method == "POST":
        try:
            _endpoint_row, new_secret = actions.create_endpoint(
                tenant,
                request.user,
                url=request.POST.get("url", ""),
                events=request.POST.getlist("events"),
                description=request.POST.get("description", ""),
            )
        except WebhookError as exc:
            messages.error(request, str(exc))
            status = 400
    endpoints = Endpoint.objects.for_tenant(tenant).order_by("-created_at")
    response = render(
        request,
        "webhooks/list.html",
        {"endpoints": endpoints, "events": EVENTS, "new_secret": new_secret},
        status=status,
    )
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


@manager_required
def webhook_detail(request: HttpRequest, webhook_id: str) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    deliveries = Delivery.objects.filter(endpoint=endpoint).order_by("-pk")[:50]
    return render(request, "webhooks/detail.html", {"endpoint": endpoint, "deliveries": deliveries})


@manager_required
@require_POST
def webhook_toggle(request: HttpRequest, webhook_id: str) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    actions.update_endpoint(endpoint, request.user, enabled=not endpoint.enabled)
    messages.success(request, "Enabled." if endpoint.enabled else "Disabled.")
    return redirect("webhooks:detail", webhook_id=endpoint.public_id)


@manager_required
@require_POST
def webhook_rotate(request: HttpRequest, webhook_id: str) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    secret = actions.rotate_secret(endpoint, request.user)
    deliveries = Delivery.objects.filter(endpoint=endpoint).order_by("-pk")[:50]
    response = render(
        request,
        "webhooks/detail.html",
        {"endpoint": endpoint, "deliveries": deliveries, "new_secret": secret},
    )
    response["Cache-Control"] = "no-store"
    return response


@manager_required
@require_POST
def webhook_delete(request: HttpRequest, webhook_id: str) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    actions.delete_endpoint(endpoint, request.user)
    messages.success(request, f"Deleted the webhook to {endpoint.url}.")
    return redirect("webhooks:list")


@manager_required
@require_POST
def delivery_send_again(request: HttpRequest, webhook_id: str, delivery_id: str) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    delivery = Delivery.objects.get_for_tenant_or_404(
        request.tenant,  # type: ignore[attr-defined]
        endpoint=endpoint,
        public_id=delivery_id,
    )
    actions.send_again(delivery)
    messages.success(request, f"Sending {delivery.event_type} ({delivery.event_id}) again.")
    return redirect("webhooks:detail", webhook_id=endpoint.public_id)
