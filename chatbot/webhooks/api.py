"""Webhook endpoints and their delivery log in the REST API (owners' and admins' keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status

from chatbot.api.auth import actor, require_manager, require_write
from chatbot.api.errors import ApiError
from chatbot.api.schemas import Limit, Text, check_public_id, page_by_pk, with_errors

from . import actions
from .actions import WebhookError
from .models import Delivery, Endpoint

router = Router(tags=["webhooks"])


class EndpointIn(Schema):
    url: Text
    events: list[Text]
    description: Text = ""


class EndpointPatch(Schema):
    url: Text | None = None
    events: list[Text] | None = None
    description: Text | None = None
    enabled: bool | None = None


class EndpointOut(Schema):
    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str
    failing_since: datetime | None
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str


class EndpointPage(Schema):
    data: list[EndpointOut]
    next_cursor: str | None


class SecretOut(Schema):
    id: str
    secret: str
    previous_secret_expires_at: datetime | None


class DeliveryOut(Schema):
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_response: str
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(Schema):
    data: list[DeliveryOut]
    next_cursor: str | None


def endpoint_out(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.public_id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "created_at": endpoint.created_at,
    }


def delivery_out(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.public_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == "pending" else None,
        "last_status_code": delivery.last_status_code,
        "last_latency_ms": delivery.last_latency_ms,
        "last_response": delivery.last_response,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
    }


def get_endpoint(request: HttpRequest, webhook_id: str) -> Endpoint:
    """Managers only; another workspace's endpoint is the same 404 as a missing one."""
    check_public_id(webhook_id, "webhook")
    found = (
        Endpoint.objects.for_tenant(request.tenant)  # type: ignore[attr-defined]
        .filter(public_id=webhook_id)
        .first()
    )
    if found is None:
        raise ApiError(404, "No such webhook.")
    require_manager(request)
    return found


def _refused(exc: WebhookError) -> ApiError:
    return ApiError(422, str(exc), "invalid")


@router.get(
    "/webhooks", response=with_errors(EndpointPage), url_name="webhooks", summary="List webhooks"
)
def list_webhooks(request: HttpRequest, cursor: Text | None = None, limit: Limit = 25) -> Any:
    require_manager(request)
    rows, next_cursor = page_by_pk(
        Endpoint.objects.for_tenant(request.tenant),  # type: ignore[attr-defined]
        cursor,
        limit,
        "whk",
    )
    return {"data": [endpoint_out(e) for e in rows], "next_cursor": next_cursor}


@router.post(
    "/webhooks",
    response=with_errors(EndpointCreated, 201),
    url_name="webhooks",
    summary="Register an HTTPS endpoint for events; the signing secret is shown once",
)
def create_webhook(request: HttpRequest, payload: EndpointIn) -> Any:
    require_write(request)
    require_manager(request)
    try:
        endpoint, secret = actions.create_endpoint(
            request.tenant,  # type: ignore[attr-defined]
            actor(request),
            url=payload.url,
            events=payload.events,
            description=payload.description,
        )
    except WebhookError as exc:
        raise _refused(exc) from None
    return Status(201, {**endpoint_out(endpoint), "secret": secret})


@router.get(
    "/webhooks/{webhook_id}",
    response=with_errors(EndpointOut),
    url_name="webhook",
    summary="Read a webhook",
)
def read_webhook(request: HttpRequest, webhook_id: str) -> Any:
    return endpoint_out(get_endpoint(request, webhook_id))


@router.patch(
    "/webhooks/{webhook_id}",
    response=with_errors(EndpointOut),
    url_name="webhook",
    summary="Change the URL or events, or enable / disable",
)
def update_webhook(request: HttpRequest, webhook_id: str, payload: EndpointPatch) -> Any:
    endpoint = get_endpoint(request, webhook_id)
    require_write(request)
    try:
        endpoint = actions.update_endpoint(
            endpoint,
            actor(request),
            url=payload.url,
            events=payload.events,
            enabled=payload.enabled,
            description=payload.description,
        )
    except WebhookError as exc:
        raise _refused(exc) from None
    return endpoint_out(endpoint)


@router.delete(
    "/webhooks/{webhook_id}",
    response=with_errors(None, 204),
    url_name="webhook",
    summary="Delete a webhook and its delivery log",
)
def delete_webhook(request: HttpRequest, webhook_id: str) -> Any:
    endpoint = get_endpoint(request, webhook_id)
    require_write(request)
    actions.delete_endpoint(endpoint, actor(request))
    return Status(204, None)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response=with_errors(SecretOut),
    url_name="webhook_rotate_secret",
    summary="A new signing secret; the old one also signs for 24 hours",
)
def rotate_secret(request: HttpRequest, webhook_id: str) -> Any:
    endpoint = get_endpoint(request, webhook_id)
    require_write(request)
    secret = actions.rotate_secret(endpoint, actor(request))
    return {
        "id": endpoint.public_id,
        "secret": secret,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
    }


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response=with_errors(DeliveryPage),
    url_name="webhook_deliveries",
    summary="The delivery log, newest first",
)
def list_deliveries(
    request: HttpRequest, webhook_id: str, cursor: Text | None = None, limit: Limit = 25
) -> Any:
    endpoint = get_endpoint(request, webhook_id)
    rows, next_cursor = page_by_pk(Delivery.objects.filter(endpoint=endpoint), cursor, limit, "dlv")
    return {"data": [delivery_out(d) for d in rows], "next_cursor": next_cursor}


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/send-again",
    response=with_errors(DeliveryOut, 202),
    url_name="webhook_delivery_send_again",
    summary="Deliver the same event (same id) once more",
)
def send_again(request: HttpRequest, webhook_id: str, delivery_id: str) -> Any:
    endpoint = get_endpoint(request, webhook_id)
    check_public_id(delivery_id, "delivery")
    delivery = Delivery.objects.filter(endpoint=endpoint, public_id=delivery_id).first()
    if delivery is None:
        raise ApiError(404, "No such delivery.")
    require_write(request)
    return Status(202, delivery_out(actions.send_again(delivery)))
