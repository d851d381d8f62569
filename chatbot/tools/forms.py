"""The action form: simple argument fields or a raw schema, headers kept secret."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from chatbot.bots.models import Bot
from chatbot.lib import outbound
from chatbot.tenants.models import Tenant

from .endpoint import headers_of, store_headers
from .models import (
    ACTION_NAME,
    MAX_HEADERS,
    MAX_TIMEOUT_SECONDS,
    Action,
    ActionKind,
)
from .schema import FIELD_TYPES, Field, SchemaProblem, check_schema, fields_of, schema_from_fields

FIELD_ROWS = 8
HEADER_NAME = r"^[A-Za-z0-9-]{1,64}$"


class ActionForm(forms.ModelForm):
    schema_mode = forms.ChoiceField(
        choices=(("fields", "Simple fields"), ("raw", "JSON Schema")), initial="fields"
    )
    parameters_json = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 8}))
    headers_text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line, Name: value. Stored encrypted; leave empty to keep the saved "
        "ones, or write “clear” to remove them.",
    )
    bots = forms.ModelMultipleChoiceField(
        queryset=Bot.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Action
        fields = (
            "name",
            "title",
            "description",
            "url",
            "method",
            "timeout_seconds",
            "needs_confirmation",
            "enabled",
            "bots",
        )

    def __init__(self, *args: Any, tenant: Tenant, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.kind = kind
        self.fields["bots"].queryset = Bot.objects.for_tenant(tenant).order_by("name")  # type: ignore[attr-defined]
        if self.instance.pk and not self.is_bound:
            simple = fields_of(self.instance.parameters or {})
            self.initial["schema_mode"] = "fields" if simple is not None else "raw"
            self.initial["parameters_json"] = json.dumps(self.instance.parameters, indent=2)

    def field_rows(self) -> list[Field]:
        """The simple-field rows to draw (saved ones, or what was posted, then blanks)."""
        if self.is_bound:
            rows = self._posted_fields(keep_blank=True)
        else:
            rows = fields_of(self.instance.parameters or {}) or []
        return rows + [Field("")] * max(0, FIELD_ROWS - len(rows))

    def _posted_fields(self, keep_blank: bool = False) -> list[Field]:
        rows = []
        for i in range(FIELD_ROWS):
            name = (self.data.get(f"field_name_{i}") or "").strip()
            if not name and not keep_blank:
                continue
            if not name:
                continue
            rows.append(
                Field(
                    name,
                    self.data.get(f"field_type_{i}") or "string",
                    (self.data.get(f"field_description_{i}") or "").strip()[:200],
                    bool(self.data.get(f"field_required_{i}")),
                )
            )
        return rows

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if not ACTION_NAME.match(name):
            raise ValidationError(
                "Use lower-case letters, digits and _ (starting with a letter), e.g. find_order."
            )
        taken = Action.objects.for_tenant(self.tenant).filter(name=name)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError("Another action already has this name.")
        return name

    def clean_timeout_seconds(self) -> int:
        value = int(self.cleaned_data["timeout_seconds"])
        if not 1 <= value <= MAX_TIMEOUT_SECONDS:
            raise ValidationError(f"Between 1 and {MAX_TIMEOUT_SECONDS} seconds.")
        return value

    def clean_url(self) -> str:
        url = str(self.cleaned_data.get("url") or "").strip()
        if self.kind != ActionKind.HTTP:
            return ""
        if not url.startswith("https://"):
            raise ValidationError("Parley calls actions over HTTPS only: https://…")
        try:
            outbound.check_url(url.replace("{", "").replace("}", ""))
        except outbound.BlockedURL as exc:
            raise ValidationError(f"This address cannot be called: {exc}") from None
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            if data.get("schema_mode") == "raw":
                raw = (data.get("parameters_json") or "").strip() or "{}"
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    raise SchemaProblem("The JSON Schema is not valid JSON.") from None
                data["parameters"] = check_schema(parsed)
            else:
                data["parameters"] = check_schema(schema_from_fields(self._posted_fields()))
        except SchemaProblem as exc:
            self.add_error("parameters_json", str(exc))
        data["headers"] = self._headers(data.get("headers_text") or "")
        return data

    def _headers(self, text: str) -> dict[str, str] | None:
        """New headers, {} to clear them, None to keep the stored ones."""
        import re

        text = text.strip()
        if not text:
            return None
        if text.lower() == "clear":
            return {}
        headers: dict[str, str] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            name, sep, value = line.partition(":")
            if not sep or not re.match(HEADER_NAME, name.strip()) or not value.strip():
                self.add_error("headers_text", f"Write each header as Name: value ({line[:40]!r}).")
                return None
            if "\r" in value or "\n" in value:
                self.add_error("headers_text", "A header value cannot span lines.")
                return None
            headers[name.strip()] = value.strip()
        if len(headers) > MAX_HEADERS:
            self.add_error("headers_text", f"At most {MAX_HEADERS} headers.")
            return None
        return headers

    def header_names(self) -> list[str]:
        if not self.instance.pk or not self.instance.headers_encrypted:
            return []
        try:
            return sorted(headers_of(self.instance))
        except Exception:
            return ["(unreadable: enter them again)"]

    def save(self, commit: bool = True) -> Action:
        action: Action = super().save(commit=False)
        action.tenant = self.tenant
        action.kind = self.kind
        action.parameters = self.cleaned_data["parameters"]
        if self.cleaned_data.get("headers") is not None:
            store_headers(action, self.cleaned_data["headers"])
        if commit:
            action.save()
            self.save_m2m()
        return action


FIELD_TYPE_CHOICES = FIELD_TYPES
