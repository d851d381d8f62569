"""Parley's emails: branded HTML + text with the workspace's name, printed decoded."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from chatbot.core.emails import ConsoleBackend, Email, build
from chatbot.tenants.models import Membership, Role, Tenant, User

pytestmark = pytest.mark.django_db


def html_of(message: Any) -> str:
    [(html, kind)] = message.alternatives
    assert kind == "text/html"
    return str(html)


def test_the_signup_verification_email_is_branded_with_the_workspace(client: Client) -> None:
    mail.outbox.clear()
    response = client.post(
        "/accounts/signup/",
        {"workspace": "Echo Bikes", "email": "erin@echo.test", "password1": "erin rides 42 bikes"},
    )
    assert response.status_code == 302
    [message] = mail.outbox
    assert message.subject == "[Parley] Confirm your email address · Echo Bikes"
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", message.body)
    assert link is not None
    assert "Echo Bikes on Parley" in message.body and "Hello from" not in message.body
    html = html_of(message)
    assert "Echo Bikes" in html and f'href="{link.group(0)}"' in html
    assert "Confirm my email address" in html


def test_the_password_reset_email_is_branded(client: Client, alice: User) -> None:
    mail.outbox.clear()
    client.post("/accounts/password/reset/", {"email": "alice@acme.test"})
    [message] = mail.outbox
    assert message.subject == "[Parley] Reset your password · Acme"
    assert "/accounts/password/reset/key/" in message.body
    assert "Choose a new password" in html_of(message)


def test_invitations_have_an_html_part_naming_the_workspace(
    acme: Tenant, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    from chatbot.tenants import actions

    mail.outbox.clear()
    owner = Membership.objects.get(user=alice, tenant=acme)
    with django_capture_on_commit_callbacks(execute=True):
        actions.invite_member(owner, "dave@acme.test", Role.AGENT)
    [message] = mail.outbox
    assert message.subject == "Alice invited you to Acme on Parley"
    html = html_of(message)
    assert "Join Acme on Parley" in html and "Accept the invitation" in html
    assert "/tenants/invitations/" in message.body


def test_text_from_people_is_escaped_in_the_html_part() -> None:
    message = build(
        Email(
            subject="x",
            heading="<b>Hi</b>",
            paragraphs=["<script>alert(1)</script>"],
            tenant_name="A & B",
        ),
        ["x@example.test"],
    )
    html = html_of(message)
    assert "<script>" not in html and "&lt;script&gt;" in html and "A &amp; B" in html


def test_the_console_backend_prints_links_whole() -> None:
    link = "http://127.0.0.1:19400/accounts/confirm-email/" + "MQ:1vR" * 20 + "/"
    message = build(
        Email(
            subject="Confirm",
            heading="Confirm",
            paragraphs=["é" * 10],
            action_url=link,
            action_label="Confirm",
        ),
        ["erin@echo.test"],
    )
    stream = io.StringIO()
    ConsoleBackend(stream=stream).send_messages([message])
    printed = stream.getvalue()
    assert link in printed.splitlines()
    assert "Subject: Confirm" in printed and "é" * 10 in printed
    assert "=\n" not in printed and "[HTML part:" in printed


def test_allauths_other_emails_greet_from_parley_not_the_host(client: Client, alice: User) -> None:
    mail.outbox.clear()
    # Signing up with a taken address: allauth's "account already exists" notice.
    client.post(
        "/accounts/signup/",
        {"workspace": "Again", "email": "alice@acme.test", "password1": "another pass 42 x"},
    )
    [message] = mail.outbox
    assert "Hello from Parley!" in message.body and "127.0.0.1" not in message.body.split("\n")[0]
