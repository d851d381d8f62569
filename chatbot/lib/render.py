"""Stored message text (visitor input, model output) as safe HTML, for the dashboard.

Both are hostile: markdown is rendered with raw HTML disabled, then the result goes through
nh3 with a small allowlist (no images, so a markdown image cannot call out to another
server; links only to http/https, opened with rel="noopener noreferrer"). Pages showing it
also run under the dashboard's strict CSP.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = {"p", "strong", "em", "code", "pre", "ul", "ol", "li", "a", "br"}
# "*" (attributes on every tag) empty: nh3 would otherwise allow lang and title everywhere.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href"}, "*": set()}
ALLOWED_SCHEMES = {"http", "https"}

# commonmark without raw HTML; linkify off (it needs an extra package and adds nothing here).
_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True}).disable("image")


def render_markdown(text: str) -> Markup:
    """Markdown to sanitized HTML, safe to insert in a Jinja2 template."""
    html = _markdown.render(text or "")
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return Markup(clean)  # noqa: S704 (sanitized by nh3 just above)
