"""Dashboard → Webhooks: add an endpoint (secret shown once), read the delivery log, send
again; agents are refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.utils import timezone

from chatbot.tenants.models import Tenant, User
from chatbot.webhooks.models import Delivery, DeliveryStatus, Endpoint

pytestmark = pytest.mark.django_db
ClientFor = Callable[[User], Client]


def test_a_manager_adds_an_endpoint_and_sends_a_delivery_again(
    acme: Tenant, alice: User, client_for: ClientFor
) -> None:
    client = client_for(alice)
    refused = client.post(
        "/webhooks/", {"url": "https://127.0.0.1/x", "events": ["message.created"]}
    )
    assert refused.status_code == 400 and not Endpoint.objects.exists()
    endpoint = Endpoint.objects.create(
        tenant=acme, url="https://hooks.acme.test/in", events=["message.created"], secret=""
    )
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        event_id="evt_1",
        event_type="message.created",
        payload={},
        status=DeliveryStatus.FAILED,
        attempts=7,
        last_status_code=500,
        last_response="receiver says no",
        next_attempt_at=timezone.now(),
    )
    page = client.get(f"/webhooks/{endpoint.public_id}/").content.decode()
    assert "receiver says no" in page and "evt_1" in page
    client.post(f"/webhooks/{endpoint.public_id}/deliveries/{delivery.public_id}/send-again/")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    rotated = client.post(f"/webhooks/{endpoint.public_id}/rotate/")
    assert "whsec_" in rotated.content.decode() and rotated["Cache-Control"] == "no-store"


def test_an_agent_cannot_see_webhooks(acme: Tenant, charlie: User, client_for: ClientFor) -> None:
    assert client_for(charlie).get("/webhooks/").status_code == 403
