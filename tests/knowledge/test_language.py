"""Language-aware full-text search where the database allows it (PostgreSQL's configurations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chatbot.bots.models import Bot
from chatbot.knowledge import actions
from chatbot.knowledge.models import Chunk
from chatbot.knowledge.retrieval import retrieve
from chatbot.tenants.models import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_french_bot_matches_french_word_forms(
    acme: Tenant, run_on_commit: Callable[..., Any]
) -> None:
    bot = Bot.objects.create(tenant=acme, name="Vélos Acme", default_locale="fr")
    with run_on_commit():
        actions.add_text(bot, title="Atelier", text="Votre vélo est réparé en une heure.")
        actions.add_text(bot, title="Horaires", text="Le magasin ouvre à neuf heures.")
    assert set(Chunk.objects.filter(bot=bot).values_list("language", flat=True)) == {"french"}
    # "réparer" and "réparé" share a French stem only; "où" and "faire" are French stop words.
    assert [p.title for p in retrieve(bot, "Où faire réparer ?")] == ["Atelier"]


def test_changing_the_bots_language_rebuilds_its_index(
    acme: Tenant, run_on_commit: Callable[..., Any]
) -> None:
    from chatbot.knowledge import tasks

    bot = Bot.objects.create(tenant=acme, name="Acme", default_locale="en")
    with run_on_commit():
        source = actions.add_text(bot, title="Atelier", text="Votre vélo est réparé en une heure.")
    assert retrieve(bot, "réparer") == []
    bot.default_locale = "fr"
    bot.save()
    tasks.sync_source.apply(args=[source.pk])
    assert [p.title for p in retrieve(bot, "réparer")] == ["Atelier"]
