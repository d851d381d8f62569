"""Citations end to end: a tenant's knowledge, a visitor's question through the real reply
path (widget WebSocket, reply task, real llama.cpp server), and the reply carrying the sources
it was given, stored and sent to the widget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import override_settings

from chatbot.bots.models import Bot
from chatbot.conversations import actions as conversations
from chatbot.conversations.models import Conversation, Message
from chatbot.knowledge import actions
from chatbot.llm import registry, routing, service
from chatbot.llm.models import ModelEndpoint
from chatbot.llm.models import Source as EndpointSource
from chatbot.tenants.models import Tenant
from tests.fixtures.llama import LlamaServer
from tests.llama.tiny_model import REPLY
from tests.widget.conftest import connect, is_final_reply, receive, receive_until
from widget.tokens import issue_session_token

from .conftest import WebSite

pytestmark = [pytest.mark.llama, pytest.mark.django_db(transaction=True)]

SHOP = "https://shop.acme.test"
WARRANTY = "Every Acme frame is guaranteed for life for its first owner."


@pytest.fixture
def shop_bot(acme: Tenant) -> Bot:
    return Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=[SHOP])


@pytest.fixture
def routed(shop_bot: Bot, llama_server: LlamaServer) -> Iterator[Bot]:
    routing.reset_state()
    registry.reset()
    endpoint = ModelEndpoint(
        tenant=None,
        name="tiny-llama",
        kind="openai",
        base_url=f"{llama_server.url}/v1",
        model=llama_server.model,
        source=EndpointSource.ADMIN,
        auth="bearer",
        chars_per_token=1.0,
    )
    endpoint.set_secret(llama_server.key)
    endpoint.save()
    service.set_bot_route(shop_bot, [endpoint.pk])
    yield shop_bot
    routing.reset_state()
    registry.reset()


async def _ask(bot: Bot, question: str) -> dict[str, Any]:
    """A visitor asks through the widget socket; returns the final reply frame."""

    def token() -> str:
        visitor = conversations.open_visitor(bot)
        return issue_session_token(bot, visitor.public_id, SHOP)[0]

    comm = connect(bot, SHOP)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "hello", "token": await database_sync_to_async(token)()})
    assert (await receive(comm))["type"] == "ready"
    await comm.send_json_to({"type": "message.send", "client_id": "q1", "text": question})
    frames = await receive_until(comm, is_final_reply, timeout=30)
    # The reply is stored before its final frame is sent; let its task end on this test's loop.
    conversation = await database_sync_to_async(Conversation.objects.filter(bot=bot).latest)("id")
    task = conversations.running_reply(conversation.pk)
    if task is not None:
        await task
    await comm.disconnect()
    return frames[-1]["message"]


async def test_the_reply_cites_the_tenants_source(routed: Bot, bravo: Tenant) -> None:
    bravo_bot = await sync_to_async(Bot.objects.create)(tenant=bravo, name="Bravo help")
    # Identical text at Bravo, under another title: it must never be cited for Acme.
    await sync_to_async(actions.add_text)(routed, title="Frame warranty", text=WARRANTY)
    await sync_to_async(actions.add_text)(bravo_bot, title="Bravo terms", text=WARRANTY)
    await sync_to_async(actions.add_text)(routed, title="Parking", text="Park behind the shop.")

    final = await _ask(routed, "Is the frame guaranteed for life?")
    assert final["status"] == "complete", final
    assert final["text"] == REPLY
    assert final["citations"] == [{"title": "Frame warranty", "url": ""}]

    # Stored for agents: the heading path and the passage that was used.
    stored = await database_sync_to_async(Message.objects.get)(role="assistant")
    assert stored.citations == [
        {"title": "Frame warranty", "url": "", "heading": "", "passage": WARRANTY}
    ]


async def test_a_website_page_is_cited_with_its_url(routed: Bot, website: WebSite) -> None:
    website.page(
        "/warranty",
        "<html><head><title>Warranty | Acme</title></head>"
        f"<body><main><p>{WARRANTY}</p></main></body></html>",
    )
    with override_settings(OUTBOUND_ALLOW_CIDRS=["127.0.0.1/32"]):
        await sync_to_async(actions.add_site)(routed, url=website.url + "/warranty", max_depth=0)

    final = await _ask(routed, "How long is the frame guarantee?")
    assert final["citations"] == [{"title": "Warranty | Acme", "url": website.url + "/warranty"}]


async def test_a_bot_without_knowledge_replies_without_citations(routed: Bot) -> None:
    final = await _ask(routed, "Hello?")
    assert final["status"] == "complete"
    assert final["citations"] == []


async def test_a_question_nothing_answers_is_recorded_and_cites_nothing(routed: Bot) -> None:
    from chatbot.knowledge.models import UnansweredQuestion

    await sync_to_async(actions.add_text)(routed, title="Rentals", text="Bikes rent for 20 a day.")
    final = await _ask(routed, "Do you rent surfboards or kayaks for a day?")
    assert final["status"] == "complete"
    assert final["citations"] == []
    [unanswered] = await database_sync_to_async(list)(UnansweredQuestion.objects.all())
    assert unanswered.question == "Do you rent surfboards or kayaks for a day?"
    assert unanswered.bot_id == routed.pk
    assert unanswered.tenant_id == routed.tenant_id
