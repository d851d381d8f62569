"""Cards: the one structured, safe shape an action's result takes in the widget.

A card is data, never markup: a title, a line of text, labelled fields, an image, link
buttons and quick-reply buttons, each a plain string with a length limit. The frame draws it
with `textContent` and fixed elements. Links must be https; an image must be https and come
from one of the bot's own sites (its allowed origins, also the frame's `img-src`), so a card
cannot load a tracking pixel from anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict
from urllib.parse import urlsplit

MAX_FIELDS = 8
MAX_LINKS = 3
MAX_REPLIES = 4


class CardField(TypedDict):
    label: str
    value: str


class CardLink(TypedDict):
    label: str
    url: str


class CardImage(TypedDict):
    url: str
    alt: str


class Card(TypedDict, total=False):
    title: str
    text: str
    fields: list[CardField]
    image: CardImage
    links: list[CardLink]
    replies: list[str]


# The schema the "show a card" built-in offers the model.
CARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "description": "Short heading"},
        "text": {"type": "string", "description": "One or two sentences"},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"label": {"type": "string"}, "value": {"type": "string"}},
                "required": ["label", "value"],
            },
        },
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"label": {"type": "string"}, "url": {"type": "string"}},
                "required": ["label", "url"],
            },
        },
        "replies": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Quick answers the visitor can tap",
        },
    },
    "required": ["title"],
}


def _text(value: object, limit: int) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return ""
    # Control characters (other than newlines) have no business in a card.
    cleaned = "".join(ch for ch in value if ch == "\n" or ch >= " ")
    return cleaned.strip()[:limit]


def _items(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _https(value: object) -> str:
    url = _text(value, 2000)
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return ""
    return url


def clean_card(raw: object, image_origins: Iterable[str] = ()) -> Card | None:
    """The card in `raw` with everything unsafe or oversized dropped; None if nothing is left."""
    if not isinstance(raw, dict):
        return None
    card: Card = {}
    title = _text(raw.get("title"), 120)
    if title:
        card["title"] = title
    text = _text(raw.get("text"), 500)
    if text:
        card["text"] = text
    fields: list[CardField] = []
    for item in _items(raw.get("fields")):
        if isinstance(item, dict) and len(fields) < MAX_FIELDS:
            label, value = _text(item.get("label"), 60), _text(item.get("value"), 200)
            if label and value:
                fields.append({"label": label, "value": value})
    if fields:
        card["fields"] = fields
    image = raw.get("image")
    if isinstance(image, dict):
        url = _https(image.get("url"))
        origin = "https://" + (urlsplit(url).netloc.lower() if url else "")
        if url and origin in set(image_origins):
            card["image"] = {"url": url, "alt": _text(image.get("alt"), 120)}
    links: list[CardLink] = []
    for item in _items(raw.get("links")):
        if isinstance(item, dict) and len(links) < MAX_LINKS:
            label, url = _text(item.get("label"), 40), _https(item.get("url"))
            if label and url:
                links.append({"label": label, "url": url})
    if links:
        card["links"] = links
    replies = [
        reply
        for reply in (_text(item, 60) for item in _items(raw.get("replies"))[:MAX_REPLIES])
        if reply
    ]
    if replies:
        card["replies"] = replies
    return card or None
