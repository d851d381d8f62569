from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .models import BotRoute, ModelEndpoint, Source
from .routing import health_for

if TYPE_CHECKING:
    EndpointFormBase = forms.ModelForm[ModelEndpoint]
    EndpointAdminBase = admin.ModelAdmin[ModelEndpoint]
    RouteAdminBase = admin.ModelAdmin[BotRoute]
else:  # the generic forms exist only for the type checker
    EndpointFormBase = forms.ModelForm
    EndpointAdminBase = RouteAdminBase = admin.ModelAdmin


class ModelEndpointForm(EndpointFormBase):
    # The stored secret is never shown; typing a new one replaces it, leaving it empty keeps it.
    new_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="API key / AWS secret key",
        help_text="Stored encrypted. Leave empty to keep the current one.",
    )
    clear_secret = forms.BooleanField(required=False, label="Remove the stored secret")

    class Meta:
        model = ModelEndpoint
        fields = (
            "tenant", "name", "kind", "base_url", "model", "auth", "auth_header",
            "aws_access_key_id", "region", "connect_timeout", "first_token_timeout",
            "idle_timeout", "queue_timeout", "max_concurrency", "context_window",
            "chars_per_token", "images", "embeddings", "embedding_model", "breaker_failures",
            "breaker_cooldown", "enabled", "position",
        )  # fmt: skip

    def save(self, commit: bool = True) -> ModelEndpoint:
        endpoint = super().save(commit=False)
        if self.cleaned_data.get("clear_secret"):
            endpoint.set_secret("")
        elif self.cleaned_data.get("new_secret"):
            endpoint.set_secret(self.cleaned_data["new_secret"])
        if commit:
            endpoint.save()
        return endpoint


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(EndpointAdminBase):
    form = ModelEndpointForm
    list_display = ("name", "kind", "model", "base_url", "tenant", "source", "enabled", "status")
    list_filter = ("kind", "source", "enabled")
    search_fields = ("name", "model", "base_url", "tenant__name")
    ordering = ("tenant", "position", "id")

    @admin.display(description="Status (this process)")
    def status(self, endpoint: ModelEndpoint) -> str:
        problem = endpoint.secret_problem()
        if problem:
            return problem
        health = health_for(endpoint.spec())
        if health.breaker.is_open:
            return "skipped after failures"
        if health.last_error and (health.last_ok_at or 0) < (health.last_error_at or 0):
            return f"failing: {health.last_error.message[:80]}"
        return "ok" if health.last_ok_at else "not used yet"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Declared endpoints are re-synced from the environment at start: edits would not last.
        if obj is not None and obj.source == Source.CONFIG:
            return ("name", "kind", "base_url", "model", "auth", "source", "tenant")
        return ("source",) if obj is not None else ()


@admin.register(BotRoute)
class BotRouteAdmin(RouteAdminBase):
    list_display = ("bot", "position", "endpoint")
    list_select_related = ("bot", "endpoint")
    ordering = ("bot", "position")
