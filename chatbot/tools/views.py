"""Dashboard pages: the workspace's actions (managers) and its contacts (every member)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from chatbot.bots.models import Bot
from chatbot.tenants import audit
from chatbot.tenants.permissions import manager_required, member_required

from . import actions, export
from .forms import FIELD_TYPE_CHOICES, ActionForm
from .models import Action, ActionKind, Contact

CONTACTS_PAGE = 200


def _tenant(request: HttpRequest) -> Any:
    return request.tenant  # type: ignore[attr-defined]


@manager_required
def action_list(request: HttpRequest) -> HttpResponse:
    rows = Action.objects.for_tenant(_tenant(request)).prefetch_related("bots").order_by("name")
    return render(request, "tools/list.html", {"actions": rows, "kinds": ActionKind.choices})


def _form_page(
    request: HttpRequest, form: ActionForm, action: Action | None, status: int = 200, **extra: Any
) -> HttpResponse:
    context = {
        "form": form,
        "action": action,
        "kind": form.kind,
        "kind_label": ActionKind(form.kind).label,
        "field_types": FIELD_TYPE_CHOICES,
        **extra,
    }
    return render(request, "tools/edit.html", context, status=status)


@manager_required
@require_http_methods(["GET", "POST"])
def action_create(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    kind = request.GET.get("kind") or request.POST.get("kind") or ActionKind.HTTP
    if kind not in ActionKind.values:
        kind = ActionKind.HTTP
    if request.method == "POST":
        form = ActionForm(request.POST, tenant=tenant, kind=kind)
        if form.is_valid():
            with transaction.atomic():
                action = form.save()
                audit.record(tenant, request.user, "action.created", target=action.name)
            messages.success(request, f"The action “{action.name}” was saved.")
            return redirect("tools:edit", action_id=action.pk)
        return _form_page(request, form, None, status=400)
    initial = dict(actions.BUILTINS.get(kind, {"timeout_seconds": 10}))
    if kind == ActionKind.HTTP:
        initial = {"timeout_seconds": 10, "method": "POST"}
    initial["bots"] = list(Bot.objects.for_tenant(tenant).values_list("pk", flat=True))
    instance = Action(tenant=tenant, kind=kind, parameters=initial.pop("parameters", {}))
    for name in ("name", "title", "description"):
        if name in initial:
            setattr(instance, name, initial.pop(name))
    form = ActionForm(instance=instance, initial=initial, tenant=tenant, kind=kind)
    form.instance.pk = None
    return _form_page(request, form, None)


@manager_required
@require_http_methods(["GET", "POST"])
def action_edit(request: HttpRequest, action_id: int) -> HttpResponse:
    tenant = _tenant(request)
    action = Action.objects.get_for_tenant_or_404(tenant, pk=action_id)
    if request.method == "POST":
        form = ActionForm(request.POST, instance=action, tenant=tenant, kind=action.kind)
        if form.is_valid():
            with transaction.atomic():
                form.save()
                audit.record(tenant, request.user, "action.updated", target=action.name)
            messages.success(request, "Saved.")
            return redirect("tools:edit", action_id=action.pk)
        return _form_page(request, form, action, status=400)
    form = ActionForm(instance=action, tenant=tenant, kind=action.kind)
    return _form_page(request, form, action, sample=_sample(action))


@manager_required
@require_POST
def action_delete(request: HttpRequest, action_id: int) -> HttpResponse:
    tenant = _tenant(request)
    action = Action.objects.get_for_tenant_or_404(tenant, pk=action_id)
    name = action.name
    actions.delete_action(tenant, request.user, action)
    messages.success(request, f"The action “{name}” was deleted.")
    return redirect("tools:list")


def _sample(action: Action) -> str:
    properties = (action.parameters or {}).get("properties") or {}
    example = {"string": "example", "number": 1, "integer": 1, "boolean": True}
    return json.dumps(
        {
            name: example.get(str(prop.get("type")), "example")
            for name, prop in properties.items()
            if isinstance(prop, dict)
        },
        indent=2,
    )


@manager_required
@require_POST
def action_test(request: HttpRequest, action_id: int) -> HttpResponse:
    """Call the action with sample arguments and show the request and the response. Built-ins
    are only checked (nothing is saved or handed off from a test)."""
    tenant = _tenant(request)
    action = Action.objects.get_for_tenant_or_404(tenant, pk=action_id)
    sample = request.POST.get("arguments", "")[:16_000]
    result = actions.try_action(tenant, request.user, action, sample)
    outcome: dict[str, Any] = {"ok": result.ok, "error": result.error}
    if result.request is not None:
        outcome["request"] = json.dumps(result.request, indent=2)
        outcome["status"] = result.status
        outcome["duration_ms"] = result.duration_ms
    if result.response is not None or result.request is not None:
        outcome["response"] = (
            result.response
            if isinstance(result.response, str)
            else json.dumps(result.response, indent=2, ensure_ascii=False)
        )
    form = ActionForm(instance=action, tenant=tenant, kind=action.kind)
    return _form_page(request, form, action, sample=sample, outcome=outcome)


# --- Contacts ---------------------------------------------------------------------------------


@member_required
def contact_list(request: HttpRequest) -> HttpResponse:
    rows = (
        Contact.objects.for_tenant(_tenant(request))
        .select_related("bot", "conversation", "visitor")
        .order_by("-created_at")[:CONTACTS_PAGE]
    )
    return render(request, "tools/contacts.html", {"contacts": rows, "limit": CONTACTS_PAGE})


@manager_required
def contact_export(request: HttpRequest) -> StreamingHttpResponse:
    tenant = _tenant(request)
    export.record_export(tenant, request.user, fmt="csv")
    response = StreamingHttpResponse(
        export.csv_chunks(export.contacts_for(tenant)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
    return response


@manager_required
@require_POST
def contact_delete(request: HttpRequest, contact_id: int) -> HttpResponse:
    tenant = _tenant(request)
    contact = Contact.objects.get_for_tenant_or_404(tenant, pk=contact_id)
    actions.delete_contact(tenant, request.user, contact)
    messages.success(request, "The contact was deleted.")
    return redirect("tools:contacts")
