"""allauth hooks: where people land after sign-up, log-in and email confirmation."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.urls import reverse

from .forms import PENDING_INVITATION_KEY


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request: HttpRequest) -> str:
        # Someone who opened an invitation link before logging in goes back to it.
        token = request.session.get(PENDING_INVITATION_KEY)
        if token:
            return reverse("tenants:invitation", args=[token])
        return super().get_login_redirect_url(request)
