"""Webhooks against a real receiver on loopback: signed, retried, ordered, logged, sent again;
stalls cut by the timeout; redirects to private addresses refused; nothing on the reply path
when a workspace has no endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chatbot.bots.models import Bot
from chatbot.conversations import actions as conversation_actions
from chatbot.conversations import takeover
from chatbot.conversations.models import Visitor
from chatbot.tenants.models import Tenant, User
from chatbot.webhooks import actions, dispatch, signing
from chatbot.webhooks.models import Delivery, DeliveryStatus, Endpoint
from tests.api.conftest import ApiFor
from tests.webhooks.receiver import Receiver, serve_receiver

pytestmark = pytest.mark.django_db(transaction=True)
JSON = "application/json"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with override_settings(
        OUTBOUND_ALLOW_CIDRS=["127.0.0.1/32"],
        WEBHOOKS_ALLOW_HTTP=True,
        WEBHOOK_TIMEOUT_SECONDS=1,
    ):
        yield from serve_receiver()


@pytest.fixture
def bot(acme: Tenant) -> Bot:
    return Bot.objects.create(tenant=acme, name="Helper")


def _register(
    alice: User, api_for: ApiFor, url: str, events: list[str] | None = None
) -> tuple[str, str]:
    response = api_for(alice).post(
        "/api/v1/webhooks",
        {"url": url, "events": events or ["conversation.created", "message.created"]},
        content_type=JSON,
    )
    assert response.status_code == 201, response.content
    return response.json()["id"], response.json()["secret"]


def _visitor_says(bot: Bot, text: str, client_id: str = "c1") -> None:
    visitor = Visitor.objects.create(bot=bot)
    conversation_actions.receive_visitor_message(visitor, None, client_id=client_id, text=text)


def _retry_all_now() -> None:
    Delivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    dispatch.send_due()


def test_events_arrive_signed_with_an_id_and_in_order(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    _id, secret = _register(alice, api_for, receiver.url)
    _visitor_says(bot, "Where is my parcel?")
    assert [json.loads(r.body)["type"] for r in receiver.received] == [
        "conversation.created",
        "message.created",
    ]
    for request in receiver.received:
        assert signing.verify(secret, request.body, request.headers["Parley-Signature"])
        assert not signing.verify("whsec_wrong", request.body, request.headers["Parley-Signature"])
        assert request.headers["Parley-Event-Id"] == json.loads(request.body)["id"]
    message = json.loads(receiver.received[1].body)["data"]["message"]
    assert message["role"] == "visitor" and message["text"] == "Where is my parcel?"


def test_a_receiver_failing_twice_gets_the_same_event_id_until_it_succeeds(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    webhook_id, _secret = _register(alice, api_for, receiver.url, ["conversation.created"])
    receiver.script = [500, 503]
    _visitor_says(bot, "hello")
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=20)  # backoff
    _retry_all_now()
    _retry_all_now()
    ids = [r.headers["Parley-Event-Id"] for r in receiver.received]
    assert len(ids) == 3 and len(set(ids)) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 3
    log = api_for(alice).get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()["data"]
    assert log[0]["status"] == "succeeded" and log[0]["last_status_code"] == 200
    assert log[0]["last_latency_ms"] is not None and log[0]["last_response"] == "ok"
    again = api_for(alice).post(
        f"/api/v1/webhooks/{webhook_id}/deliveries/{log[0]['id']}/send-again"
    )
    assert again.status_code == 202
    assert (
        len(receiver.received) == 4 and receiver.received[-1].headers["Parley-Event-Id"] == ids[0]
    )


def test_a_later_event_waits_for_an_earlier_one_of_the_same_conversation(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    _register(alice, api_for, receiver.url)
    receiver.script = [500]  # conversation.created fails once
    _visitor_says(bot, "first")
    assert len(receiver.received) == 1  # message.created held back behind it
    _retry_all_now()
    types = [json.loads(r.body)["type"] for r in receiver.received]
    assert types == ["conversation.created", "conversation.created", "message.created"]


def test_a_stalling_receiver_is_cut_by_the_timeout(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    _register(alice, api_for, receiver.url, ["conversation.created"])
    receiver.script = [("stall", 3)]
    _visitor_says(bot, "hello")
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert "timed out" in delivery.last_error


def test_a_redirect_to_a_private_address_is_refused(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    _register(alice, api_for, receiver.url, ["conversation.created"])
    receiver.script = [("redirect", "http://169.254.169.254/latest/meta-data/")]
    _visitor_says(bot, "hello")
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error.startswith("refused:") and "link-local" in delivery.last_error


def test_private_and_plain_http_urls_are_refused_at_registration(
    alice: User, api_for: ApiFor
) -> None:
    client = api_for(alice)
    for url in ("http://example.com/hook", "https://127.0.0.1/hook", "https://10.0.0.1/x"):
        response = client.post(
            "/api/v1/webhooks", {"url": url, "events": ["message.created"]}, content_type=JSON
        )
        assert response.status_code == 422, url
    assert not Endpoint.objects.exists()


def test_a_day_of_failures_disables_the_endpoint_and_emails_the_owner(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    _register(alice, api_for, receiver.url, ["conversation.created"])
    receiver.script = [500, 500]
    _visitor_says(bot, "hello")
    day_ago = timezone.now() - timedelta(hours=25)
    Endpoint.objects.update(failing_since=day_ago)
    Delivery.objects.update(created_at=day_ago)
    _retry_all_now()
    endpoint = Endpoint.objects.get()
    assert not endpoint.enabled and "24 hours" in endpoint.disabled_reason
    assert Delivery.objects.get().status == DeliveryStatus.FAILED
    assert mail.outbox[-1].to == ["alice@acme.test"]
    _visitor_says(bot, "again", client_id="c2")
    assert Delivery.objects.count() == 1  # a disabled endpoint gets nothing new


def test_a_rotated_secret_overlaps_with_the_old_one(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    webhook_id, old = _register(alice, api_for, receiver.url, ["conversation.created"])
    new = api_for(alice).post(f"/api/v1/webhooks/{webhook_id}/rotate-secret").json()["secret"]
    _visitor_says(bot, "hello")
    request = receiver.received[-1]
    assert signing.verify(new, request.body, request.headers["Parley-Signature"])
    assert signing.verify(old, request.body, request.headers["Parley-Signature"])
    Endpoint.objects.update(previous_secret_expires_at=timezone.now())
    _visitor_says(bot, "later", client_id="c2")
    request = receiver.received[-1]
    assert not signing.verify(old, request.body, request.headers["Parley-Signature"])


def test_agent_actions_raise_their_events(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    _register(
        alice,
        api_for,
        receiver.url,
        ["conversation.assigned", "conversation.closed", "conversation.handoff_requested"],
    )
    visitor = Visitor.objects.create(bot=bot)
    received = conversation_actions.receive_visitor_message(
        visitor, None, client_id="c1", text="hi"
    )
    conversation_actions.request_handoff(visitor, received.conversation)
    takeover.take_over(received.conversation, alice)
    takeover.close(received.conversation, alice)
    assert [json.loads(r.body)["type"] for r in receiver.received] == [
        "conversation.handoff_requested",
        "conversation.assigned",
        "conversation.closed",
    ]


def test_a_captured_lead_is_announced_as_contact_created(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    from chatbot.lib import ids
    from chatbot.tools import actions as tool_actions

    _id, secret = _register(alice, api_for, receiver.url, ["contact.created"])
    visitor = Visitor.objects.create(bot=bot)
    received = conversation_actions.receive_visitor_message(
        visitor, None, client_id="c1", text="Call me back"
    )
    contact = tool_actions.capture_lead(
        received.conversation.pk, {"name": "Ann", "email": "ann@example.com"}
    )
    [delivered] = receiver.received
    assert signing.verify(secret, delivered.body, delivered.headers["Parley-Signature"])
    event = json.loads(delivered.body)
    assert event["type"] == "contact.created"
    assert event["data"]["contact"] == {
        "id": ids.encode("ctc", contact.pk),
        "bot": ids.encode("bot", bot.pk),
        "visitor": visitor.public_id,
        "conversation": received.conversation.public_id,
        "name": "Ann",
        "email": "ann@example.com",
        "phone": "",
        "message": "",
        "created_at": contact.created_at.isoformat(),
    }
    # The API reads the same contact under the same id.
    read = api_for(alice).get(f"/api/v1/contacts/{event['data']['contact']['id']}").json()
    assert read["email"] == "ann@example.com"


def test_without_endpoints_a_message_costs_no_webhook_query(bot: Bot) -> None:
    visitor = Visitor.objects.create(bot=bot)
    conversation_actions.receive_visitor_message(visitor, None, client_id="c0", text="warm")
    with CaptureQueriesContext(connection) as queries:
        conversation_actions.receive_visitor_message(visitor, None, client_id="c1", text="hi")
    assert not [q for q in queries.captured_queries if "webhooks_" in q["sql"]]
    assert not Delivery.objects.exists()


def test_an_endpoint_created_after_the_flag_was_cached_gets_events(
    bot: Bot, alice: User, api_for: ApiFor, receiver: Receiver
) -> None:
    _visitor_says(bot, "before", client_id="c0")  # caches "no endpoints"
    actions.create_endpoint(bot.tenant, alice, url=receiver.url, events=["message.created"])
    _visitor_says(bot, "after", client_id="c1")
    assert [json.loads(r.body)["data"]["message"]["text"] for r in receiver.received] == ["after"]
