"""Sign-up, email verification, log-in, throttling, password reset and change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.management import call_command
from django.test import Client

from chatbot.tenants.models import AuditEvent, Membership, Role, Tenant, User
from tests.fixtures.personas import PASSWORD
from tests.tenants.helpers import last_link, path_of

ROOT = Path(__file__).resolve().parents[2]
NEW_PASSWORD = "a much longer new secret 42"


def sign_up(client: Client, email: str, workspace: str = "Delta Shoes") -> object:
    return client.post(
        "/accounts/signup/",
        {"workspace": workspace, "email": email, "password1": "delta sells shoes 9"},
    )


@pytest.mark.django_db
class TestSignUp:
    def test_it_creates_the_workspace_and_makes_the_user_its_owner(self) -> None:
        response = sign_up(Client(), "dana@delta.test")
        assert response.status_code == 302
        user = User.objects.get(email="dana@delta.test")
        membership = Membership.objects.get(user=user)
        assert membership.role == Role.OWNER
        assert membership.tenant.name == "Delta Shoes"
        assert membership.tenant.slug == "delta-shoes"
        assert AuditEvent.objects.filter(tenant=membership.tenant, action="tenant.created").exists()

    def test_it_requires_a_workspace_name(self) -> None:
        response = sign_up(Client(), "dana@delta.test", workspace="  ")
        assert response.status_code == 200
        assert "This field is required" in response.content.decode()
        assert not User.objects.filter(email="dana@delta.test").exists()

    def test_two_workspaces_with_the_same_name_get_different_slugs(self) -> None:
        sign_up(Client(), "one@delta.test")
        sign_up(Client(), "two@delta.test")
        slugs = sorted(Tenant.objects.values_list("slug", flat=True))
        assert len(slugs) == 2 and slugs[0] != slugs[1]

    def test_the_email_must_be_verified_before_the_dashboard(self) -> None:
        client = Client()
        response = sign_up(client, "dana@delta.test")
        assert response["Location"] == "/accounts/confirm-email/"
        assert len(mail.outbox) == 1
        assert "confirm-email" in mail.outbox[0].body
        login = Client().post(
            "/accounts/login/", {"login": "dana@delta.test", "password": "delta sells shoes 9"}
        )
        assert login["Location"] == "/accounts/confirm-email/"

    def test_the_verification_link_logs_in_and_lands_on_the_empty_dashboard(self) -> None:
        client = Client()
        sign_up(client, "dana@delta.test")
        link = path_of(last_link("dana@delta.test", "confirm-email"))
        assert client.get(link).status_code == 200
        response = client.post(link, follow=True)
        assert response.redirect_chain[-1][0] == "/dashboard/"
        page = response.content.decode()
        assert "Delta Shoes" in page
        assert "Create your first bot" in page
        assert EmailAddress.objects.get(email="dana@delta.test").verified

    def test_the_sign_up_page_looks_like_parley(self) -> None:
        page = Client().get("/accounts/signup/").content.decode()
        assert "/static/css/parley.css" in page
        assert 'name="workspace"' in page
        assert page.index('name="workspace"') < page.index('name="email"')


@pytest.mark.django_db
class TestLogIn:
    def test_a_member_lands_on_the_dashboard(self, alice: User) -> None:
        client = Client()
        response = client.post(
            "/accounts/login/", {"login": "alice@acme.test", "password": PASSWORD}, follow=True
        )
        assert response.redirect_chain[-1][0] == "/dashboard/"
        assert "Acme" in response.content.decode()

    def test_the_demo_log_in_lands_on_the_dashboard(self) -> None:
        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        client = Client()
        response = client.post(
            "/accounts/login/",
            {"login": "demo@parley.localhost", "password": "parley-demo"},
            follow=True,
        )
        assert response.redirect_chain[-1][0] == "/dashboard/"
        assert response.status_code == 200
        assert "Demo Company" in response.content.decode()

    def test_repeated_failures_are_throttled(self, alice: User) -> None:
        client = Client()
        statuses = [
            client.post("/accounts/login/", {"login": "alice@acme.test", "password": "wrong"})
            for _ in range(6)
        ]
        assert all(r.status_code == 200 for r in statuses[:5])
        last = statuses[-1].content.decode()
        assert statuses[-1].status_code in (200, 429)
        assert "Too many failed login attempts" in last
        # Even the right password is refused while the limit holds.
        right = client.post("/accounts/login/", {"login": "alice@acme.test", "password": PASSWORD})
        assert "_auth_user_id" not in client.session
        assert right.status_code in (200, 429)

    def test_log_out_ends_the_session(self, alice: User) -> None:
        client = Client()
        client.post("/accounts/login/", {"login": "alice@acme.test", "password": PASSWORD})
        assert client.get("/dashboard/").status_code == 200
        client.post("/accounts/logout/")
        response = client.get("/dashboard/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
class TestPasswords:
    def test_reset_by_email(self, alice: User) -> None:
        client = Client()
        client.post("/accounts/password/reset/", {"email": "alice@acme.test"})
        link = path_of(last_link("alice@acme.test", "/password/reset/key/"))
        response = client.get(link, follow=True)
        form_url = response.redirect_chain[-1][0] if response.redirect_chain else link
        done = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
        assert done.status_code == 302
        assert Client().login(email="alice@acme.test", password=NEW_PASSWORD)

    def test_change_while_logged_in(self, alice: User) -> None:
        client = Client()
        client.post("/accounts/login/", {"login": "alice@acme.test", "password": PASSWORD})
        response = client.post(
            "/accounts/password/change/",
            {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
        assert response.status_code == 302
        alice.refresh_from_db()
        assert alice.check_password(NEW_PASSWORD)


def test_session_cookies_are_secure_in_production() -> None:
    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, s.SESSION_COOKIE_SECURE,"
        " s.CSRF_COOKIE_SECURE)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SITE_URL="https://parley.example", SECRET_KEY="x" * 50, PARLEY_TESTING="0")
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1].split() == ["True", "Lax", "True", "True"], (
        result.stderr
    )


@pytest.mark.django_db
def test_the_session_cookie_is_httponly_and_samesite(alice: User) -> None:
    client = Client()
    client.post("/accounts/login/", {"login": "alice@acme.test", "password": PASSWORD})
    cookie = client.cookies["sessionid"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
