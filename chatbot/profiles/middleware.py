"""The member's own language (profile setting) over the browser's, on every request.

Runs after Django's LocaleMiddleware (Accept-Language, the language cookie) and the
authentication middleware. One small query per authenticated request; it also leaves the
notification settings on the request for the dashboard shell (`request.member_prefs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.utils import translation

from .models import Profile


@dataclass(frozen=True)
class MemberPrefs:
    language: str = ""
    notify_browser: bool = True
    notify_sound: bool = False


DEFAULT_PREFS = MemberPrefs()


class ProfileLanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        prefs = DEFAULT_PREFS
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            row = (
                Profile.objects.filter(user_id=user.pk)
                .values_list("language", "notify_browser", "notify_sound")
                .first()
            )
            if row is not None:
                prefs = MemberPrefs(*row)
        request.member_prefs = prefs  # type: ignore[attr-defined]
        if prefs.language:
            translation.activate(prefs.language)
            request.LANGUAGE_CODE = prefs.language
        response = self.get_response(request)
        if prefs.language:
            response.headers.setdefault("Content-Language", prefs.language)
        return response
