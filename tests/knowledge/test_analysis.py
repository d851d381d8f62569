"""Language-aware full-text search, the same on SQLite and PostgreSQL: stems, stop words,
accents, a language per document, BM25 with each bot's own statistics, follow-ups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chatbot.bots.models import Bot
from chatbot.knowledge import actions
from chatbot.knowledge.analysis import analyze, detect_language, fold
from chatbot.knowledge.models import Chunk, Source
from chatbot.knowledge.retrieval import conversation_query, retrieve, search
from chatbot.tenants.models import Tenant

FRENCH = (
    "La révision complète de votre vélo coûte 129 euros. Elle comprend le nettoyage de la "
    "transmission et le remplacement des câbles, et nous vous prévenons quand il est prêt."
)
ENGLISH = (
    "Our full service costs 119 pounds. It includes cleaning the drivetrain and new cables, "
    "and we text you when the bike is ready to collect from the workshop."
)


def test_words_are_stemmed_in_their_language_and_folded_after() -> None:
    assert fold("Œuvre Révisée Straße") == "oeuvre revisee strasse"
    assert analyze("Révisions des vélos électriques", "french") == ["revis", "velos", "electr"]
    assert analyze("revision electriques", "french") == ["revis", "electr"]
    assert analyze("What's the price of the bikes?", "english") == ["price", "bike"]
    # A word of one language is no stop word in another.
    assert analyze("die Fahrräder", "german") == ["fahrrad"]
    assert analyze("do not die", "english") == ["die"]


def test_the_language_of_a_text_is_detected_from_its_stop_words() -> None:
    assert detect_language(FRENCH) == "french"
    assert detect_language(ENGLISH, default="french") == "english"
    assert detect_language("Wir reparieren alle Fahrräder in der Werkstatt und das schnell.") == (
        "german"
    )
    # Too short to tell: the bot's language.
    assert detect_language("Vélo cargo", default="french") == "french"


pytestmark = pytest.mark.django_db


def test_an_unaccented_question_finds_the_accented_text(
    acme: Tenant, run_on_commit: Callable[..., Any]
) -> None:
    bot = Bot.objects.create(tenant=acme, name="Vélos", default_locale="fr")
    with run_on_commit():
        actions.add_text(bot, title="Atelier", text=FRENCH)
    assert [p.title for p in retrieve(bot, "prix d'une revision complete")] == ["Atelier"]
    assert [p.title for p in retrieve(bot, "RÉVISER mon vélo")] == ["Atelier"]


def test_each_document_is_analysed_in_its_own_language(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Révision", text=FRENCH)
        actions.add_text(acme_bot, title="Service", text=ENGLISH)
    languages = dict(Chunk.objects.filter(bot=acme_bot).values_list("title", "language"))
    assert languages == {"Révision": "french", "Service": "english"}
    assert retrieve(acme_bot, "combien coûte la révision ?")[0].title == "Révision"
    assert retrieve(acme_bot, "how much does a service cost?")[0].title == "Service"


def test_a_source_can_say_its_language(acme_bot: Bot, run_on_commit: Callable[..., Any]) -> None:
    with run_on_commit():
        source = actions.add_text(acme_bot, title="Révision", text=FRENCH)
    Source.objects.filter(pk=source.pk).update(language="spanish")
    from chatbot.knowledge import tasks

    tasks.sync_source.apply(args=[source.pk])
    assert set(Chunk.objects.filter(bot=acme_bot).values_list("language", flat=True)) == {"spanish"}


def test_rare_words_outweigh_repeated_common_ones(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(
            acme_bot, title="Bikes", text="Bike bike bike: every bike we sell is a great bike."
        )
        actions.add_text(acme_bot, title="Saddles", text="A bike saddle can be swapped in store.")
        for n in range(4):
            actions.add_text(acme_bot, title=f"Bike {n}", text=f"Bike model {n} is a bike.")
    assert retrieve(acme_bot, "Can I swap the saddle of my bike?")[0].title == "Saddles"


def test_another_tenants_texts_do_not_change_this_bots_ranking(
    acme_bot: Bot, bravo_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Shipping", text="Parcels ship from Rotterdam daily.")
        actions.add_text(acme_bot, title="Returns", text="Parcels come back to Rotterdam.")
        actions.add_text(acme_bot, title="Warranty", text="Frames carry a two year warranty.")
    question = "do parcels ship daily from rotterdam or come back there?"
    before = [(h.chunk.pk, round(h.score, 9)) for h in search(acme_bot, question)]
    with run_on_commit():
        for n in range(40):
            actions.add_text(bravo_bot, title=f"Note {n}", text=f"Rotterdam parcels {n} daily.")
    after = [(h.chunk.pk, round(h.score, 9)) for h in search(acme_bot, question)]
    assert before == after
    assert all(h.chunk.tenant_id == acme_bot.tenant_id for h in search(acme_bot, question))


def test_a_follow_up_keeps_the_subject_of_the_previous_message(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Volt", text="The Volt e-bike weighs 22 kilograms.")
        actions.add_text(acme_bot, title="Haul", text="The Haul cargo bike weighs 35 kilograms.")
    turns = ["Tell me about the Haul cargo bike.", "How much does it weigh?"]
    assert retrieve(acme_bot, turns)[0].title == "Haul"
    assert retrieve(acme_bot, ["Tell me about the Volt.", "How much does it weigh?"])[0].title == (
        "Volt"
    )
    # The last message outweighs the earlier ones when it names its own subject.
    assert retrieve(acme_bot, ["Tell me about the Volt.", "And the Haul?"])[0].title == "Haul"
    query = conversation_query(["one", "two", "three", "four"])
    assert [text for text, _ in query.parts] == ["two", "three", "four"]
    assert [weight for _, weight in query.parts] == [0.5, 0.5, 1.0]


def test_a_question_with_nothing_relevant_gets_passages_marked_so(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Rentals", text="City bikes rent for 20 pounds a day.")
    [passage] = retrieve(acme_bot, "Do you rent surfboards, kayaks or paddles for a day?")
    assert passage.relevant is False
    [passage] = retrieve(acme_bot, "How much to rent a city bike?")
    assert passage.relevant is True
