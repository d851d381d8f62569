"""Small helpers for the account-flow tests."""

from __future__ import annotations

import re

from django.core import mail


def last_link(to: str, contains: str = "http") -> str:
    """The last URL mailed to `to` that contains `contains`."""
    for message in reversed(mail.outbox):
        if to in message.to:
            for url in re.findall(r"https?://\S+", message.body):
                if contains in url:
                    return url
    raise AssertionError(f"no email to {to} with a link containing {contains!r}")


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]
