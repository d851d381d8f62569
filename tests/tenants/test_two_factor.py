"""TOTP two-factor for members, through allauth.mfa on Parley's pages."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    SECRET_SESSION_KEY,
    format_hotp_value,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core.cache import cache
from django.test import Client

from chatbot.tenants.models import User
from tests.fixtures.personas import PASSWORD


@pytest.fixture(autouse=True)
def forget_used_codes() -> None:
    """allauth keeps its log-in rate limits (per address: every test logs in from 127.0.0.1)
    and the used TOTP codes (per user id, which repeats from test to test) in the cache: what
    earlier tests left there must not refuse this test's log-in."""
    cache.clear()


def current_code(secret: str) -> str:
    counters = list(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counters[len(counters) // 2]))


@pytest.mark.django_db
def test_a_member_turns_on_totp_and_then_needs_a_code_to_log_in(alice: User) -> None:
    client = Client()
    client.post("/accounts/login/", {"login": "alice@acme.test", "password": PASSWORD})
    # Changing two-factor asks for the password again first.
    asked = client.get("/accounts/2fa/totp/activate/")
    assert asked["Location"].startswith("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    assert "/static/css/parley.css" in page.content.decode()
    secret = client.session[SECRET_SESSION_KEY]
    activated = client.post("/accounts/2fa/totp/activate/", {"code": current_code(secret)})
    assert activated.status_code == 302
    assert Authenticator.objects.filter(user=alice, type=Authenticator.Type.TOTP).exists()

    fresh = Client()
    step = fresh.post("/accounts/login/", {"login": "alice@acme.test", "password": PASSWORD})
    assert step["Location"] == "/accounts/2fa/authenticate/"
    assert fresh.get("/dashboard/").status_code == 302  # not logged in yet
    wrong = fresh.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    done = fresh.post("/accounts/2fa/authenticate/", {"code": current_code(secret)}, follow=True)
    assert done.redirect_chain[-1][0] == "/dashboard/"
