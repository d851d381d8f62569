"""Account flows abused from outside: open redirects through `?next=`, and email floods
(sign-up, password reset, invitations) that would make Parley mail someone over and over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.core import mail
from django.test import Client

from chatbot.tenants.models import Invitation, Role, Tenant, User
from tests.fixtures.personas import PASSWORD

ClientFor = Callable[[User], Client]
SITE = "http://testserver"

HOSTILE_NEXT = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "https:evil.example",
    " //evil.example/",
    "\t//evil.example/",
    "http://127.0.0.1:8000@evil.example/",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example/",
]


def stays_home(location: str) -> bool:
    """A redirect that a browser, resolving it from the log-in page, keeps on this site."""
    # Browsers read "\\" as "/" in http(s) URLs and drop leading blanks and tabs.
    target = location.strip(" \t\n").replace("\\", "/")
    resolved = urlsplit(urljoin(f"{SITE}/accounts/login/", target))
    return (resolved.scheme, resolved.netloc) == urlsplit(SITE)[:2]


@pytest.mark.django_db
class TestNext:
    @pytest.mark.parametrize("hostile", HOSTILE_NEXT)
    def test_log_in_never_redirects_off_site(self, alice: User, hostile: str) -> None:
        response = Client().post(
            "/accounts/login/", {"login": "alice@acme.test", "password": PASSWORD, "next": hostile}
        )
        assert response.status_code == 302
        assert stays_home(response["Location"]), response["Location"]
        query = Client().post(
            f"/accounts/login/?next={hostile}", {"login": "alice@acme.test", "password": PASSWORD}
        )
        assert stays_home(query["Location"]), query["Location"]

    @pytest.mark.parametrize("hostile", HOSTILE_NEXT[:4])
    def test_log_out_and_sign_up_never_redirect_off_site(
        self, alice: User, client_for: ClientFor, hostile: str
    ) -> None:
        logout = client_for(alice).post("/accounts/logout/", {"next": hostile})
        assert stays_home(logout["Location"]), logout["Location"]
        signup = Client().post(
            f"/accounts/signup/?next={hostile}",
            {"workspace": "Delta", "email": "dana@delta.test", "password1": "delta sells 9 shoes"},
        )
        assert signup.status_code == 302 and stays_home(signup["Location"]), signup["Location"]

    def test_a_local_next_is_followed(self, alice: User) -> None:
        # The protection is not "ignore next": a path on this site is where the member lands.
        response = Client().post(
            "/accounts/login/?next=/conversations/",
            {"login": "alice@acme.test", "password": PASSWORD},
        )
        assert response["Location"] == "/conversations/"


def mails_to(address: str) -> int:
    return sum(address in message.to for message in mail.outbox)


@pytest.mark.django_db
class TestEmailFloods:
    def test_password_reset_mails_one_address_at_most_three_times_an_hour(
        self, alice: User
    ) -> None:
        for attempt in range(6):
            # From different clients: the limit belongs to the mailbox, not the sender.
            Client(REMOTE_ADDR=f"198.51.100.{attempt}").post(
                "/accounts/password/reset/", {"email": "alice@acme.test"}
            )
        assert mails_to("alice@acme.test") == 3

    def test_password_reset_from_one_client_is_limited_across_addresses(self) -> None:
        client = Client(REMOTE_ADDR="198.51.100.7")
        statuses = [
            client.post("/accounts/password/reset/", {"email": f"v{n}@victim.test"}).status_code
            for n in range(7)
        ]
        assert statuses[:5] == [302] * 5 and statuses[5:] == [429, 429]

    def test_sign_up_from_one_client_is_limited(self) -> None:
        client = Client(REMOTE_ADDR="198.51.100.8")
        statuses = []
        for n in range(7):
            client.cookies.clear()  # each sign-up logs its new account in; start afresh
            statuses.append(
                client.post(
                    "/accounts/signup/",
                    {
                        "workspace": f"W{n}",
                        "email": f"v{n}@victim.test",
                        "password1": "a b c 1 2 3 4",
                    },
                ).status_code
            )
        assert statuses[:5] == [302] * 5 and statuses[5:] == [429, 429]
        assert mails_to("v6@victim.test") == 0

    def test_invitations_are_limited_per_address_and_per_member(
        self,
        acme: Tenant,
        alice: User,
        client_for: ClientFor,
        django_capture_on_commit_callbacks: Callable[..., Any],
    ) -> None:
        client = client_for(alice)

        def invite(email: str) -> int:
            with django_capture_on_commit_callbacks(execute=True):
                return client.post(
                    "/dashboard/team/", {"email": email, "role": Role.AGENT}
                ).status_code

        # Re-inviting one address replaces the invitation but would mail it each time.
        assert [invite("victim@else.test") for _ in range(5)] == [302, 302, 302, 429, 429]
        assert mails_to("victim@else.test") == 3
        statuses = [invite(f"p{n}@else.test") for n in range(10)]
        assert statuses[:7] == [302] * 7 and statuses[7:] == [429] * 3  # 10 a minute
        refused = client.post("/dashboard/team/", {"email": "x@else.test", "role": Role.AGENT})
        assert "Too many invitations" in refused.content.decode()
        assert Invitation.objects.filter(tenant=acme).count() == 8
