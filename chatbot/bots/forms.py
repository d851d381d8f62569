"""The bot editing form: validates and normalises what owners type."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .models import (
    HEX_COLOUR,
    MAX_ALLOWED_ORIGINS,
    MAX_SUGGESTED_QUESTIONS,
    Bot,
    normalize_origin,
)

MAX_QUESTION_CHARS = 120


def _lines(value: str | None) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


class BotForm(forms.ModelForm):
    suggested_questions_text = forms.CharField(
        label="Suggested questions",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=f"One per line, at most {MAX_SUGGESTED_QUESTIONS}. Visitors can tap them.",
    )
    allowed_origins_text = forms.CharField(
        label="Allowed sites",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://www.example.com"}),
        help_text=(
            "One origin per line (scheme, host and port, no path), e.g. https://www.example.com."
            " The widget runs only on these sites."
        ),
    )
    primary_endpoint = forms.TypedChoiceField(
        label="Model", required=False, coerce=int, empty_value=None
    )
    fallback_endpoint = forms.TypedChoiceField(
        label="Fallback model", required=False, coerce=int, empty_value=None
    )

    class Meta:
        model = Bot
        fields = (
            "name",
            "title",
            "system_prompt",
            "greeting",
            "default_locale",
            "accent_color",
            "position",
            "theme",
            "launcher_icon",
            "avatar_url",
            "enabled",
        )
        labels = {
            "system_prompt": "Persona (system prompt)",
            "title": "Panel title",
            "default_locale": "Language",
            "accent_color": "Accent colour",
            "launcher_icon": "Launcher icon",
            "avatar_url": "Avatar image URL",
        }
        help_texts = {
            "system_prompt": "How the assistant should behave: tone, what it knows, what to avoid.",
            "greeting": "The first message visitors see.",
            "title": "Shown at the top of the chat panel; the bot's name when empty.",
            "avatar_url": "An https image, used when the launcher icon is “Avatar image”.",
            "enabled": "A disabled bot shows no widget anywhere.",
        }
        widgets = {
            "system_prompt": forms.Textarea(attrs={"rows": 6}),
            "greeting": forms.TextInput(),
            "accent_color": forms.TextInput(attrs={"type": "color"}),
        }

    def __init__(self, *args: Any, endpoints: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bot: Bot | None = self.instance if self.instance.pk else None
        if bot is not None:
            self.fields["suggested_questions_text"].initial = "\n".join(
                bot.suggested_questions or []
            )
            self.fields["allowed_origins_text"].initial = "\n".join(bot.allowed_origins or [])
        self.endpoints = endpoints
        if endpoints is None:  # the model service is not installed: no route picker
            del self.fields["primary_endpoint"]
            del self.fields["fallback_endpoint"]
        else:
            choices = [(e.pk, str(e.name)) for e in endpoints]
            primary = self.fields["primary_endpoint"]
            fallback = self.fields["fallback_endpoint"]
            assert isinstance(primary, forms.ChoiceField)
            assert isinstance(fallback, forms.ChoiceField)
            primary.choices = [("", "Platform default"), *choices]
            fallback.choices = [("", "None"), *choices]

    def clean_accent_color(self) -> str:
        value = str(self.cleaned_data.get("accent_color") or "").strip()
        if not HEX_COLOUR.match(value):
            raise ValidationError("Use a colour like #4f46e5.")
        return value.lower()

    def clean_avatar_url(self) -> str:
        value = str(self.cleaned_data.get("avatar_url") or "").strip()
        if value and not value.startswith("https://"):
            raise ValidationError("The avatar must be an https:// address.")
        return value

    def clean_suggested_questions_text(self) -> list[str]:
        questions = list(dict.fromkeys(_lines(self.cleaned_data.get("suggested_questions_text"))))
        if len(questions) > MAX_SUGGESTED_QUESTIONS:
            raise ValidationError(f"At most {MAX_SUGGESTED_QUESTIONS} suggested questions.")
        too_long = [q for q in questions if len(q) > MAX_QUESTION_CHARS]
        if too_long:
            raise ValidationError(
                f"Keep each question under {MAX_QUESTION_CHARS} characters: {too_long[0][:40]}…"
            )
        return questions

    def clean_allowed_origins_text(self) -> list[str]:
        origins: list[str] = []
        errors: list[str] = []
        for line in _lines(self.cleaned_data.get("allowed_origins_text")):
            try:
                origins.append(normalize_origin(line))
            except ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise ValidationError(errors)
        origins = list(dict.fromkeys(origins))
        if len(origins) > MAX_ALLOWED_ORIGINS:
            raise ValidationError(f"At most {MAX_ALLOWED_ORIGINS} sites per bot.")
        return origins

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        primary, fallback = data.get("primary_endpoint"), data.get("fallback_endpoint")
        if fallback is not None and primary is None:
            self.add_error("fallback_endpoint", "Choose a model before a fallback.")
        elif fallback is not None and fallback == primary:
            self.add_error("fallback_endpoint", "The fallback must be a different model.")
        return data

    def bot_fields(self) -> dict[str, Any]:
        """The cleaned values for `chatbot.bots.actions` (which ignores anything else)."""
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["suggested_questions"] = self.cleaned_data["suggested_questions_text"]
        data["allowed_origins"] = self.cleaned_data["allowed_origins_text"]
        return data

    def route(self) -> list[int] | None:
        """Endpoint ids, primary first; None when the picker is not shown."""
        if self.endpoints is None:
            return None
        ids = [
            self.cleaned_data.get("primary_endpoint"),
            self.cleaned_data.get("fallback_endpoint"),
        ]
        return [i for i in ids if i is not None]
