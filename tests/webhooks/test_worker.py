"""Against real Redis: a delivery travels through the broker to a real Celery worker."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from django.test import override_settings

from chatbot.bots.models import Bot
from chatbot.celery import app
from chatbot.conversations import actions as conversation_actions
from chatbot.conversations.models import Visitor
from chatbot.tenants.models import Tenant, User
from chatbot.webhooks import actions
from chatbot.webhooks.models import Delivery, DeliveryStatus
from tests.webhooks.receiver import Receiver, serve_receiver

pytestmark = pytest.mark.redis


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with override_settings(OUTBOUND_ALLOW_CIDRS=["127.0.0.1/32"], WEBHOOKS_ALLOW_HTTP=True):
        yield from serve_receiver()


def test_a_worker_delivers_an_event_sent_through_the_broker(
    live_db: None, acme: Tenant, alice: User, receiver: Receiver
) -> None:
    bot = Bot.objects.create(tenant=acme, name="Helper")
    actions.create_endpoint(acme, alice, url=receiver.url, events=["conversation.created"])
    app.conf.task_always_eager = False  # this test wants the real broker round trip
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        visitor = Visitor.objects.create(bot=bot)
        conversation_actions.receive_visitor_message(visitor, None, client_id="c1", text="hi")
        delivery = Delivery.objects.get()
        for _ in range(300):
            delivery.refresh_from_db()
            if delivery.status == DeliveryStatus.SUCCEEDED:
                break
            import time

            time.sleep(0.1)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert json.loads(receiver.received[0].body)["type"] == "conversation.created"
