"""The inbox's sections of the workspace settings page: office hours, data retention.

Registered in ConversationsConfig.ready(); both edit the tenant's one InboxSettings row.
"""

from __future__ import annotations

from typing import Any

from django import forms

from chatbot.dashboard.settings_sections import SettingsSection, TenantSettingsForm
from chatbot.tenants.models import Tenant

from .models import InboxSettings

WEEKDAYS = [
    (1, "Monday"),
    (2, "Tuesday"),
    (3, "Wednesday"),
    (4, "Thursday"),
    (5, "Friday"),
    (6, "Saturday"),
    (7, "Sunday"),
]


class _InboxSettingsForm(TenantSettingsForm):
    def instance_for(self, tenant: Tenant) -> InboxSettings:
        return InboxSettings.objects.get_or_create(tenant=tenant)[0]


class OfficeHoursForm(_InboxSettingsForm):
    office_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Days",
    )

    class Meta:
        model = InboxSettings
        fields = (
            "office_hours_enabled",
            "office_days",
            "office_start",
            "office_end",
            "offline_message",
        )
        labels = {
            "office_hours_enabled": "Offer live chat only during office hours",
            "office_start": "From",
            "office_end": "Until",
            "offline_message": "Shown outside office hours",
        }
        widgets = {
            "office_start": forms.TimeInput(attrs={"type": "time"}),
            "office_end": forms.TimeInput(attrs={"type": "time"}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("office_hours_enabled"):
            if not data.get("office_days"):
                self.add_error("office_days", "Pick the days your team answers.")
            if data.get("office_start") is None or data.get("office_end") is None:
                self.add_error("office_end", "Give the hours (in the workspace's time zone).")
            elif data["office_start"] == data["office_end"]:
                self.add_error("office_end", "The hours must not start and end at the same time.")
        return data


class AgentNamesForm(_InboxSettingsForm):
    class Meta:
        model = InboxSettings
        fields = ("agent_names",)
        labels = {"agent_names": "When someone from the team answers, visitors see"}
        widgets = {"agent_names": forms.RadioSelect}


class RetentionForm(_InboxSettingsForm):
    class Meta:
        model = InboxSettings
        fields = ("retention_days",)
        labels = {"retention_days": "Keep conversations for"}


SECTIONS = [
    SettingsSection(
        "office_hours",
        "Office hours",
        OfficeHoursForm,
        "When visitors ask for a person outside these hours, they are asked for an email "
        "address instead of waiting. Times are in the workspace's time zone.",
        order=40,
    ),
    SettingsSection(
        "agent_names",
        "How visitors see your team",
        AgentNamesForm,
        "Names and avatars come from each member's profile. Some teams prefer to answer as "
        "the company.",
        order=42,
    ),
    SettingsSection(
        "retention",
        "Data retention",
        RetentionForm,
        "Conversations, messages and uploaded images older than this are deleted every hour.",
        order=45,
    ),
]
