"""Where each bot's widget has been seen (one row per bot and host origin)."""

from __future__ import annotations

from django.db import models

from chatbot.bots.models import Bot
from chatbot.tenants.scoping import TenantScopedManager


class WidgetSighting(models.Model):
    """The widget opened a session on a page of this origin (written by `record_sighting`,
    at most once a minute per bot and origin)."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="sightings")
    origin = models.CharField(max_length=200)
    # The last page (origin and path; never the query string, which may carry secrets).
    page_url = models.CharField(max_length=500, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    objects = TenantScopedManager("bot__tenant")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bot", "origin"], name="one_sighting_per_origin")
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} on {self.origin}"
