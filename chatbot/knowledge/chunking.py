"""Cut a document's text into overlapping passages of about the same size.

Passages follow the text's own structure where they can (paragraphs, then sentences, then
words) so that a passage shown to the model, and to the manager on the "test your bot" page,
reads as whole sentences. Consecutive passages share a tail of about `overlap_words` words so
that an answer sitting on a boundary is whole in at least one of them.
"""

from __future__ import annotations

import re

TARGET_WORDS = 160
OVERLAP_WORDS = 40

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def _word_count(text: str) -> int:
    return len(text.split())


def _units(text: str, target: int) -> list[str]:
    """Paragraphs, with any paragraph longer than `target` words split into smaller units."""
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if _word_count(paragraph) <= target:
            units.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            words = sentence.split()
            # A "sentence" longer than a passage (lists, tables, no punctuation): cut by words.
            for start in range(0, len(words), target):
                piece = " ".join(words[start : start + target])
                if piece:
                    units.append(piece)
    return units


def _tail(units: list[str], overlap: int) -> list[str]:
    """The last units of a passage, about `overlap` words long, to start the next one."""
    if overlap <= 0 or not units:
        return []
    kept: list[str] = []
    words = 0
    for unit in reversed(units):
        count = _word_count(unit)
        if words + count > overlap:
            if not kept:
                # One long unit: carry its last `overlap` words.
                kept.append(" ".join(unit.split()[-overlap:]))
            break
        kept.insert(0, unit)
        words += count
    return kept


def chunk_text(
    text: str, *, target_words: int = TARGET_WORDS, overlap_words: int = OVERLAP_WORDS
) -> list[str]:
    if overlap_words >= target_words:
        raise ValueError("overlap_words must be smaller than target_words")
    units = _units(text, target_words)
    chunks: list[str] = []
    current: list[str] = []
    current_words = 0
    fresh = 0  # units in `current` that no previous passage contains
    for unit in units:
        count = _word_count(unit)
        if current and current_words + count > target_words and fresh:
            chunks.append("\n\n".join(current))
            current = _tail(current, overlap_words)
            current_words = sum(_word_count(u) for u in current)
            fresh = 0
        current.append(unit)
        current_words += count
        fresh += 1
    if current and fresh:
        chunks.append("\n\n".join(current))
    return chunks
