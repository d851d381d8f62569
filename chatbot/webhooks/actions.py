"""Every write to webhook endpoints; the API and the dashboard call these."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatbot.lib import crypto, outbound
from chatbot.tenants import audit
from chatbot.tenants.models import Tenant

from . import dispatch
from .models import EVENTS, Delivery, DeliveryStatus, Endpoint, new_signing_secret

MAX_ENDPOINTS = 10
ROTATION_OVERLAP = timedelta(hours=24)


class WebhookError(ValueError):
    """The request cannot be done as asked; the message says what to change."""


def _check_url(url: str) -> str:
    url = url.strip()
    if len(url) > 2000:
        raise WebhookError("The URL is longer than 2,000 characters.")
    if not url.startswith("https://") and not (
        settings.WEBHOOKS_ALLOW_HTTP and url.startswith("http://")
    ):
        raise WebhookError("A webhook URL must start with https://.")
    try:
        outbound.check_url(url)
    except outbound.BlockedURL as exc:
        raise WebhookError(f"This address cannot be used: {exc}.") from None
    return url


def _check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise WebhookError(f"Choose events among: {', '.join(EVENTS)}.")
    return [event for event in EVENTS if event in events]


def create_endpoint(
    tenant: Tenant, actor: Any, *, url: str, events: list[str], description: str = ""
) -> tuple[Endpoint, str]:
    """A new endpoint and its signing secret (shown once)."""
    url, events = _check_url(url), _check_events(events)
    if Endpoint.objects.for_tenant(tenant).count() >= MAX_ENDPOINTS:
        raise WebhookError(f"A workspace has at most {MAX_ENDPOINTS} webhook endpoints.")
    secret = new_signing_secret()
    with transaction.atomic():
        endpoint = Endpoint.objects.create(
            tenant=tenant,
            url=url,
            events=events,
            description=description.strip()[:200],
            secret=crypto.encrypt_str(secret),
        )
        audit.record(tenant, actor, "webhook.created", target=url, events=events)
        transaction.on_commit(lambda: dispatch.forget_flags(tenant.pk))
    return endpoint, secret


def update_endpoint(
    endpoint: Endpoint,
    actor: Any,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    enabled: bool | None = None,
    description: str | None = None,
) -> Endpoint:
    if url is not None:
        endpoint.url = _check_url(url)
    if events is not None:
        endpoint.events = _check_events(events)
    if description is not None:
        endpoint.description = description.strip()[:200]
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        endpoint.disabled_reason = "" if enabled else "Disabled by a member."
        endpoint.failing_since = None
    with transaction.atomic():
        endpoint.save()
        audit.record(endpoint.tenant, actor, "webhook.updated", target=endpoint.url)
        tenant_id = endpoint.tenant_id
        transaction.on_commit(lambda: dispatch.forget_flags(tenant_id))
    return endpoint


def delete_endpoint(endpoint: Endpoint, actor: Any) -> None:
    tenant_id = endpoint.tenant_id
    with transaction.atomic():
        audit.record(endpoint.tenant, actor, "webhook.deleted", target=endpoint.url)
        endpoint.delete()
        transaction.on_commit(lambda: dispatch.forget_flags(tenant_id))


def rotate_secret(endpoint: Endpoint, actor: Any) -> str:
    """A new secret; the old one keeps signing alongside it for ROTATION_OVERLAP."""
    secret = new_signing_secret()
    with transaction.atomic():
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
        endpoint.secret = crypto.encrypt_str(secret)
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
        audit.record(endpoint.tenant, actor, "webhook.secret_rotated", target=endpoint.url)
    return secret


def send_again(delivery: Delivery) -> Delivery:
    """Deliver the same event (same id) once more, now."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now()
    )
    delivery_id = delivery.pk
    transaction.on_commit(lambda: dispatch.dispatch(delivery_id))
    delivery.refresh_from_db()
    return delivery
