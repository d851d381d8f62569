"""The Jinja2 environment for the project's own templates."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, get_language_bidi, gettext, ngettext
from jinja2 import Environment


def url(name: str, *args: Any, **kwargs: Any) -> str:
    return reverse(name, args=args or None, kwargs=kwargs or None)


def environment(**options: Any) -> Environment:
    options["autoescape"] = True
    env = Environment(extensions=["jinja2.ext.i18n"], **options)  # noqa: S701 (set above)
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
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
