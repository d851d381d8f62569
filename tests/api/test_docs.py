"""docs/api.md's quick start, run as written against a live server (so the guide stays true):
the Python blocks between the quickstart markers are executed in order in one namespace,
then the `verify` function it defines checks a real delivery's signature."""

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
from tests.fixtures.servers import LiveServer
from tests.webhooks.receiver import Receiver, serve_receiver

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def quickstart_blocks() -> list[str]:
    text = DOC.read_text()
    section = text.split("<!-- quickstart -->", 1)[1].split("<!-- /quickstart -->", 1)[0]
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
    conversation_actions.receive_visitor_message(visitor, None, client_id="c0", text="Hi")
    _key, secret = actions.create_api_key(Membership.objects.get(user=alice), "docs", "read_write")
    monkeypatch.setenv("PARLEY_URL", asgi_server.url)
    monkeypatch.setenv("PARLEY_KEY", secret)
    monkeypatch.setenv("WEBHOOK_URL", receiver.url)

    blocks = quickstart_blocks()
    assert len(blocks) == 4
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Acting in Acme as a owner" in printed
    assert "Vera" in printed
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
