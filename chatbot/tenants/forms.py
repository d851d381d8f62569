"""Forms for sign-up (allauth's, plus the workspace name) and the team and key pages."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.core import context
from django import forms
from django.db import transaction
from django.http import HttpRequest

from .middleware import SESSION_KEY
from .models import ApiScope, Role, User

# Set on the session when someone opens an invitation link while logged out: their sign-up
# then joins that workspace instead of requiring a new one.
PENDING_INVITATION_KEY = "parley_pending_invitation"


class SignupForm(AllauthSignupForm):
    """allauth's sign-up form plus the workspace name; saving makes the user its owner."""

    workspace = forms.CharField(
        label="Workspace name",
        max_length=120,
        help_text="Usually your company's name. You can change it later.",
        widget=forms.TextInput(attrs={"placeholder": "Acme Inc.", "autocomplete": "organization"}),
    )
    field_order = ["workspace", "email", "password1"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = context.request
        if request is not None and request.session.get(PENDING_INVITATION_KEY):
            # Joining through an invitation: a workspace of one's own is optional.
            self.fields["workspace"].required = False
            self.fields[
                "workspace"
            ].help_text = "Optional: you are joining a workspace through an invitation."

    @transaction.atomic
    def save(self, request: HttpRequest) -> User:
        from .actions import create_tenant

        user: User = super().save(request)
        name = self.cleaned_data.get("workspace", "").strip()
        if name:
            tenant = create_tenant(name, user)
            request.session[SESSION_KEY] = tenant.pk
        return user


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(
        choices=Role.choices,
        initial=Role.AGENT,
        help_text="Agents handle conversations; admins also manage bots, keys, team and settings.",
    )

    def __init__(self, *args: Any, can_grant_owner: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        if not can_grant_owner and isinstance(role, forms.ChoiceField):
            role.choices = [c for c in Role.choices if c[0] != Role.OWNER]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=80, help_text="What will use this key, e.g. “CRM sync”.", label="Name"
    )
    scope = forms.ChoiceField(choices=ApiScope.choices, initial=ApiScope.READ, label="Scope")


class WorkspaceForm(forms.Form):
    name = forms.CharField(label="Workspace name", max_length=120)


class DeleteTenantForm(forms.Form):
    confirmation = forms.CharField(label="Type the workspace name to confirm", max_length=120)
