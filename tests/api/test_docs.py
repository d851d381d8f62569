"""docs/api.md's quick start, run as written against a live server (so the guide stays true):
the Python blocks between the quickstart markers are executed in order in one namespace,
then the `verify` function it defines checks a real delivery's signature, then the actions
example runs in the same namespace."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from chatbot.bots.models import Bot
from chatbot.conversations import actions as conversation_actions
from chatbot.conversations.models import Visitor
from chatbot.tenants import actions
from chatbot.tenants.models import Membership, Tenant, User
from chatbot.tools import actions as tool_actions
from chatbot.tools.models import Action
from tests.fixtures.servers import LiveServer
from tests.webhooks.receiver import Receiver, serve_receiver

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def marked_blocks(marker: str) -> list[str]:
    text = DOC.read_text()
    section = text.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(autouse=True)
def _eager_celery() -> Iterator[None]:
    from chatbot.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with override_settings(OUTBOUND_ALLOW_CIDRS=["127.0.0.1/32"], WEBHOOKS_ALLOW_HTTP=True):
        yield from serve_receiver()


def test_the_quick_start_runs_as_written(
    asgi_server: LiveServer,
    live_db: None,
    acme: Tenant,
    alice: User,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bot = Bot.objects.create(tenant=acme, name="Helper")
    visitor = Visitor.objects.create(bot=bot, name="Vera")
    received = conversation_actions.receive_visitor_message(
        visitor, None, client_id="c0", text="Hi"
    )
    tool_actions.capture_lead(
        received.conversation.pk, {"name": "Vera", "email": "vera@example.com"}
    )
    _key, secret = actions.create_api_key(Membership.objects.get(user=alice), "docs", "read_write")
    monkeypatch.setenv("PARLEY_URL", asgi_server.url)
    monkeypatch.setenv("PARLEY_KEY", secret)
    monkeypatch.setenv("WEBHOOK_URL", receiver.url)

    blocks = marked_blocks("quickstart")
    assert len(blocks) == 5
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Acting in Acme as a owner" in printed
    assert "Vera" in printed
    assert "Vera vera@example.com from conversation c_" in printed
    assert "1 contacts in the CSV export" in printed
    assert "Registered whk_" in printed

    conversation_actions.receive_visitor_message(
        Visitor.objects.create(bot=bot), None, client_id="c1", text="Where is my parcel?"
    )
    delivered = receiver.received[-1]
    assert json.loads(delivered.body)["type"] == "message.created"
    verify = namespace["verify"]
    assert verify(
        namespace["signing_secret"], delivered.body, delivered.headers["Parley-Signature"]
    )
    assert not verify("whsec_other", delivered.body, delivered.headers["Parley-Signature"])
    assert not verify(
        namespace["signing_secret"], delivered.body + b" ", delivered.headers["Parley-Signature"]
    )

    # The actions example: the endpoint is the receiver (allowed on loopback for this test)
    # named over HTTPS, which it does not speak: the test call fails, through the guard.
    monkeypatch.setenv("ORDERS_URL", receiver.url.replace("http://", "https://") + "/{order_id}")
    monkeypatch.setenv("SHOP_TOKEN", "shop-token-value")
    [example] = marked_blocks("actions")
    exec(compile(example, str(DOC), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "with headers ['Authorization']" in printed
    assert "Test: failed the endpoint could not be reached" in printed
    assert "shop-token-value" not in printed
    action = Action.objects.get(name="find_order")
    assert list(action.bots.all()) == [bot]
