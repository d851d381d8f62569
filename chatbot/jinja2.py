"""The Jinja2 environment for the project's own templates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.templatetags.static import static
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import get_language, get_language_bidi, gettext, ngettext
from jinja2 import Environment


def url(name: str, *args: Any, **kwargs: Any) -> str:
    return reverse(name, args=args or None, kwargs=kwargs or None)


def when(value: datetime | None) -> str:
    """A date and time in the reader's language (Django's SHORT_DATETIME_FORMAT)."""
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else ""


def day(value: date | datetime | None) -> str:
    """A date in the reader's language (a datetime is read in the local time zone first)."""
    if isinstance(value, datetime):
        value = timezone.localtime(value)
    return formats.date_format(value, "SHORT_DATE_FORMAT") if value else ""


def number(value: float | int | None) -> str:
    """A number with the language's separators (1,234.5 / 1 234,5)."""
    return (
        formats.number_format(value, use_l10n=True, force_grouping=True)
        if value is not None
        else ""
    )


def environment(**options: Any) -> Environment:
    options["autoescape"] = True
    env = Environment(extensions=["jinja2.ext.i18n"], **options)  # noqa: S701 (set above)
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update({"when": when, "day": day, "number": number})
    env.globals.update(
        {
            "static": static,
            "url": url,
            "get_messages": messages.get_messages,
            "get_language": get_language,
            "get_language_bidi": get_language_bidi,
            "now": timezone.now,
            "SITE_URL": settings.SITE_URL,
            "DEBUG": settings.DEBUG,
        }
    )
    # The dashboard shell's helpers (navigation registry, workspace switcher).
    from chatbot.dashboard.jinja_globals import GLOBALS as dashboard_globals

    env.globals.update(dashboard_globals)
    return env
