"""A dashboard user's own settings (one row per user, made on first save)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    # A small square PNG, re-encoded from the upload (<= 64 KB): kept in the database so
    # every process serves it without shared file storage.
    avatar = models.BinaryField(blank=True, default=b"", editable=False)
    # The avatar's URL name; a new upload gets a new one, so browsers may cache it forever.
    avatar_id = models.CharField(max_length=32, blank=True)
    # "" follows the browser's Accept-Language.
    language = models.CharField(max_length=8, blank=True)
    notify_browser = models.BooleanField(
        default=True,
        help_text="A browser notification when a visitor waits for a person or writes in a "
        "conversation assigned to you (while a dashboard tab is open).",
    )
    notify_sound = models.BooleanField(default=False, help_text="Play a short sound as well.")

    def __str__(self) -> str:
        return f"profile of {self.user_id}"

    def new_avatar_id(self) -> str:
        self.avatar_id = secrets.token_urlsafe(12)
        return self.avatar_id
