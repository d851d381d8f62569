"""Retrieval: ranking, isolation between tenants and bots, hostile queries, async use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatbot.bots.models import Bot
from chatbot.knowledge import actions
from chatbot.knowledge.models import Chunk
from chatbot.knowledge.retrieval import aretrieve, bot_language, fuse, retrieve, search
from chatbot.tenants.models import Tenant

pytestmark = pytest.mark.django_db

SECRET = "The staff discount code is ORCHID-4471 and works on every order."


def test_a_bot_without_knowledge_gets_nothing_cheaply(acme_bot: Bot) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert retrieve(acme_bot, "What is the discount code?") == []
    assert len(queries) <= 2


def test_identical_text_in_two_tenants_stays_with_its_tenant(
    acme_bot: Bot, bravo_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        acme_source = actions.add_text(acme_bot, title="Acme staff", text=SECRET)
        bravo_source = actions.add_text(bravo_bot, title="Bravo staff", text=SECRET)
    acme_ids = set(Chunk.objects.filter(source=acme_source).values_list("id", flat=True))
    bravo_ids = set(Chunk.objects.filter(source=bravo_source).values_list("id", flat=True))

    for bot, own, foreign in ((acme_bot, acme_ids, bravo_ids), (bravo_bot, bravo_ids, acme_ids)):
        passages = retrieve(bot, "staff discount code", k=10)
        ids = {int(p.id) for p in passages}
        assert ids == own
        assert not ids & foreign


def test_a_bots_knowledge_is_not_shared_with_another_bot_of_the_same_tenant(
    acme: Tenant, acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    other = Bot.objects.create(tenant=acme, name="Careers bot")
    with run_on_commit():
        actions.add_text(acme_bot, title="Staff", text=SECRET)
    assert retrieve(other, "staff discount code") == []
    assert len(retrieve(acme_bot, "staff discount code")) == 1


def test_the_tenant_and_bot_are_conditions_of_the_ranking_query(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Staff", text=SECRET)
    with CaptureQueriesContext(connection) as queries:
        search(acme_bot, "discount code")
    ranking = next(q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"])
    where = ranking.split("WHERE", 1)[1]
    assert f"c.tenant_id = {acme_bot.tenant_id}" in where
    assert f"c.bot_id = {acme_bot.pk}" in where
    assert "LIMIT" in ranking  # ranked and cut in the database, not filtered afterwards


@pytest.mark.parametrize(
    "query",
    [
        'discount" OR "x',
        "discount NEAR(code)",
        "code* ^discount",
        "title:discount",
        "discount') OR 1=1 --",
        "discount & code | !staff",
        "'':* discount",
    ],
)
def test_hostile_query_syntax_is_just_words(
    acme_bot: Bot, run_on_commit: Callable[..., Any], query: str
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Staff", text=SECRET)
    passages = retrieve(acme_bot, query)
    assert [p.title for p in passages] == ["Staff"]


def test_queries_made_only_of_stop_words_or_symbols_find_nothing(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Staff", text=SECRET)
    assert retrieve(acme_bot, "") == []
    assert retrieve(acme_bot, "?!*()") == []
    assert retrieve(acme_bot, "what is the") == []


def test_the_best_passage_comes_first_and_k_is_respected(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Shipping", text="Parcels ship from Rotterdam daily.")
        actions.add_text(acme_bot, title="Returns", text="Returned parcels are refunded in a week.")
        actions.add_text(acme_bot, title="Warranty", text="Bikes carry a two year warranty.")
    assert retrieve(acme_bot, "Where do parcels ship from?")[0].title == "Shipping"
    assert retrieve(acme_bot, "how long is the warranty")[0].title == "Warranty"
    assert len(retrieve(acme_bot, "parcels", k=1)) == 1
    assert len(retrieve(acme_bot, "parcels", k=5)) == 2


def test_stemming_matches_other_forms_of_a_word(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Repairs", text="Our mechanics repaired 300 bicycles.")
    assert retrieve(acme_bot, "do you repair bicycle?")[0].title == "Repairs"


async def test_aretrieve_works_from_async_code(acme_bot: Bot, transactional_db: None) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(actions.add_text)(acme_bot, title="Staff", text=SECRET)
    # Outside a test transaction, on_commit runs at once: the source is synced.
    passages = await aretrieve(acme_bot, "discount code")
    assert [p.title for p in passages] == ["Staff"]


def test_fusion_rewards_agreement_between_rankings() -> None:
    fused = fuse([[1, 2], [3, 2]])
    assert [chunk_id for chunk_id, _ in fused] == [2, 1, 3]


def test_the_bots_language_is_the_default_language_of_its_documents(acme_bot: Bot) -> None:
    assert bot_language(acme_bot) == "english"
    for locale, name in (("fr", "french"), ("de-CH", "german"), ("es_MX", "spanish")):
        acme_bot.default_locale = locale
        assert bot_language(acme_bot) == name
    acme_bot.default_locale = "tlh"
    assert bot_language(acme_bot) == "simple"
