"""Cut a document's text into overlapping passages of about the same size.

Passages follow the text's own structure where they can (paragraphs, then sentences, then
words) so that a passage shown to the model, and to the manager on the "test your bot" page,
reads as whole sentences. Consecutive passages share a tail of about `overlap_words` words so
that an answer sitting on a boundary is whole in at least one of them.

A document is first cut at its headings (`chunk_document`): a passage holds whole short
sections or a part of one long section, never the end of one and the start of the next, and
keeps the path of headings above it ("Shipping > Returns"), which is searched with the
document's title, embedded, shown in the prompt, and cited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


# --- Sections: the document's headings, kept with every passage cut from under them ---------

HEADING_SEPARATOR = " > "
# Extraction writes every heading it finds (Markdown "#", HTML h1-h6, Word heading styles) as a
# Markdown ATX line: "## Returns". Plain text gets the cheap cases too (`_looks_like_heading`).
_ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^(=+|-+)[ \t]*$")
_LIST_ITEM = re.compile(r"^(?:[-*+•]|\d+[.)])\s")
# A heading-like line in plain text: short, alone in its paragraph, not a sentence.
MAX_PLAIN_HEADING_WORDS = 8
MAX_PLAIN_HEADING_CHARS = 80


@dataclass(frozen=True, slots=True)
class Piece:
    """A passage and the headings above it ("Shipping > Returns"), outermost first."""

    text: str
    heading: str = ""


def _looks_like_heading(paragraph: str, following: str) -> bool:
    """A one-line paragraph that reads like a label ("Opening hours", "Returns policy") and
    is followed by ordinary text. Sentences (closing punctuation), list items and lines of
    many words are text; so is a label with nothing after it."""
    if "\n" in paragraph or not following:
        return False
    line = paragraph.strip()
    if (
        len(line) > MAX_PLAIN_HEADING_CHARS
        or _word_count(line) > MAX_PLAIN_HEADING_WORDS
        or line[-1] in ".!?;,:)…\"'»”"
        or _LIST_ITEM.match(line)
        or not line[0].isalpha()
        or not line[0].isupper()
    ):
        return False
    # The next paragraph must be longer text, not another label (a table's cells, a list).
    return _word_count(following) > _word_count(line) + 3


def _parse_heading(paragraph: str) -> tuple[int, str] | None:
    """(level, text) of a Markdown heading paragraph: "## Returns" or "Returns\\n=======" ."""
    lines = paragraph.strip().split("\n")
    if len(lines) == 1:
        match = _ATX_HEADING.match(lines[0])
        if match:
            title = match.group(2).strip()
            return (len(match.group(1)), title) if title else None
    if len(lines) == 2 and _SETEXT_UNDERLINE.match(lines[1]) and lines[0].strip():
        return (1 if lines[1].startswith("=") else 2), lines[0].strip()
    return None


def _split_heading_lines(text: str) -> list[str]:
    """Paragraphs, with a Markdown heading line that sits on top of its text made its own.

    Inside a fenced code block ("```") nothing is a heading (a shell comment starts with "# ")
    and blank lines do not end the paragraph.
    """
    paragraphs: list[str] = []
    current: list[str] = []
    fenced = False

    def end() -> None:
        if "\n".join(current).strip():
            paragraphs.append("\n".join(current).strip())
        current.clear()

    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            current.append(line)
        elif fenced:
            current.append(line)
        elif not stripped:
            end()
        elif _ATX_HEADING.match(stripped):
            end()
            paragraphs.append(stripped)
        else:
            current.append(line)
    end()
    return paragraphs


def sections(text: str, *, title: str = "") -> list[tuple[str, str]]:
    """(heading path, body) of each part of `text` under its own headings, in order.

    A heading opens a section that runs to the next heading of its level or higher; the path
    lists the open headings, outermost first. A top heading that only repeats the document's
    `title` is left out of the path (the title is kept and shown on its own). Text before the
    first heading has an empty path; a heading with no text of its own yields no section.
    """
    paragraphs = _split_heading_lines(text)
    open_headings: list[tuple[int, str]] = []
    result: list[tuple[str, str]] = []
    body: list[str] = []
    plain_level = 7  # plain-text labels nest under any Markdown heading, never above one

    def path() -> str:
        names = [name for _, name in open_headings]
        if names and _same(names[0], title):
            names = names[1:]
        return HEADING_SEPARATOR.join(names)

    def close() -> None:
        if body:
            result.append((path(), "\n\n".join(body)))
            body.clear()

    for index, paragraph in enumerate(paragraphs):
        parsed = _parse_heading(paragraph)
        if parsed is None:
            following = paragraphs[index + 1] if index + 1 < len(paragraphs) else ""
            if _looks_like_heading(paragraph, following) and _parse_heading(following) is None:
                parsed = (plain_level, paragraph.strip())
        if parsed is None:
            body.append(paragraph)
            continue
        close()
        level, name = parsed
        while open_headings and open_headings[-1][0] >= level:
            open_headings.pop()
        open_headings.append((level, name[:200]))
    close()
    return result


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def chunk_document(
    text: str,
    *,
    title: str = "",
    target_words: int = TARGET_WORDS,
    overlap_words: int = OVERLAP_WORDS,
) -> list[Piece]:
    """The passages of a document, cut at its headings, each carrying its heading path.

    Consecutive sections are packed into one passage while they fit in `target_words`: a
    short section alone says too little for search (the bench's paraphrased questions lost a
    third of their hits at 1 when every section stood alone). A packed passage's path is what
    its sections share, and each section's own heading is kept in the text as a line. A
    section longer than the target is cut alone, like `chunk_text` cuts a text (paragraphs,
    sentences, words, with overlap); passages never cut a section in two elsewhere.
    """
    pieces: list[Piece] = []
    group: list[tuple[list[str], str]] = []
    group_words = 0

    def flush() -> None:
        nonlocal group_words
        if not group:
            return
        shared = _common_prefix([path for path, _ in group])
        parts = []
        for path, body in group:
            own = HEADING_SEPARATOR.join(path[len(shared) :])
            parts.append(f"{own}\n\n{body}" if own else body)
        pieces.append(Piece("\n\n".join(parts), HEADING_SEPARATOR.join(shared)[:500]))
        group.clear()
        group_words = 0

    for heading, body in sections(text, title=title):
        path = heading.split(HEADING_SEPARATOR) if heading else []
        words = _word_count(body) + _word_count(path[-1] if path else "")
        if words > target_words:
            flush()
            for passage in chunk_text(body, target_words=target_words, overlap_words=overlap_words):
                pieces.append(Piece(passage, heading[:500]))
            continue
        if group and group_words + words > target_words:
            flush()
        group.append((path, body))
        group_words += words
    flush()
    return pieces


def _common_prefix(paths: list[list[str]]) -> list[str]:
    shared = list(paths[0])
    for path in paths[1:]:
        length = 0
        while length < min(len(shared), len(path)) and shared[length] == path[length]:
            length += 1
        shared = shared[:length]
    return shared
