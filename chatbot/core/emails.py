"""Parley's emails: one branded layout (HTML and plain text) for every message we send, and
a console backend that prints them decoded.

`send_branded` is what the domains call (invitations, handoff alerts) and what allauth's
adapter uses for verification and password reset. Each email names the workspace it is
about, so a person in two workspaces knows which one wrote.
"""

from __future__ import annotations

import email.message
import email.policy
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend
from django.template.loader import render_to_string


@dataclass(frozen=True)
class Email:
    subject: str
    heading: str
    paragraphs: Sequence[str]
    action_label: str = ""
    action_url: str = ""
    tenant_name: str = ""
    footer: Sequence[str] = field(default_factory=tuple)


def render(message: Email) -> tuple[str, str, str]:
    """(subject, text, html) for a message (the templates are in templates/emails/)."""
    context = {"m": message, "site_url": settings.SITE_URL}
    subject = message.subject
    if message.tenant_name and message.tenant_name not in message.subject:
        subject += f" · {message.tenant_name}"
    text = render_to_string("emails/branded.txt", context)
    html = render_to_string("emails/branded.html", context)
    return subject, text, html


def build(message: Email, to: Sequence[str]) -> EmailMultiAlternatives:
    subject, text, html = render(message)
    mail = EmailMultiAlternatives(subject, text, None, list(to))
    mail.attach_alternative(html, "text/html")
    return mail


def send_branded(message: Email, to: Sequence[str]) -> None:
    build(message, to).send()


class ConsoleBackend(DjangoConsoleBackend):
    """Prints each email readably: the headers, then the plain-text part decoded (links
    whole, not quoted-printable with `=` line breaks), and the size of the HTML part."""

    def write_message(self, message: object) -> None:
        raw = message.message()  # type: ignore[attr-defined]
        parsed = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
        lines = [f"{name}: {parsed[name]}" for name in ("From", "To", "Subject") if parsed[name]]
        text = parsed.get_body(preferencelist=("plain",))
        html = parsed.get_body(preferencelist=("html",))
        lines.append("")
        lines.append(text.get_content().rstrip() if text is not None else "(no text part)")
        if html is not None:
            lines.append("")
            lines.append(f"[HTML part: {len(html.get_content())} characters]")
        self.stream.write("\n".join(lines) + "\n")
        self.stream.write("-" * 79 + "\n")
