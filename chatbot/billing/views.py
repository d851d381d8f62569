"""The tenant's Usage page (its meters: usage.py) and the operator console (staff only,
/operator/).

The console is apart from tenant dashboards: it needs `is_staff`, shows every tenant, and
answers 404 to anyone else (a member does not learn it exists). Every change made from it
goes through `actions` and lands in the tenant's audit log.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from chatbot.lib.ids import parse_id
from chatbot.tenants.models import AuditEvent, Tenant
from chatbot.tenants.permissions import DASHBOARD_CSP, manager_required

from . import actions, meter
from .models import Account, Plan, StorageDay
from .usage import tenant_usage


def _meter_rows(account: Account, used: tuple[int, int]) -> list[dict[str, Any]]:
    plan = account.plan
    rows = []
    for label, value, limit in (
        ("Bot replies this month", used[0], plan.monthly_messages if plan else None),
        ("Model tokens this month", used[1], plan.monthly_tokens if plan else None),
    ):
        share = None if limit is None else 100 if not limit else min(100, 100 * value // limit)
        rows.append({"label": label, "used": value, "limit": limit, "share": share})
    return rows


@manager_required
def usage(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    storage = StorageDay.objects.for_tenant(tenant).order_by("-day").first()
    summary = tenant_usage(tenant)
    return render(
        request,
        "billing/usage.html",
        {
            "usage": summary,
            "account": summary.account,
            "reason": summary.reason,
            "storage": storage,
            "plan_contact_url": settings.PLAN_CONTACT_URL,
        },
    )


# --- Operator console -------------------------------------------------------------------------


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not user.is_staff:
            raise Http404("Not found")
        response = view(request, *args, **kwargs)
        response.setdefault("Content-Security-Policy", DASHBOARD_CSP)
        return response

    wrapper.parley_role = "staff"  # type: ignore[attr-defined]
    return wrapper


def _endpoint_rows() -> list[dict[str, Any]]:
    from chatbot.llm import registry
    from chatbot.llm.routing import health_for

    rows = []
    for endpoint in registry.operator_endpoints():
        health = health_for(endpoint.spec(strict=False))
        rows.append(
            {
                "name": endpoint.name,
                "kind": endpoint.kind,
                "breaker": health.breaker.current_state,
                "in_flight": health.in_flight,
                "last_ttft_ms": health.last_ttft_ms,
                "last_ok": _ago(health.last_ok_at),
                "last_error": health.last_error.message if health.last_error else "",
                "last_error_at": _ago(health.last_error_at),
            }
        )
    return rows


def _ago(moment: float | None) -> str:
    if moment is None:
        return "—"
    seconds = int(time.time() - moment)
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


@staff_required
def console(request: HttpRequest) -> HttpResponse:
    from chatbot.conversations.models import Message

    tenants = list(
        Tenant.objects.select_related("billing__plan")
        .annotate(last_activity=Max("bots__conversations__updated_at"))
        .order_by("name")[:500]
    )
    rows = []
    for tenant in tenants:
        account = getattr(tenant, "billing", None) or actions.account_for(tenant)
        used = meter.usage_now(tenant.pk)
        rows.append({"tenant": tenant, "account": account, "meters": _meter_rows(account, used)})
    errors = list(
        Message.objects.exclude(error_code="")
        .select_related("conversation__bot__tenant")
        .order_by("-created_at")[:20]
    )
    return render(
        request,
        "billing/console.html",
        {
            "rows": rows,
            "plans": list(Plan.objects.all()),
            "endpoints": _endpoint_rows(),
            "errors": errors,
            "audit": AuditEvent.objects.filter(
                action__in=["tenant.suspended", "tenant.resumed", "plan.changed"]
            ).order_by("-created_at")[:20],
        },
    )


@staff_required
@require_POST
def tenant_action(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    action = request.POST.get("action")
    if action == "suspend":
        actions.suspend(tenant, request.user, request.POST.get("reason", ""))
        messages.success(request, f"{tenant.name} is suspended; its widgets say unavailable.")
    elif action == "resume":
        actions.resume(tenant, request.user)
        messages.success(request, f"{tenant.name} is active again.")
    elif action == "plan":
        plan_id = request.POST.get("plan")
        plan_pk = parse_id(plan_id)
        plan = Plan.objects.filter(pk=plan_pk).first() if plan_pk else None
        if plan_id and plan is None:
            messages.error(request, "No such plan.")
        else:
            actions.set_plan(tenant, plan, request.user)
            messages.success(request, f"{tenant.name} is now on {plan or 'no plan (unlimited)'}.")
    else:
        messages.error(request, "Unknown action.")
    return redirect("operator:console")
