"""Home: first steps ticked from what the workspace has, bots as links, the model alert."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from chatbot.bots.actions import create_bot
from chatbot.conversations import actions
from chatbot.conversations.models import MessageStatus
from chatbot.installs.actions import record_sighting
from chatbot.knowledge.models import Source
from chatbot.llm import registry
from chatbot.tenants.models import Tenant, User
from tests.inbox.helpers import chat

pytestmark = pytest.mark.django_db
ENDPOINT = {"name": "local", "kind": "ollama", "url": "http://127.0.0.1:11434", "model": "m"}


def done_steps(page: str) -> list[str]:
    """The titles of the steps drawn as done."""
    steps = []
    for chunk in page.split('<li class="done">')[1:]:
        title = chunk.split("</a>", 1)[0].rsplit(">", 1)[-1]
        steps.append(title)
    return steps


def test_first_steps_tick_from_real_data(client_for: Any, alice: User, acme: Tenant) -> None:
    from django.core.cache import cache

    client = client_for(alice)
    page = client.get("/dashboard/").content.decode()
    assert done_steps(page) == []
    bot = create_bot(acme, alice, name="Helper", allowed_origins=["https://shop.example"])
    Source.objects.create(bot=bot, kind="text", title="Opening hours", body="9 to 5")
    cache.clear()
    record_sighting(bot, "https://shop.example", "https://shop.example/")
    page = client.get("/dashboard/").content.decode()
    # With a bot, Home lists what is not done yet; everything but the team is done.
    assert "Teach it about your business" not in page and "Put it on your website" not in page
    assert "Invite your team" in page
    # The bot's name is a link to its page.
    assert f'<a href="/bots/{bot.pk}/">Helper</a>' in page
    # With a bot, the usage leads.
    assert page.index("Usage this month") < page.index("Next steps")


def test_a_new_workspace_without_a_bot_sees_every_step_with_its_state(
    client_for: Any, alice: User, charlie: User
) -> None:
    page = client_for(alice).get("/dashboard/").content.decode()
    # charlie (an agent at Acme) makes two members: the team step is done.
    assert done_steps(page) == ["Invite your team"]
    # How to get started comes first; the usage, all zeros yet, after it.
    assert page.index("Here is how to get your assistant live") < page.index("Usage this month")


def test_home_alerts_when_the_model_is_down(client_for: Any, alice: User, acme: Tenant) -> None:
    bot = create_bot(acme, alice, name="Helper", allowed_origins=["https://shop.example"])
    with override_settings(LLM_ENDPOINTS_JSON=json.dumps([ENDPOINT]), LLM_ENDPOINTS_FILE=""):
        registry.reset()
        page = client_for(alice).get("/dashboard/").content.decode()
        assert "cannot answer visitors" not in page and "had trouble" not in page
        conversation = chat(bot, "Hello?", reply=None)
        message = actions.create_reply_message(conversation.pk)
        assert message is not None
        actions.finish_reply(message.pk, text="", status=MessageStatus.FAILED, error_code="connect")
        page = client_for(alice).get("/dashboard/").content.decode()
        assert 'role="alert"' in page and "Helper had trouble answering" in page
        assert "1 reply failed in the last hour" in page
        assert "/llm/endpoints/" in page
    # No endpoint at all: it cannot answer anyone.
    registry.reset()
    with override_settings(LLM_ENDPOINTS_JSON="[]", LLM_ENDPOINTS_FILE="", LLM_AUTODETECT=False):
        page = client_for(alice).get("/dashboard/").content.decode()
        assert "Helper cannot answer visitors" in page


def test_owners_and_admins_are_emailed_once_an_hour_when_the_model_is_down(
    alice: User,
    charlie: User,
    acme: Tenant,
    settings: Any,
    mailoutbox: Any,
    monkeypatch: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.core.cache import cache

    from chatbot.celery import app

    settings.EMAIL_CONFIGURED = True
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    cache.clear()
    bot = create_bot(acme, alice, name="Helper", allowed_origins=["https://shop.example"])
    for code in ("connect", "overloaded", "context"):
        conversation = chat(bot, "Hello?", reply=None)
        message = actions.create_reply_message(conversation.pk)
        assert message is not None
        with django_capture_on_commit_callbacks(execute=True):
            actions.finish_reply(message.pk, text="", status=MessageStatus.FAILED, error_code=code)
    [email] = mailoutbox  # charlie is an agent: not written to; the second failure: no repeat
    assert email.to == ["alice@acme.test"]
    assert email.subject == "Helper cannot reach its language model · Acme"
    assert "/llm/endpoints/" in email.body and "Acme" in email.alternatives[0][0]
