"""Members and roles: invitations by emailed link, accepting, roles, removal, switching."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from chatbot.tenants import actions
from chatbot.tenants.middleware import SESSION_KEY
from chatbot.tenants.models import AuditEvent, Invitation, Membership, Role, Tenant, User
from tests.fixtures.personas import make_member
from tests.tenants.helpers import last_link, path_of

ClientFor = Callable[[User], Client]


def owner_of(tenant: Tenant, user: User) -> Membership:
    return Membership.objects.get(tenant=tenant, user=user)


@pytest.mark.django_db
class TestInviteToAccept:
    def test_sign_up_verify_log_in_invite_accept(
        self,
        acme: Tenant,
        alice: User,
        client_for: ClientFor,
        django_capture_on_commit_callbacks: Callable[..., Any],
    ) -> None:
        # Alice invites Dave, who has no account yet (the email leaves after the commit).
        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(alice).post(
                "/dashboard/team/", {"email": "Dave@Acme.test", "role": Role.AGENT}
            )
        assert response.status_code == 302
        invitation = Invitation.objects.get(tenant=acme)
        assert invitation.email == "dave@acme.test"
        assert mail.outbox[-1].subject == "Alice invited you to Acme on Parley"
        link = path_of(last_link("dave@acme.test", "/tenants/invitations/"))

        # Dave opens the link logged out, signs up without a workspace of his own.
        dave = Client()
        page = dave.get(link)
        assert page.status_code == 200
        assert page["Referrer-Policy"] == "no-referrer"
        assert "Join Acme on Parley" in page.content.decode()
        signup = dave.post(
            f"/accounts/signup/?next={link}",
            {"workspace": "", "email": "dave@acme.test", "password1": "dave joins acme 7"},
        )
        assert signup.status_code == 302, signup.content.decode()
        confirm = path_of(last_link("dave@acme.test", "confirm-email"))
        landed = dave.post(confirm, follow=True)
        # Verified and logged in: back on the invitation, not in a workspace of his own.
        assert landed.redirect_chain[-1][0] == link
        assert not Membership.objects.filter(user__email="dave@acme.test").exists()

        accepted = dave.post(link, follow=True)
        assert accepted.redirect_chain[-1][0] == "/dashboard/"
        membership = Membership.objects.get(user__email="dave@acme.test")
        assert (membership.tenant, membership.role) == (acme, Role.AGENT)
        assert "Welcome to Acme" in accepted.content.decode()
        actions_logged = set(
            AuditEvent.objects.filter(tenant=acme).values_list("action", flat=True)
        )
        assert {"member.invited", "member.joined"} <= actions_logged

    def test_an_existing_user_joins_a_second_workspace_and_switches(
        self, acme: Tenant, bravo: Tenant, alice: User, bob: User, client_for: ClientFor
    ) -> None:
        _inv, token = actions.invite_member(owner_of(acme, alice), "bob@bravo.test", Role.ADMIN)
        client = client_for(bob)
        client.post(f"/tenants/invitations/{token}/")
        assert set(Membership.objects.filter(user=bob).values_list("tenant__name", flat=True)) == {
            "Acme",
            "Bravo",
        }
        assert client.session[SESSION_KEY] == acme.pk
        page = client.get("/dashboard/").content.decode()
        assert "<h1>Acme</h1>" in page
        assert "Bravo (Owner)" in page  # the switcher offers the other workspace
        client.post("/tenants/switch/", {"tenant": bravo.pk})
        assert "<h1>Bravo</h1>" in client.get("/dashboard/").content.decode()

    def test_an_invitation_for_someone_else_is_refused(
        self, acme: Tenant, alice: User, bob: User, client_for: ClientFor
    ) -> None:
        _inv, token = actions.invite_member(owner_of(acme, alice), "dave@acme.test", Role.AGENT)
        response = client_for(bob).post(f"/tenants/invitations/{token}/")
        assert response.status_code == 400
        assert "This invitation is for dave@acme.test" in response.content.decode()
        assert not Membership.objects.filter(tenant=acme, user=bob).exists()

    def test_an_expired_invitation_is_refused(
        self, acme: Tenant, alice: User, bob: User, client_for: ClientFor
    ) -> None:
        invitation, token = actions.invite_member(
            owner_of(acme, alice), "bob@bravo.test", Role.AGENT
        )
        Invitation.objects.filter(pk=invitation.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        response = client_for(bob).post(f"/tenants/invitations/{token}/")
        assert response.status_code == 400
        assert "expired" in response.content.decode()
        assert not Membership.objects.filter(tenant=acme, user=bob).exists()

    def test_an_invitation_works_once(
        self, acme: Tenant, alice: User, bob: User, client_for: ClientFor
    ) -> None:
        _inv, token = actions.invite_member(owner_of(acme, alice), "bob@bravo.test", Role.AGENT)
        client = client_for(bob)
        client.post(f"/tenants/invitations/{token}/")
        Membership.objects.filter(tenant=acme, user=bob).delete()
        again = client.post(f"/tenants/invitations/{token}/")
        assert again.status_code == 400
        assert not Membership.objects.filter(tenant=acme, user=bob).exists()

    def test_an_unknown_token_is_404_and_only_the_hash_is_stored(
        self, acme: Tenant, alice: User
    ) -> None:
        invitation, token = actions.invite_member(
            owner_of(acme, alice), "dave@acme.test", Role.AGENT
        )
        assert token not in invitation.token_hash
        assert Client().get(f"/tenants/invitations/{token[:-2]}xx/").status_code == 404

    def test_a_revoked_invitation_stops_working(
        self, acme: Tenant, alice: User, bob: User, client_for: ClientFor
    ) -> None:
        invitation, token = actions.invite_member(
            owner_of(acme, alice), "bob@bravo.test", Role.AGENT
        )
        client_for(alice).post(f"/dashboard/team/invitations/{invitation.pk}/revoke/")
        assert client_for(bob).get(f"/tenants/invitations/{token}/").status_code == 404

    def test_inviting_a_member_again_says_so(
        self, alice: User, charlie: User, client_for: ClientFor
    ) -> None:
        response = client_for(alice).post(
            "/dashboard/team/", {"email": "charlie@acme.test", "role": Role.AGENT}
        )
        assert response.status_code == 400
        assert "charlie@acme.test is already a member of Acme" in response.content.decode()

    def test_an_admin_cannot_invite_an_owner(
        self, acme: Tenant, alice: User, client_for: ClientFor
    ) -> None:
        admin = make_member(acme, "adele@acme.test", Role.ADMIN)
        response = client_for(admin).post(
            "/dashboard/team/", {"email": "eve@acme.test", "role": Role.OWNER}
        )
        assert response.status_code == 400
        assert not Invitation.objects.filter(email="eve@acme.test").exists()


@pytest.mark.django_db
class TestRolesAndRemoval:
    def test_an_owner_changes_a_role_and_it_is_audited(
        self, acme: Tenant, alice: User, charlie: User, client_for: ClientFor
    ) -> None:
        target = owner_of(acme, charlie)
        client_for(alice).post(f"/dashboard/team/members/{target.pk}/role/", {"role": "admin"})
        target.refresh_from_db()
        assert target.role == Role.ADMIN
        event = AuditEvent.objects.get(tenant=acme, action="member.role_changed")
        assert (event.actor, event.target, event.details) == (
            alice,
            "charlie@acme.test",
            {"old": "agent", "new": "admin"},
        )

    def test_the_last_owner_cannot_step_down_or_leave(
        self, acme: Tenant, alice: User, client_for: ClientFor
    ) -> None:
        me = owner_of(acme, alice)
        client = client_for(alice)
        response = client.post(
            f"/dashboard/team/members/{me.pk}/role/", {"role": "agent"}, follow=True
        )
        assert "A workspace needs an owner" in response.content.decode()
        response = client.post(f"/dashboard/team/members/{me.pk}/remove/", follow=True)
        assert "You are the only owner" in response.content.decode()
        me.refresh_from_db()
        assert me.role == Role.OWNER

    def test_an_admin_cannot_demote_or_remove_an_owner(
        self, acme: Tenant, alice: User, client_for: ClientFor
    ) -> None:
        admin = make_member(acme, "adele@acme.test", Role.ADMIN)
        owner = owner_of(acme, alice)
        client = client_for(admin)
        client.post(f"/dashboard/team/members/{owner.pk}/role/", {"role": "agent"})
        client.post(f"/dashboard/team/members/{owner.pk}/remove/")
        owner.refresh_from_db()
        assert owner.role == Role.OWNER

    def test_a_removed_member_loses_access_at_once(
        self, acme: Tenant, alice: User, charlie: User, client_for: ClientFor
    ) -> None:
        agent = client_for(charlie)
        assert agent.get("/dashboard/").status_code == 200
        client_for(alice).post(f"/dashboard/team/members/{owner_of(acme, charlie).pk}/remove/")
        page = agent.get("/dashboard/").content.decode()
        assert "You are not in a workspace yet" in page
        assert AuditEvent.objects.filter(
            action="member.removed", target="charlie@acme.test"
        ).exists()

    def test_switching_to_a_foreign_workspace_is_404_and_changes_nothing(
        self, acme: Tenant, bravo: Tenant, bob: User, client_for: ClientFor
    ) -> None:
        client = client_for(bob)
        client.get("/dashboard/")
        assert client.post("/tenants/switch/", {"tenant": acme.pk}).status_code == 404
        assert client.post("/tenants/switch/", {"tenant": 2_000_000_000}).status_code == 404
        assert client.post("/tenants/switch/", {"tenant": "abc"}).status_code == 404
        assert "<h1>Bravo</h1>" in client.get("/dashboard/").content.decode()

    def test_a_stale_session_choice_falls_back_to_a_real_workspace(
        self, acme: Tenant, bob: User, client_for: ClientFor
    ) -> None:
        client = client_for(bob)
        session = client.session
        session[SESSION_KEY] = acme.pk  # forged or stale: bob is not in Acme
        session.save()
        assert "<h1>Bravo</h1>" in client.get("/dashboard/").content.decode()

    def test_a_user_creates_another_workspace(self, alice: User, client_for: ClientFor) -> None:
        client = client_for(alice)
        response = client.post("/tenants/new/", {"name": "Acme Labs"}, follow=True)
        assert "<h1>Acme Labs</h1>" in response.content.decode()
        assert Membership.objects.get(tenant__name="Acme Labs").role == Role.OWNER
