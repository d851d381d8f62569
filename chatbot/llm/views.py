"""The model endpoints page: what a workspace's bots can route to, and its own endpoints."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import actions, detect
from .models import Auth, Kind, ModelEndpoint, Source
from .routing import health_for
from .service import endpoints_for_tenant


def _manager(request: HttpRequest) -> None:
    membership = getattr(request, "membership", None)
    if membership is None or not membership.can_manage:
        raise PermissionDenied("Only owners and admins manage model endpoints.")


@dataclass
class Row:
    endpoint: ModelEndpoint
    state: str  # ok | failing | down | unknown
    detail: str


def _row(endpoint: ModelEndpoint) -> Row:
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


@login_required
def endpoints(request: HttpRequest) -> HttpResponse:
    _manager(request)
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


@login_required
@require_POST
def add_endpoint(request: HttpRequest) -> HttpResponse:
    _manager(request)
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
        )
    except actions.EndpointInvalid as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Added {endpoint.name}. Pick it in a bot's model route.")
    return redirect("llm:endpoints")


@login_required
@require_POST
def delete_endpoint(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    _manager(request)
    actions.delete_tenant_endpoint(request.tenant, endpoint_id)  # type: ignore[attr-defined]
    messages.success(request, "Endpoint removed.")
    return redirect("llm:endpoints")
