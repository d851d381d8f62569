from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models

from chatbot.tenants.models import Tenant
from chatbot.tenants.scoping import TenantScopedManager

LOCALES = (
    ("en", "English"),
    ("fr", "Français"),
    ("es", "Español"),
    ("de", "Deutsch"),
    ("ar", "العربية"),
)
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_SUGGESTED_QUESTIONS = 6
MAX_ALLOWED_ORIGINS = 20


def new_public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


def new_identity_secret() -> str:
    return "is_" + secrets.token_urlsafe(32)


def normalize_origin(raw: str) -> str:
    """`https://Shop.Example:443/path` → `https://shop.example`; raises ValidationError.

    Origins are compared as exact strings everywhere (Origin headers, token audiences), so
    they are stored in the form browsers send: lower-case host, no default port, no path.
    """
    value = raw.strip()
    try:
        parts = urlsplit(value)
    except ValueError:  # "Invalid IPv6 URL": an unclosed [
        raise ValidationError(f"{raw!r} is not an origin like https://www.example.com") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{raw!r} is not an origin like https://www.example.com")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationError(f"{raw!r}: an origin has no user, query or fragment")
    if parts.path not in ("", "/"):
        raise ValidationError(f"{raw!r}: an origin has no path (use https://{parts.hostname})")
    if "*" in value:
        raise ValidationError(f"{raw!r}: wildcards are not supported; list each origin")
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"{raw!r}: the port is not a number") from None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    suffix = f":{port}" if port and port != default_port else ""
    return f"{parts.scheme}://{host}{suffix}"


class Position(models.TextChoices):
    RIGHT = "right", "Bottom right"
    LEFT = "left", "Bottom left"


class Theme(models.TextChoices):
    AUTO = "auto", "Follow the visitor's system"
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"


class LauncherIcon(models.TextChoices):
    CHAT = "chat", "Speech bubble"
    HELP = "help", "Question mark"
    SPARKLE = "sparkle", "Sparkle"
    AVATAR = "avatar", "Avatar image"


class Bot(models.Model):
    """An assistant a tenant puts on its websites."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=80)
    system_prompt = models.TextField(blank=True)
    greeting = models.CharField(max_length=500, blank=True)
    suggested_questions = models.JSONField(default=list, blank=True)
    # Appearance of the launcher and panel.
    title = models.CharField(max_length=80, blank=True)
    accent_color = models.CharField(max_length=7, default="#4f46e5")
    position = models.CharField(max_length=5, choices=Position.choices, default=Position.RIGHT)
    theme = models.CharField(max_length=5, choices=Theme.choices, default=Theme.AUTO)
    launcher_icon = models.CharField(
        max_length=10, choices=LauncherIcon.choices, default=LauncherIcon.CHAT
    )
    avatar_url = models.URLField(max_length=500, blank=True)
    default_locale = models.CharField(max_length=5, choices=LOCALES, default="en")
    allowed_origins = models.JSONField(default=list, blank=True)
    public_key = models.CharField(max_length=40, unique=True, default=new_public_key)
    identity_secret = models.CharField(max_length=64, default=new_identity_secret)
    # Bumped when the identity secret is rotated: every visitor session token carries it, so
    # rotation revokes the outstanding tokens at once.
    session_generation = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return self.name

    @property
    def display_title(self) -> str:
        return self.title or self.name

    def allows_origin(self, origin: str | None) -> bool:
        """Exact match against the stored origins; look-alikes and `null` never match."""
        if not origin:
            return False
        return origin in self.allowed_origins

    def widget_config(self, *, accepts_images: bool = False, status: str = "ok") -> dict:
        """What the loader and the frame need to draw this bot (public: no secrets)."""
        return {
            "key": self.public_key,
            "name": self.name,
            "title": self.display_title,
            "greeting": self.greeting,
            "suggested_questions": list(self.suggested_questions or []),
            "locale": self.default_locale,
            "appearance": {
                "accent": self.accent_color,
                "position": self.position,
                "theme": self.theme,
                "launcher": self.launcher_icon,
                "avatar_url": self.avatar_url,
            },
            "accepts_images": accepts_images,
            "status": status,
        }
