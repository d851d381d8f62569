"""Forms that parse the dashboard's knowledge requests. The actions do the validation that
matters (type by content, URL guard, limits); these check shapes and pick the bot.

The bot is a choice among the current tenant's bots: another tenant's bot id is "not a valid
choice", exactly like an id that does not exist.
"""

from __future__ import annotations

from typing import Any

from django import forms

from chatbot.bots.models import Bot
from chatbot.tenants.models import Tenant

from . import conf
from .models import SourceKind, SyncInterval


class _BotForm(forms.Form):
    bot = forms.ModelChoiceField(queryset=Bot.objects.none(), empty_label=None)

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["bot"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Bot.objects.for_tenant(tenant).order_by("name")


class TextForm(_BotForm):
    title = forms.CharField(max_length=300, required=False)
    text = forms.CharField(widget=forms.Textarea, strip=True)


class QAForm(_BotForm):
    question = forms.CharField(max_length=300)
    answer = forms.CharField(widget=forms.Textarea)


class FileForm(_BotForm):
    title = forms.CharField(max_length=300, required=False)
    file = forms.FileField()


class SiteForm(_BotForm):
    url = forms.CharField(max_length=2000)
    kind = forms.ChoiceField(
        choices=[(SourceKind.URL, "Website"), (SourceKind.SITEMAP, "Sitemap")],
        initial=SourceKind.URL,
    )
    title = forms.CharField(max_length=300, required=False)
    max_depth = forms.IntegerField(min_value=0, initial=2)
    max_pages = forms.IntegerField(min_value=1, initial=50)
    sync_interval = forms.TypedChoiceField(
        choices=SyncInterval.choices, coerce=int, initial=SyncInterval.WEEKLY
    )

    def clean_max_depth(self) -> int:
        value = int(self.cleaned_data["max_depth"])
        if value > conf.max_depth_ceiling():
            raise forms.ValidationError(f"At most {conf.max_depth_ceiling()}.")
        return value

    def clean_max_pages(self) -> int:
        value = int(self.cleaned_data["max_pages"])
        if value > conf.max_pages_ceiling():
            raise forms.ValidationError(f"At most {conf.max_pages_ceiling()}.")
        return value


# The language of a source's documents for full-text search; "" detects it per document.
LANGUAGE_CHOICES = [
    ("", "Detect"),
    ("english", "English"),
    ("french", "French"),
    ("german", "German"),
    ("spanish", "Spanish"),
    ("italian", "Italian"),
    ("portuguese", "Portuguese"),
    ("dutch", "Dutch"),
    ("simple", "Other (no stemming)"),
]


class EditForm(forms.Form):
    title = forms.CharField(max_length=300, required=False)
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, required=False)
    body = forms.CharField(widget=forms.Textarea, required=False)
    sync_interval = forms.TypedChoiceField(
        choices=SyncInterval.choices, coerce=int, required=False, empty_value=None
    )


class TestForm(_BotForm):
    question = forms.CharField(max_length=2000)


FORMS: dict[str, type[_BotForm]] = {
    SourceKind.TEXT: TextForm,
    SourceKind.QA: QAForm,
    SourceKind.FILE: FileForm,
    SourceKind.URL: SiteForm,
}
