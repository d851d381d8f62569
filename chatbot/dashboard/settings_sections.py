"""Sections of the workspace settings page, registered by the apps that own them.

The page shows one form per section; each posts on its own (`section=<key>`), is saved by
the section's form and recorded in the audit log as "settings.updated" with the changed
fields. An app adds a section in its AppConfig.ready():

    # chatbot/conversations/apps.py
    def ready(self) -> None:
        from chatbot.dashboard.settings_sections import SettingsSection, register

        register(SettingsSection("retention", "Data retention", RetentionForm, order=40))

The form class takes `(data, tenant=...)`. The simplest is a subclass of
`TenantSettingsForm`: a ModelForm on Tenant (for fields added to Tenant) or on the app's own
one-to-one model (override `instance_for`). Only the fields listed in `Meta.fields` can be
written, so a posted `tenant`, `id` or `created_at` is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.db import models

from chatbot.tenants.models import Tenant


class TenantSettingsForm(forms.ModelForm):
    """A settings section bound to the tenant (or to a row found from it)."""

    def __init__(self, data: Any = None, *, tenant: Tenant, **kwargs: Any) -> None:
        self.tenant = tenant
        super().__init__(data, instance=self.instance_for(tenant), **kwargs)

    def instance_for(self, tenant: Tenant) -> models.Model:
        """The row this section edits; the Tenant itself unless overridden."""
        return tenant

    def save_section(self) -> list[str]:
        """Save and return the names of the fields that changed."""
        changed = list(self.changed_data)
        if changed:
            self.save()
        return changed


class WorkspaceSettingsForm(TenantSettingsForm):
    class Meta:
        model = Tenant
        fields = ("name", "timezone")
        labels = {"name": "Workspace name", "timezone": "Time zone"}


@dataclass(frozen=True)
class SettingsSection:
    key: str
    title: str
    form_class: type[TenantSettingsForm]
    description: str = ""
    order: int = 50


SECTIONS: list[SettingsSection] = [
    SettingsSection(
        "workspace",
        "Workspace",
        WorkspaceSettingsForm,
        "The name your team sees, and the time zone for office hours and reports.",
        order=10,
    )
]


def register(section: SettingsSection) -> None:
    """Add a section (registering the same key again replaces it)."""
    SECTIONS[:] = [existing for existing in SECTIONS if existing.key != section.key]
    SECTIONS.append(section)


def sections() -> list[SettingsSection]:
    return sorted(SECTIONS, key=lambda section: (section.order, section.key))
