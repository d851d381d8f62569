"""No secret or capability token reaches a log line, whichever flow carried it.

Every flow that puts a token in a URL or a header runs once through the real middleware stack
while every log record is formatted as the console prints it; then none of the secrets may be
found in any line, and the lines that name those paths show them redacted.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from chatbot.bots.models import Bot
from chatbot.conversations.models import Attachment
from chatbot.core.logging import LineFormatter, RequestIdFilter, redact
from chatbot.tenants import actions as tenant_actions
from chatbot.tenants.models import Membership, Role, Tenant, User
from tests.tenants.helpers import last_link, path_of
from tests.widget.conftest import SHOP
from tests.widget.test_http import SITE, identity_token, post_session, small_png

METRICS_TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def acme_bot(acme: Tenant) -> Bot:
    return Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=[SHOP])


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every record from every logger, formatted as the console handler formats it."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(LineFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet = {name: logging.getLogger(name).level for name in ("parley.request", "django.request")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def _upload(bot: Bot, token: str) -> Any:
    image = io.BytesIO(small_png())
    image.name = "photo.png"
    return Client().post(
        "/widget/api/attachments",
        {"file": image},
        headers={"Authorization": f"Bearer {token}", "Origin": SITE},
    )


@pytest.mark.django_db
def test_no_token_or_secret_reaches_a_log_line(
    log_lines: io.StringIO,
    acme: Tenant,
    alice: User,
    acme_bot: Bot,
    client_for: Callable[[User], Client],
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    tmp_path: Any,
) -> None:
    from widget import views as widget_views

    settings.MEDIA_ROOT = str(tmp_path)
    settings.METRICS_TOKEN = METRICS_TOKEN
    monkeypatch.setattr(widget_views, "route_accepts_images", lambda bot: True)
    secrets: dict[str, str] = {"metrics token": METRICS_TOKEN}

    # Sign-up: the email-confirmation key, opened (GET) and confirmed (POST).
    Client().post(
        "/accounts/signup/",
        {"workspace": "Delta", "email": "dana@delta.test", "password1": "delta sells shoes 9"},
    )
    confirm = path_of(last_link("dana@delta.test", "confirm-email"))
    secrets["confirmation key"] = confirm.rstrip("/").rsplit("/", 1)[1]
    visitor_client = Client()
    assert visitor_client.get(confirm).status_code == 200
    assert visitor_client.post(confirm).status_code == 302
    assert Client().get(confirm[:-2] + "x/").status_code in (200, 404)  # a wrong key

    # Password reset: the key in the emailed link, then the form it redirects to.
    reset_client = Client()
    reset_client.post("/accounts/password/reset/", {"email": "alice@acme.test"})
    reset = path_of(last_link("alice@acme.test", "/password/reset/key/"))
    secrets["reset key"] = reset.rstrip("/").rsplit("/", 1)[1].split("-", 1)[1]
    followed = reset_client.get(reset, follow=True)
    form_url = followed.redirect_chain[-1][0] if followed.redirect_chain else reset
    password = "a much longer new secret 42"
    reset_client.post(form_url, {"password1": password, "password2": password})
    alice.refresh_from_db()  # her other sessions end with the new password

    # Invitations: opened, then revoked and opened again (Django warns "Not Found: <path>").
    with django_capture_on_commit_callbacks(execute=True):
        client_for(alice).post("/dashboard/team/", {"email": "erin@acme.test", "role": Role.AGENT})
    invitation = path_of(last_link("erin@acme.test", "/tenants/invitations/"))
    secrets["invitation token"] = invitation.rstrip("/").rsplit("/", 1)[1]
    assert Client().get(invitation).status_code == 200
    owner = Membership.objects.get(tenant=acme, user=alice)
    tenant_actions.revoke_invitation(owner, owner.tenant.invitations.get())
    assert Client().get(invitation).status_code == 404

    # The widget: an identity token signed with the bot's secret, the visitor token it gives,
    # an upload and its signed URL (and one tampered with).
    secrets["identity secret"] = acme_bot.identity_secret
    identity = identity_token(acme_bot)
    secrets["identity token"] = identity
    session = post_session(
        Client(), {"bot": acme_bot.public_key, "origin": SHOP, "identity": identity}
    )
    assert session.status_code == 200, session.content
    secrets["resume secret"] = session.json()["resume"]
    visitor_token = session.json()["token"]
    secrets["visitor token"] = visitor_token
    uploaded = _upload(acme_bot, visitor_token)
    assert uploaded.status_code == 201, uploaded.content
    url = uploaded.json()["url"]
    secrets["signed attachment name"] = url.rstrip("/").rsplit("/", 1)[1]
    assert Client().get(url).status_code == 200
    assert Client().get(url + "x").status_code == 404
    assert Attachment.objects.count() == 1

    # Rotating the identity secret (the new one is shown on the page only).
    client_for(alice).post(f"/bots/{acme_bot.pk}/rotate-secret")
    acme_bot.refresh_from_db()
    secrets["rotated identity secret"] = acme_bot.identity_secret

    # API keys: a good one, a revoked one and a malformed bearer; the metrics token.
    _key, api_secret = tenant_actions.create_api_key(owner, "CRM", "read")
    secrets["api key"] = api_secret.split("_", 2)[2]
    assert (
        Client(headers={"authorization": f"Bearer {api_secret}"}).get("/api/v1/me").status_code
        == 200
    )
    assert (
        Client(headers={"authorization": f"Bearer {api_secret}x"}).get("/api/v1/me").status_code
        == 401
    )
    assert (
        Client(headers={"authorization": f"Bearer {METRICS_TOKEN}"}).get("/metrics").status_code
        == 200
    )
    assert (
        Client(headers={"authorization": f"Bearer {METRICS_TOKEN}x"}).get("/metrics").status_code
        == 404
    )

    text = log_lines.getvalue()
    assert len(mail.outbox) >= 3
    leaked = {name for name, secret in secrets.items() if secret and secret in text}
    assert leaked == set(), f"in the log: {sorted(leaked)}"
    # The flows were logged, with their paths redacted (the test saw the lines it judges).
    assert "path=/tenants/invitations/[redacted]/" in text
    assert "path=/accounts/confirm-email/[redacted]/" in text
    assert "path=/accounts/password/reset/key/[redacted]/" in text
    assert "path=/widget/attachments/[redacted]" in text
    assert "Not Found: /tenants/invitations/[redacted]/" in text


def test_redaction_keeps_what_names_things_and_drops_what_grants_access() -> None:
    line = json.dumps(
        {
            "path": "/tenants/invitations/abcDEF_123-x/",
            "key": "prl_0123abcd_S3cr3t-value_more",
            "auth": "Authorization: Bearer eyJhbGciOi.x.y",
            "conversation": "/conversations/c_123/",
        }
    )
    out = redact(line)
    assert "abcDEF_123-x" not in out and "/tenants/invitations/[redacted]/" in out
    assert "S3cr3t" not in out and "prl_0123abcd_[redacted]" in out
    assert "eyJhbGciOi" not in out and "Bearer [redacted]" in out
    assert "/conversations/c_123/" in out


def test_celery_logs_through_django_logging_with_redaction() -> None:
    """A worker's log set-up (what `celery worker --loglevel ERROR` and an in-process test
    worker run) keeps Django's handler, its redacting format and LOG_LEVEL, instead of
    replacing the root logger's handlers and silencing warnings."""
    from django.conf import settings

    from chatbot.celery import app

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        app.log.already_setup = False
        app.log.setup(loglevel="ERROR")
        assert logging.getLevelName(root.level) == settings.LOG_LEVEL
        assert [type(h.formatter) for h in root.handlers] == [LineFormatter]
        record = logging.LogRecord(
            "chatbot.knowledge",
            logging.WARNING,
            __file__,
            1,
            "invited at /tenants/invitations/abcDEF_123-x/",
            None,
            None,
        )
        assert logging.getLogger("chatbot.knowledge").isEnabledFor(logging.WARNING)
        assert "abcDEF_123-x" not in root.handlers[0].format(record)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
