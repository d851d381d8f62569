"""Chunking keeps sentences whole, stays near the target size, and overlaps neighbours."""

from __future__ import annotations

import itertools

import pytest

from chatbot.knowledge.chunking import chunk_text


def test_a_short_text_is_one_chunk() -> None:
    assert chunk_text("One paragraph.\n\nAnother one.") == ["One paragraph.\n\nAnother one."]


def test_an_empty_text_has_no_chunks() -> None:
    assert chunk_text("  \n\n ") == []


def test_long_texts_are_cut_near_the_target_with_overlap() -> None:
    paragraphs = [f"Paragraph {n} " + " ".join(f"w{n}x{i}" for i in range(30)) for n in range(20)]
    chunks = chunk_text("\n\n".join(paragraphs), target_words=100, overlap_words=35)
    assert len(chunks) > 5
    for chunk in chunks:
        assert len(chunk.split()) <= 100 + 35
    for before, after in itertools.pairwise(chunks):
        # The next chunk starts with the last paragraph of the previous one.
        assert after.split("\n\n")[0] == before.split("\n\n")[-1]
    # Every paragraph is somewhere, whole.
    for paragraph in paragraphs:
        assert any(paragraph in chunk for chunk in chunks)


def test_a_huge_paragraph_is_split_by_sentences_then_words() -> None:
    sentences = " ".join(f"Sentence number {n} says something useful." for n in range(100))
    no_punctuation = " ".join(f"word{n}" for n in range(1000))
    chunks = chunk_text(sentences + "\n\n" + no_punctuation, target_words=80, overlap_words=20)
    assert all(len(chunk.split()) <= 100 for chunk in chunks)
    assert any(chunk.startswith("Sentence number") for chunk in chunks)
    assert "word999" in chunks[-1]


def test_overlap_must_be_smaller_than_the_target() -> None:
    with pytest.raises(ValueError, match="smaller"):
        chunk_text("x", target_words=10, overlap_words=10)
