"""Passages follow the document's headings and keep their path; a re-sync keeps the rows and
vectors of the passages that did not change; a passage of several paragraphs is ranked by its
closest paragraph."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from chatbot.bots.models import Bot
from chatbot.knowledge import actions
from chatbot.knowledge.chunking import Piece, chunk_document, sections
from chatbot.knowledge.extract import extract, extract_html
from chatbot.knowledge.models import Chunk
from chatbot.knowledge.retrieval import retrieve, vector_ranking
from chatbot.llm import registry
from chatbot.llm.models import ModelEndpoint
from chatbot.llm.models import Source as EndpointSource
from chatbot.tenants.models import User

from .documents import make_docx
from .embedding_server import DIMENSIONS, EmbeddingServer, embed_one, embedding_server

SHOP = """# Shop help

Welcome to the help pages.

## Shipping

Parcels leave within two working days.

### Abroad

Orders outside the Netherlands take a week.

## Returns

Send items back within 30 days for a refund.
"""


def test_each_passage_keeps_the_path_of_headings_above_it() -> None:
    text = extract(SHOP.encode(), "md", fallback_title="x").text
    pieces = chunk_document(text, target_words=10, overlap_words=2)
    assert pieces == [
        Piece("Welcome to the help pages.", "Shop help"),
        Piece("Parcels leave within two working days.", "Shop help > Shipping"),
        Piece("Orders outside the Netherlands take a week.", "Shop help > Shipping > Abroad"),
        Piece("Send items back within 30 days for a refund.", "Shop help > Returns"),
    ]


def test_a_top_heading_that_repeats_the_title_is_not_repeated_in_the_path() -> None:
    extracted = extract(SHOP.encode(), "md", fallback_title="x")
    assert extracted.title == "Shop help"
    pieces = chunk_document(extracted.text, title=extracted.title, target_words=10, overlap_words=2)
    headings = [piece.heading for piece in pieces]
    assert headings == ["", "Shipping", "Shipping > Abroad", "Returns"]


def test_short_sections_are_packed_with_their_own_headings_in_the_text() -> None:
    extracted = extract(SHOP.encode(), "md", fallback_title="x")
    [piece] = chunk_document(extracted.text, title=extracted.title)
    assert piece.heading == ""
    assert piece.text == (
        "Welcome to the help pages.\n\nShipping\n\nParcels leave within two working days."
        "\n\nShipping > Abroad\n\nOrders outside the Netherlands take a week."
        "\n\nReturns\n\nSend items back within 30 days for a refund."
    )
    # Packed sections keep the path they share.
    [abroad] = chunk_document("## Shipping\n\n### Home\n\nTwo days.\n\n### Abroad\n\nA week.")
    assert abroad == Piece("Home\n\nTwo days.\n\nAbroad\n\nA week.", "Shipping")


def test_a_passage_never_straddles_two_sections() -> None:
    long = " ".join(f"Sentence {n} about shipping." for n in range(60))
    text = f"## Shipping\n\n{long}\n\n## Returns\n\nReturns take 30 days."
    pieces = chunk_document(text, target_words=80, overlap_words=20)
    assert len(pieces) >= 3
    assert all("Returns take" not in p.text for p in pieces if p.heading == "Shipping")
    assert pieces[-1] == Piece("Returns take 30 days.", "Returns")


def test_plain_text_labels_are_headings_and_sentences_are_not() -> None:
    text = (
        "Opening hours\n\nWe open at nine every weekday and close at six.\n\n"
        "Short note.\n\nPrices\n\nA service costs 50 euros plus the parts we fit.\n\n"
        "Monday\n\nTuesday"
    )
    assert sections(text) == [
        ("Opening hours", "We open at nine every weekday and close at six.\n\nShort note."),
        ("Prices", "A service costs 50 euros plus the parts we fit.\n\nMonday\n\nTuesday"),
    ]
    # Setext headings ("Title" over a line of = or -) count as Markdown headings.
    assert sections("Returns\n=======\n\nThirty days.") == [("Returns", "Thirty days.")]


def test_html_headings_survive_extraction() -> None:
    page = extract_html(
        b"<main><h1>Help</h1><p>Intro.</p><h2>\n  Shipping <b>rates</b>\n</h2><p>Five euros."
        b"</p><h3>Abroad</h3><p>Ten euros.</p><h2>Returns</h2><p>30 days.</p></main>",
        base_url="https://shop.test/help",
    )
    assert "## Shipping rates" in page.text
    pieces = chunk_document(page.text, title="Help", target_words=3, overlap_words=1)
    assert [(p.heading, p.text) for p in pieces] == [
        ("", "Intro."),
        ("Shipping rates", "Five euros."),
        ("Shipping rates > Abroad", "Ten euros."),
        ("Returns", "30 days."),
    ]


def test_a_comment_in_a_code_block_is_no_heading() -> None:
    markdown = b"# Setup\n\nRun:\n\n```sh\n# install it\npip install x\n\n# then\nx --go\n```\n"
    extracted = extract(markdown, "md", fallback_title="x")
    assert [p.heading for p in chunk_document(extracted.text, title=extracted.title)] == [""]
    page = extract_html(
        b"<main><h2>Setup</h2><pre># install it\npip install x</pre><p>Then run it.</p></main>",
        base_url="",
    )
    assert [p.heading for p in chunk_document(page.text)] == ["Setup"]


def test_word_heading_styles_survive_extraction() -> None:
    data = make_docx(["Parking is behind the building."], heading="Visiting us")
    extracted = extract(data, "docx", fallback_title="visit.docx")
    assert chunk_document(extracted.text) == [
        Piece("Parking is behind the building.", "Visiting us")
    ]


@pytest.mark.django_db
def test_the_heading_path_is_stored_searched_and_given_with_the_passage(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    filler = " ".join(f"word{i}" for i in range(100))
    text = (
        f"## Deliveries\n\nParcels leave within two working days. {filler}\n\n"
        f"## Refunds\n\nMoney back. {filler}"
    )
    with run_on_commit():
        source = actions.add_text(acme_bot, title="Help", text=text)
    stored = list(Chunk.objects.filter(source=source).values_list("heading", "text"))
    assert stored == [
        ("Deliveries", f"Parcels leave within two working days. {filler}"),
        ("Refunds", f"Money back. {filler}"),
    ]
    # "refund" is only in the heading: the heading is searched with the passage.
    [passage, *_] = retrieve(acme_bot, "How do refunds work?")
    assert (passage.title, passage.heading) == ("Help", "Refunds")


@pytest.mark.django_db
def test_the_test_page_shows_each_passage_s_heading_path(
    alice: User,
    acme_bot: Bot,
    client_for: Callable[[User], Client],
    run_on_commit: Callable[..., Any],
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Help", text="## Refunds\n\nMoney back within 30 days.")
    response = client_for(alice).post(
        reverse("knowledge:test"), {"bot": acme_bot.pk, "question": "How do refunds work?"}
    )
    assert "[1] Help &gt; Refunds</strong>" in response.content.decode()


@pytest.fixture
def embedder() -> Iterator[EmbeddingServer]:
    registry.reset()
    with embedding_server() as server:
        ModelEndpoint.objects.create(
            name="embedder",
            kind="openai",
            base_url=server.url + "/v1",
            model="test-embed",
            embeddings=True,
            source=EndpointSource.ADMIN,
        )
        yield server
    registry.reset()


@pytest.mark.django_db
def test_a_resync_with_one_changed_section_embeds_only_that_section(
    acme_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any]
) -> None:
    sections_text = {
        name: f"## {name}\n\n" + " ".join(f"{name.lower()}{i}" for i in range(100)) + "."
        for name in ("Shipping", "Returns", "Warranty", "Payment")
    }
    with run_on_commit():
        source = actions.add_text(acme_bot, title="Help", text="\n\n".join(sections_text.values()))
    before = {
        heading: (pk, bytes(vector))
        for pk, heading, vector in Chunk.objects.filter(source=source).values_list(
            "pk", "heading", "embedding"
        )
    }
    assert sorted(before) == ["Payment", "Returns", "Shipping", "Warranty"]
    requests, embedded = embedder.requests, len(embedder.texts)

    # Long enough to stay a passage of its own (short sections are packed with neighbours).
    sections_text["Returns"] = "## Returns\n\nReturns are free for 60 days now. " + " ".join(
        f"new{i}" for i in range(100)
    )
    with run_on_commit():
        actions.update_source(source, body="\n\n".join(sections_text.values()))

    # One call, for the one passage that changed.
    assert embedder.requests == requests + 1
    assert len(embedder.texts) == embedded + 1
    assert "60 days" in embedder.texts[-1]
    after = {
        heading: (pk, bytes(vector), position)
        for pk, heading, vector, position in Chunk.objects.filter(source=source).values_list(
            "pk", "heading", "embedding", "position"
        )
    }
    for heading in ("Shipping", "Warranty", "Payment"):
        assert after[heading][:2] == before[heading]  # the same row, the same vector
    assert after["Returns"][0] != before["Returns"][0]
    assert [h for h, _ in sorted(after.items(), key=lambda kv: kv[1][2])] == list(sections_text)


@pytest.mark.django_db
def test_a_heading_renamed_over_the_same_text_is_a_new_passage(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        source = actions.add_text(acme_bot, title="Help", text="## Delivery\n\nTwo days.")
    [old] = Chunk.objects.filter(source=source)
    with run_on_commit():
        actions.update_source(source, body="## Shipping\n\nTwo days.")
    [new] = Chunk.objects.filter(source=source)
    assert (new.heading, new.text) == ("Shipping", "Two days.")
    assert new.pk != old.pk


@pytest.mark.django_db
def test_a_passage_of_several_paragraphs_is_ranked_by_its_closest_paragraph(
    acme_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any]
) -> None:
    paragraphs = [
        "We open Tuesday to Saturday from nine in the morning to six in the evening.",
        "Our workshop services every brand of bicycle, with brakes and gears checked.",
        "Parcels to Iceland arrive within twelve days of the order.",
    ]
    with run_on_commit():
        source = actions.add_text(acme_bot, title="Shop", text="\n\n".join(paragraphs))
        single = actions.add_text(acme_bot, title="Note", text="Parking is behind the shop.")
    [chunk] = Chunk.objects.filter(source=source)
    parts = np.frombuffer(bytes(chunk.embedding_parts), dtype="<f4").reshape(-1, DIMENSIONS)
    assert parts.shape == (3, DIMENSIONS)
    assert Chunk.objects.get(source=single).embedding_parts is None

    question = embed_one("postage to Iceland")
    ranking = dict(vector_ranking(acme_bot, question))
    whole = float(np.frombuffer(bytes(chunk.embedding), dtype="<f4") @ np.asarray(question))
    closest = float((parts @ np.asarray(question, dtype="<f4")).max())
    assert ranking[chunk.pk] == pytest.approx(closest)
    assert closest > whole
