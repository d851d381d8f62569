"""Text analysis for full-text search: the same words on SQLite and PostgreSQL.

A passage or a question becomes a list of terms: lower-cased words, stop words of its language
dropped, each word cut to its Snowball stem, then folded to plain letters ("révision" and
"revision" both become "revis"). Ingestion stores a chunk's terms (`Chunk.search_text`), the
databases' full-text indexes only find the candidates that share a term with the question, and
`retrieval` ranks them by BM25 with the bot's own statistics. One analyser in Python rather
than each engine's own keeps both databases' results the same, needs no PostgreSQL extension
(`unaccent` is not always installable) and gives SQLite the stemmers FTS5 lacks.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter

import snowballstemmer

# Language code -> Snowball stemmer name. "simple" (any other language) keeps whole words.
STEMMERS = {
    "da": "danish",
    "de": "german",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "hu": "hungarian",
    "it": "italian",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sv": "swedish",
    "tr": "turkish",
}
SIMPLE = "simple"
LANGUAGE_NAMES = frozenset([*STEMMERS.values(), SIMPLE])

# Function words, folded (no accents). Short on purpose: words that carry no subject in a
# question ("how", "combien" stays: it is a subject of its own in "how much").
_STOPWORDS_TEXT = {
    "english": """a about after again all also am an and any are as at be been before being
        both but by can could did do does doing done each few for from further had has have
        having he her here hers him his how i if in into is it its itself just me more most my
        no nor not now of off on once only or other our ours out over own same she should so
        some such than that the their theirs them then there these they this those through to
        too under until up very was we were what when where which while who whom why will
        with would you your yours s t d ll m re ve""",
    "french": """a au aux avec ce ces c ca cela celle celui cet cette d dans de des du elle
        elles en est et etre eu il ils j je l la le les leur leurs lui m ma mais me meme mes
        moi mon n ne nos notre nous on ont ou par pas pour qu que quel quelle quelles quels
        qui s sa sans se ses si son sont sur t ta te tes toi ton tu un une vos votre vous y
        suis es sommes etes etait ai as avons avez est-ce""",
    "spanish": """a al algo como con de del el ella ellas ellos en entre es esa ese eso esta
        este esto estos fue ha hay la las le les lo los me mi mis muy no nos o os para pero
        por que se si sin su sus te ti tu tus un una uno unos y ya yo usted ustedes""",
    "german": """aber als am an auch auf aus bei bin bis bist da das dass dem den der des die
        dir du ein eine einem einen einer eines er es fur hat hatte ich ihr ihre im in ist ja
        kann man mein meine mich mir mit nach nicht noch nur ob oder sein sich sie sind so
        uber um und uns unser von vor war was wer wie wir wird zu zum zur""",
}
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Letters that NFKD does not take apart.
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l"})


def fold(text: str) -> str:
    """Lower case without accents: "Œuvre Révisée" -> "oeuvre revisee"."""
    text = text.lower().translate(_LIGATURES)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


STOPWORDS = {name: frozenset(fold(words).split()) for name, words in _STOPWORDS_TEXT.items()}


def language_name(code: str) -> str:
    """ "fr", "fr-CA", "french" -> "french"; unknown -> "simple"."""
    code = (code or "").strip().lower()
    if code in LANGUAGE_NAMES:
        return code
    return STEMMERS.get(code.replace("_", "-").split("-")[0], SIMPLE)


@functools.cache
def _stemmer(name: str) -> snowballstemmer.stemmer | None:
    return snowballstemmer.stemmer(name) if name != SIMPLE else None


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def analyze(text: str, language: str) -> list[str]:
    """The terms of `text` in `language` (a Snowball name or "simple"), in order."""
    stopwords = STOPWORDS.get(language, frozenset())
    stemmer = _stemmer(language)
    terms: list[str] = []
    for word in words(text):
        folded = fold(word)
        if folded in stopwords or (len(folded) == 1 and not folded.isdigit()):
            continue
        # Stemmers expect the accents (French "é" endings), so stem first, then fold.
        stem = stemmer.stemWord(word) if stemmer is not None else word
        terms.append(fold(stem))
    return terms


def query_language(text: str) -> str | None:
    """The language of a short question, when its stop words say so clearly; else None."""
    folded = [fold(word) for word in words(text[:2000])]
    scores = {
        name: sum(word in stopwords for word in folded) for name, stopwords in STOPWORDS.items()
    }
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    if ranked[0][1] >= 2 and ranked[0][1] >= 2 * ranked[1][1]:
        return ranked[0][0]
    return None


def detect_language(text: str, default: str = "english") -> str:
    """The language among those with stop-word lists whose stop words `text` uses most.

    Stop words are the most frequent words of a language, so their share identifies it well
    on a paragraph or more. Too little text to tell, or a tie, gives `default`.
    """
    if default not in STOPWORDS and default != SIMPLE:
        return default  # a language this cannot recognise: trust the bot's
    folded = [fold(word) for word in words(text[:20000])]
    if len(folded) < 8:
        return default
    counts = Counter(folded)
    scores = {
        name: sum(counts[word] for word in stopwords) for name, stopwords in STOPWORDS.items()
    }
    best = max(scores, key=lambda name: scores[name])
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] == 0 or ranked[0] == ranked[1] or ranked[0] < 0.1 * len(folded):
        return default
    return best


def search_fields(*, title: str, heading: str, text: str, language: str) -> dict[str, object]:
    """What a chunk stores for full-text search (see `Chunk.search_text`)."""
    body = analyze(text, language)
    return {
        "search_title": " ".join(analyze(f"{title}\n{heading}", language)),
        "search_text": " ".join(body),
        "search_length": len(body),
    }
