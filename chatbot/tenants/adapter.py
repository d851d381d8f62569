"""allauth hooks: where people land after sign-up, log-in and email confirmation, and
Parley's branded emails in place of allauth's plain ones."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from chatbot.core.emails import Email, send_branded

from .forms import PENDING_INVITATION_KEY
from .models import Membership


def _workspace_of(email: str) -> str:
    """The (first) workspace of the person an email goes to, to name it in the email."""
    membership = (
        Membership.objects.filter(user__email__iexact=email)
        .select_related("tenant")
        .order_by("created_at")
        .first()
    )
    return membership.tenant.name if membership is not None else ""


def branded_account_email(
    template_prefix: str, email: str, context: dict[str, Any]
) -> Email | None:
    """Parley's version of allauth's emails that people act on (None: allauth's own)."""
    name = template_prefix.rsplit("/", 1)[-1]
    tenant = _workspace_of(email)
    if name in ("email_confirmation_signup", "email_confirmation") and context.get("activate_url"):
        return Email(
            subject=_("Confirm your email address"),
            heading=_("Confirm your email address"),
            paragraphs=[
                _("Someone (we hope you) used %(email)s for a Parley account.") % {"email": email},
                _(
                    "Open the link below in the browser you signed up with to confirm it and "
                    "go straight to your dashboard."
                ),
            ],
            action_label=_("Confirm my email address"),
            action_url=str(context["activate_url"]),
            tenant_name=tenant,
            footer=[_("If you did not sign up, ignore this email: nothing happens without it.")],
        )
    if name == "password_reset_key" and context.get("password_reset_url"):
        return Email(
            subject=_("Reset your password"),
            heading=_("Reset your password"),
            paragraphs=[
                _("A new password was asked for the Parley account %(email)s.") % {"email": email}
            ],
            action_label=_("Choose a new password"),
            action_url=str(context["password_reset_url"]),
            tenant_name=tenant,
            footer=[_("If you did not ask for it, ignore this email: your password stays.")],
        )
    return None


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request: HttpRequest) -> str:
        # Someone who opened an invitation link before logging in goes back to it.
        token = request.session.get(PENDING_INVITATION_KEY)
        if token:
            return reverse("tenants:invitation", args=[token])
        return super().get_login_redirect_url(request)

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        message = branded_account_email(template_prefix, email, context)
        if message is None:
            super().send_mail(template_prefix, email, context)
        else:
            send_branded(
                replace(message, subject=self.format_email_subject(message.subject)), [email]
            )
