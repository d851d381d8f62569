"""Writes to a person's profile, and what other domains read of it."""

from __future__ import annotations

import io
from typing import Any

from django.urls import reverse
from PIL import Image, ImageOps

from chatbot.conversations.images import clean_image
from chatbot.tenants.models import User

from .models import Profile

AVATAR_SIDE = 128


def profile_for(user: User) -> Profile:
    """The user's profile (unsaved defaults when they never changed anything)."""
    try:
        return user.profile
    except Profile.DoesNotExist:
        return Profile(user=user)


def avatar_png(data: bytes) -> bytes:
    """Validate (by content, via clean_image), crop to a square and shrink to 128 px."""
    clean = clean_image(data)
    with Image.open(io.BytesIO(clean.data)) as image:
        square = ImageOps.fit(image.convert("RGB"), (AVATAR_SIDE, AVATAR_SIDE))
    out = io.BytesIO()
    square.save(out, "PNG", optimize=True)
    return out.getvalue()


def update_profile(
    user: User, *, name: str, avatar: bytes | None, remove_avatar: bool, **settings: Any
) -> Profile:
    """Save the display name and settings; `avatar` is the raw upload (None: unchanged)."""
    user.name = name.strip()[:150]
    user.save(update_fields=["name"])
    profile = profile_for(user)
    for field, value in settings.items():
        setattr(profile, field, value)
    if avatar is not None:
        profile.avatar = avatar_png(avatar)
        profile.new_avatar_id()
    elif remove_avatar:
        profile.avatar, profile.avatar_id = b"", ""
    profile.save()
    return profile


def avatar_url(user_id: int | None) -> str | None:
    """The avatar's public URL (visitors see it next to the agent's messages), if any."""
    if user_id is None:
        return None
    avatar_id = Profile.objects.filter(user_id=user_id).values_list("avatar_id", flat=True).first()
    return reverse("profiles:avatar", args=[avatar_id]) if avatar_id else None
