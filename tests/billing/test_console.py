"""The operator console: staff only, apart from tenant dashboards, every action audited."""

from __future__ import annotations

from typing import Any

import pytest

from chatbot.billing.models import Account, Plan
from chatbot.tenants.models import AuditEvent, Tenant, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def olga(db: None) -> User:
    return User.objects.create_user("olga@parley.test", "pw", is_staff=True, name="Olga")


def test_only_staff_see_the_console(acme: Tenant, alice: User, olga: User, client_for: Any) -> None:
    owner = client_for(alice)
    assert owner.get("/operator/").status_code == 404  # an owner is not staff
    refused = owner.post(f"/operator/tenants/{acme.pk}/", {"action": "suspend"})
    assert refused.status_code == 404
    assert not Account.objects.get(tenant=acme).suspended
    assert client_for(olga).get("/operator/").status_code == 200


def test_the_console_lists_tenants_with_plan_usage_endpoints_and_errors(
    acme: Tenant, olga: User, client_for: Any
) -> None:
    body = client_for(olga).get("/operator/").content.decode()
    for heading in ("Workspaces", "Model endpoints", "Last reply errors", "Operator actions"):
        assert heading in body
    assert "Acme" in body


def test_suspend_resume_and_plan_changes_are_audited(
    acme: Tenant, olga: User, client_for: Any
) -> None:
    plan = Plan.objects.create(name="Pro", monthly_messages=1000)
    client = client_for(olga)
    url = f"/operator/tenants/{acme.pk}/"
    assert client.post(url, {"action": "suspend", "reason": "unpaid"}).status_code == 302
    account = Account.objects.get(tenant=acme)
    assert account.suspended and account.suspended_reason == "unpaid"
    client.post(url, {"action": "resume"})
    client.post(url, {"action": "plan", "plan": plan.pk})
    assert Account.objects.get(tenant=acme).plan == plan
    events = list(
        AuditEvent.objects.filter(tenant=acme).order_by("pk").values_list("action", "actor_email")
    )
    assert events == [
        ("tenant.suspended", "olga@parley.test"),
        ("tenant.resumed", "olga@parley.test"),
        ("plan.changed", "olga@parley.test"),
    ]
    assert "tenant.suspended" in client.get("/operator/").content.decode()


def test_plan_limits_refuse_new_bots_members_and_knowledge(
    acme: Tenant, alice: User, client_for: Any
) -> None:
    from chatbot.billing import actions as billing
    from chatbot.bots.models import Bot
    from chatbot.knowledge import actions as knowledge

    billing.set_plan(
        acme, Plan.objects.create(name="Tiny", max_bots=1, max_seats=1, max_knowledge_mb=0), None
    )
    bot = Bot.objects.create(tenant=acme, name="One")
    with pytest.raises(billing.QuotaError, match="allows 1 bot"):
        billing.check_can_add_bot(acme)
    with pytest.raises(knowledge.KnowledgeError, match="knowledge base is full"):
        knowledge.add_text(bot, title="Hours", text="We open at 9.")
    response = client_for(alice).post(
        "/dashboard/team/", {"email": "dan@acme.test", "role": "agent"}
    )
    assert "allows 1 member" in response.content.decode()


def test_a_plan_limits_the_operator_endpoints_but_not_the_tenants_own(acme: Tenant) -> None:
    import json

    from django.test import override_settings

    from chatbot.billing import actions as billing
    from chatbot.bots.models import Bot
    from chatbot.llm import registry, service
    from chatbot.llm.models import Kind, ModelEndpoint, Source

    declared = [
        {"name": name, "kind": "openai", "url": f"https://{name}.example/v1", "model": "m"}
        for name in ("small", "big")
    ]
    ModelEndpoint.objects.create(
        tenant=acme,
        name="acme-own",
        kind=Kind.OPENAI,
        base_url="https://a.example/v1",
        model="m",
        source=Source.TENANT,
    )
    with override_settings(LLM_ENDPOINTS_JSON=json.dumps(declared), LLM_ENDPOINTS_FILE=""):
        registry.reset()  # read the declared endpoints again
        billing.set_plan(acme, Plan.objects.create(name="Small", allowed_endpoints=["small"]), None)
        names = [e.name for e in service.endpoints_for_tenant(Tenant.objects.get(pk=acme.pk))]
        assert names == ["small", "acme-own"]
        bot = Bot.objects.select_related("tenant__billing__plan").get(
            pk=Bot.objects.create(tenant=acme, name="B").pk
        )
        assert [e.name for e in service.bot_route(bot)] == ["small"]
    registry.reset()
