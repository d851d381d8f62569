"""The embed snippet a tenant pastes into its site (docs/widget-protocol.md, section 1)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django.conf import settings

from .models import Bot


def site_origin() -> str:
    """The platform's origin (scheme://host[:port]) as browsers send it in Origin."""
    parts = urlsplit(settings.SITE_URL)
    return f"{parts.scheme}://{parts.netloc}"


def loader_url() -> str:
    return f"{settings.SITE_URL}/widget.js"


def embed_snippet(bot: Bot) -> str:
    """Two script tags: the queue stub (so early `Parley(...)` calls are kept) and the loader.

    The key goes through json.dumps so that no value can break out of the script.
    """
    key = json.dumps(bot.public_key)
    return (
        "<script>\n"
        "  window.Parley = window.Parley || function () "
        "{ (Parley.q = Parley.q || []).push(arguments) };\n"
        f"  Parley('init', {{ key: {key} }});\n"
        "</script>\n"
        f'<script async src="{loader_url()}"></script>'
    )
