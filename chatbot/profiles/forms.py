from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .models import Profile

IMAGE_TYPES = "image/png,image/jpeg,image/webp,image/gif"


class ProfileForm(forms.ModelForm):
    name = forms.CharField(
        label=_("Display name"),
        max_length=150,
        required=False,
        help_text=_(
            "Visitors see it when you join a conversation (empty: the part of your "
            "email address before the @)."
        ),
    )
    avatar_file = forms.FileField(
        label=_("Avatar"),
        required=False,
        help_text=_("A PNG, JPEG, WebP or GIF picture; it is cropped to a square."),
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/png,image/jpeg,image/webp,image/gif"}
        ),
    )
    remove_avatar = forms.BooleanField(label=_("Remove my avatar"), required=False)
    language = forms.ChoiceField(
        label=_("Dashboard language"),
        required=False,
        choices=[("", _("Same as my browser")), *settings.LANGUAGES],
    )

    class Meta:
        model = Profile
        fields = ["language", "notify_browser", "notify_sound"]
        labels = {
            "notify_browser": _("Browser notifications"),
            "notify_sound": _("Sound"),
        }
