"""The audit log, and deleting a tenant with everything it owns."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.apps import apps
from django.db import models
from django.test import Client

from chatbot.bots.models import Bot
from chatbot.tenants import actions, audit
from chatbot.tenants.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Role,
    Tenant,
    User,
)
from chatbot.tenants.scoping import TenantScopedManager

ClientFor = Callable[[User], Client]


@pytest.mark.django_db
class TestAuditLog:
    def test_record_keeps_who_what_and_when(self, acme: Tenant, alice: User) -> None:
        event = audit.record(acme, alice, "bot.updated", target="Helper", fields=["greeting"])
        assert (event.tenant, event.actor, event.actor_email, event.action) == (
            acme,
            alice,
            "alice@acme.test",
            "bot.updated",
        )
        assert event.details == {"fields": ["greeting"]}
        assert event.created_at is not None

    def test_the_name_stays_after_the_account_is_gone(self, acme: Tenant, alice: User) -> None:
        event = audit.record(acme, alice, "key.created", target="CRM")
        alice.delete()
        event.refresh_from_db()
        assert event.actor is None and event.actor_email == "alice@acme.test"

    def test_owners_and_admins_read_it_and_agents_do_not(
        self, acme: Tenant, alice: User, charlie: User, client_for: ClientFor
    ) -> None:
        audit.record(acme, alice, "conversation.exported", target="#42")
        page = client_for(alice).get("/dashboard/audit/").content.decode()
        assert "conversation.exported" in page and "#42" in page
        assert client_for(charlie).get("/dashboard/audit/").status_code == 403

    def test_it_shows_only_the_workspaces_own_events(
        self, acme: Tenant, bravo: Tenant, alice: User, bob: User, client_for: ClientFor
    ) -> None:
        audit.record(acme, alice, "key.created", target="acme-secret-project")
        page = client_for(bob).get("/dashboard/audit/?q=acme").content.decode()
        assert "acme-secret-project" not in page

    def test_search_filters_by_action_person_or_target(
        self, acme: Tenant, alice: User, client_for: ClientFor
    ) -> None:
        audit.record(acme, alice, "key.created", target="CRM")
        audit.record(acme, alice, "member.invited", target="dave@acme.test")
        page = client_for(alice).get("/dashboard/audit/?q=dave").content.decode()
        assert "member.invited" in page and "key.created" not in page

    def test_the_audit_page_costs_a_fixed_number_of_queries(
        self,
        acme: Tenant,
        alice: User,
        client_for: ClientFor,
        django_assert_max_num_queries: Callable[..., object],
    ) -> None:
        client = client_for(alice)
        client.get("/dashboard/audit/")
        for n in range(30):
            audit.record(acme, alice, "key.created", target=f"key {n}")
        with django_assert_max_num_queries(12):  # type: ignore[operator]
            client.get("/dashboard/audit/")


@pytest.mark.django_db
class TestDeletingATenant:
    def test_the_owner_deletes_everything_it_owns(
        self,
        acme: Tenant,
        bravo: Tenant,
        alice: User,
        bob: User,
        charlie: User,
        client_for: ClientFor,
    ) -> None:
        owner = Membership.objects.get(tenant=acme, user=alice)
        Bot.objects.create(tenant=acme, name="Acme helper")
        Bot.objects.create(tenant=bravo, name="Bravo helper")
        actions.create_api_key(owner, "CRM", "read")
        actions.invite_member(owner, "dave@acme.test", Role.AGENT)
        client = client_for(alice)
        refused = client.post("/dashboard/settings/delete/", {"confirmation": "acme"})
        assert refused.status_code == 400
        assert "Type the workspace name exactly (Acme)" in refused.content.decode()
        assert Tenant.objects.filter(pk=acme.pk).exists()

        response = client.post("/dashboard/settings/delete/", {"confirmation": "Acme"}, follow=True)
        assert "You are not in a workspace yet" in response.content.decode()
        assert not Tenant.objects.filter(pk=acme.pk).exists()
        for model in (Bot, Membership, ApiKey, Invitation):
            assert not model.objects.filter(tenant_id=acme.pk).exists(), model
        assert not AuditEvent.objects.filter(tenant_id=acme.pk).exists()
        # People keep their accounts; Bravo is untouched.
        assert User.objects.filter(pk__in=[alice.pk, charlie.pk]).count() == 2
        assert Bot.objects.filter(tenant=bravo).count() == 1
        assert Membership.objects.filter(tenant=bravo, user=bob).exists()
        # One line outlives the tenant, for the operators.
        record = AuditEvent.objects.get(action="tenant.deleted")
        assert (record.tenant, record.actor, record.target) == (None, alice, "Acme")

    def test_only_an_owner_may_delete(
        self, acme: Tenant, charlie: User, client_for: ClientFor
    ) -> None:
        assert (
            client_for(charlie)
            .post("/dashboard/settings/delete/", {"confirmation": "Acme"})
            .status_code
            == 403
        )
        assert Tenant.objects.filter(pk=acme.pk).exists()


def tenant_owned_models() -> list[tuple[type[models.Model], models.ForeignKey[Tenant, Tenant]]]:
    found = []
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, models.ForeignKey) and field.related_model is Tenant:
                found.append((model, field))
    return found


def test_every_tenant_owned_model_cascades_from_its_tenant() -> None:
    wrong = [
        f"{model.__name__}.{field.name}"
        for model, field in tenant_owned_models()
        if field.remote_field.on_delete is not models.CASCADE
    ]
    assert not wrong, f"Deleting a tenant must delete these rows too (on_delete=CASCADE): {wrong}"


def test_every_tenant_owned_model_is_read_through_the_scoped_manager() -> None:
    wrong = [
        model.__name__
        for model, _field in tenant_owned_models()
        if not isinstance(model._default_manager, TenantScopedManager)
    ]
    assert not wrong, f"Use TenantScopedManager as `objects` on: {wrong}"
