"""A workspace's webhook endpoints and the deliveries of events to them."""

from __future__ import annotations

import secrets

from django.db import models

from chatbot.tenants.models import Tenant
from chatbot.tenants.scoping import TenantScopedManager

EVENTS = (
    "conversation.created",
    "message.created",
    "conversation.handoff_requested",
    "conversation.assigned",
    "conversation.closed",
    "feedback.received",
    "source.synced",
    "source.failed",
    "contact.created",
)


def new_endpoint_id() -> str:
    return "whk_" + secrets.token_urlsafe(12)


def new_delivery_id() -> str:
    return "dlv_" + secrets.token_urlsafe(12)


def new_event_id() -> str:
    return "evt_" + secrets.token_urlsafe(16)


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Endpoint(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    public_id = models.CharField(max_length=24, unique=True, default=new_endpoint_id)
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    description = models.CharField(max_length=200, blank=True)
    # Encrypted at rest (chatbot.lib.crypto). After a rotation the previous secret still
    # signs (a second v1= value) until previous_secret_expires_at.
    secret = models.TextField()
    previous_secret = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # Set at the first failed attempt after a success; a day of failures disables it.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One event for one endpoint; retried until delivered or a day has passed."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    public_id = models.CharField(max_length=24, unique=True, default=new_delivery_id)
    event_id = models.CharField(max_length=32)
    event_type = models.CharField(max_length=40)
    # Deliveries with the same key (a conversation's id) reach the endpoint in order.
    order_key = models.CharField(max_length=40, blank=True)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.CharField(max_length=500, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedManager("endpoint__tenant")

    class Meta:
        indexes = [models.Index(fields=["endpoint", "order_key", "status"])]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id}"
