"""The model endpoints page: what a workspace's bots can route to, and its own endpoints."""

from __future__ import annotations

import time
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from chatbot.tenants.permissions import manager_required

from . import actions, detect
from .check import check_endpoint
from .models import Auth, Kind, ModelEndpoint, Source
from .routing import health_for
from .service import endpoints_for_tenant


@dataclass
class Row:
    endpoint: ModelEndpoint
    state: str  # ok | failing | down | unknown
    detail: str


def _row(endpoint: ModelEndpoint) -> Row:
    problem = endpoint.secret_problem()
    if problem:
        return Row(endpoint, "down", problem)
    health = health_for(endpoint.spec())
    if endpoint.source == Source.AUTODETECT:
        found = detect.cached()
        if found is not None and endpoint.name not in {s.name for s in found.specs}:
            return Row(endpoint, "down", "no longer answers on this machine")
    if health.breaker.is_open:
        message = health.last_error.message if health.last_error else ""
        return Row(endpoint, "down", f"skipped after repeated failures: {message}")
    if health.last_error and (health.last_ok_at or 0) < (health.last_error_at or 0):
        ago = int(time.time() - (health.last_error_at or time.time()))
        return Row(endpoint, "failing", f"{health.last_error.message} ({ago}s ago)")
    if health.last_ok_at:
        ttft = f", first token in {health.last_ttft_ms} ms" if health.last_ttft_ms else ""
        return Row(endpoint, "ok", f"answered {int(time.time() - health.last_ok_at)}s ago{ttft}")
    return Row(endpoint, "unknown", "not used by this process yet")


@manager_required
def endpoints(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    rows = [_row(e) for e in endpoints_for_tenant(tenant)]
    operator_rows = [r for r in rows if r.endpoint.is_operator]
    detection = detect.cached()
    return render(
        request,
        "llm/endpoints.html",
        {
            "tenant": tenant,
            "operator_rows": operator_rows,
            "own_rows": [r for r in rows if not r.endpoint.is_operator],
            "offline": not any(r.state in ("ok", "unknown") for r in operator_rows),
            "notes": detection.notes if detection else (),
            "kinds": [(Kind.OLLAMA, "Ollama"), (Kind.OPENAI, "OpenAI-compatible")],
            "auths": [
                (Auth.BEARER, "Bearer token"),
                (Auth.HEADER, "api-key header"),
                (Auth.NONE, "None"),
            ],
            "is_staff": request.user.is_staff,
        },
    )


@manager_required
@require_POST
def add_endpoint(request: HttpRequest) -> HttpResponse:
    data = request.POST
    try:
        context_window = int(data.get("context_window") or 8192)
    except ValueError:
        context_window = 0
    try:
        endpoint = actions.add_tenant_endpoint(
            request.tenant,  # type: ignore[attr-defined]
            name=data.get("name", "").strip(),
            kind=data.get("kind", ""),
            base_url=data.get("base_url", "").strip(),
            model=data.get("model", "").strip(),
            api_key=data.get("api_key", "").strip(),
            auth=data.get("auth", Auth.BEARER),
            images=data.get("images") == "on",
            context_window=context_window,
            actor=request.user,
        )
    except actions.EndpointInvalid as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Added {endpoint.name}. Pick it in a bot's model route.")
    return redirect("llm:endpoints")


@manager_required
@require_POST
def delete_endpoint(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    actions.delete_tenant_endpoint(
        request.tenant,  # type: ignore[attr-defined]
        endpoint_id,
        actor=request.user,
    )
    messages.success(request, "Endpoint removed.")
    return redirect("llm:endpoints")


@manager_required
@require_POST
def check_own_endpoint(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """Stream a short reply from one of the workspace's own endpoints and show the timings.

    Only the workspace's own endpoints: the operator's are checked by the operator
    (`manage.py llm check`), so tenants cannot spend the platform's model time this way.
    """
    endpoint = ModelEndpoint.objects.get_for_tenant_or_404(
        request.tenant,  # type: ignore[attr-defined]
        pk=endpoint_id,
    )
    problem = endpoint.secret_problem()
    if problem:
        messages.error(request, f"{endpoint.name}: {problem}")
        return redirect("llm:endpoints")
    result = async_to_sync(check_endpoint)(endpoint.spec(), max_tokens=24)
    if result.error is None:
        messages.success(request, f"{endpoint.name} answered: {result.summary()}.")
    else:
        messages.error(request, f"{endpoint.name}: {result.summary()} {result.hint}".strip())
    return redirect("llm:endpoints")
