"""What a reply cites and when it says it does not know (units of replies and prompt)."""

from __future__ import annotations

from chatbot.conversations.replies import _citations, _unanswered
from chatbot.llm.prompt import NOTHING_RELEVANT, knowledge_block
from chatbot.llm.types import Passage

SHIPPING = Passage(id="1", title="Shipping", url="", text="Parcels leave daily.")
RETURNS = Passage(
    id="2", title="Returns", url="https://acme.test/returns", text="30 days.", heading="Refunds"
)
PARKING = Passage(id="3", title="Parking", url="", text="Behind the shop.", relevant=False)


def test_the_reply_keeps_only_the_sources_it_cites() -> None:
    cited = _citations([SHIPPING, RETURNS], "You have 30 days [2].")
    assert [(c["title"], c["url"], c["heading"]) for c in cited] == [
        ("Returns", "https://acme.test/returns", "Refunds")
    ]
    assert cited[0]["passage"] == "30 days."


def test_numbers_follow_the_prompt_which_lists_only_relevant_passages() -> None:
    # The prompt numbered SHIPPING [1] and RETURNS [2]; PARKING was not shown.
    cited = _citations([SHIPPING, PARKING, RETURNS], "See [2], and [7] does not exist.")
    assert [c["title"] for c in cited] == ["Returns"]
    assert "[1] Shipping" in knowledge_block([SHIPPING, PARKING, RETURNS])
    assert "[2] Returns > Refunds (https://acme.test/returns)" in knowledge_block(
        [SHIPPING, PARKING, RETURNS]
    )
    assert "Parking" not in knowledge_block([SHIPPING, PARKING, RETURNS])


def test_a_reply_without_markers_is_credited_with_the_relevant_passages() -> None:
    cited = _citations([SHIPPING, PARKING], "Parcels leave every day.")
    assert [c["title"] for c in cited] == ["Shipping"]


def test_every_citation_has_a_title() -> None:
    untitled = Passage(id="4", title="", url="", text="Some text.")
    linked = Passage(id="5", title="", url="https://acme.test/x", text="More.")
    assert [c["title"] for c in _citations([untitled, linked], "")] == [
        "Untitled",
        "https://acme.test/x",
    ]


def test_when_nothing_is_relevant_the_model_is_told_to_say_it_does_not_know() -> None:
    assert _unanswered([PARKING])
    assert not _unanswered([])  # no knowledge at all (or a greeting): nothing to admit
    assert not _unanswered([PARKING, SHIPPING])
    assert knowledge_block([PARKING]) == NOTHING_RELEVANT
    assert "person" in NOTHING_RELEVANT
