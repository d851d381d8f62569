"""The dashboard's model endpoints page (`llm:endpoints`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from chatbot.llm.models import ModelEndpoint, Source
from chatbot.tenants.models import AuditEvent, Tenant, User

OLLAMA = {"name": "local", "kind": "ollama", "url": "http://127.0.0.1:11434", "model": "llama3.2"}


def test_with_no_model_it_tells_the_operator_how_to_connect_one(
    db: None, alice: User, client_for: Callable[[User], Client]
) -> None:
    with override_settings(LLM_ENDPOINTS_JSON="", LLM_ENDPOINTS_FILE=""):
        response = client_for(alice).get(reverse("llm:endpoints"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "No model is reachable" in page
    assert "ollama pull llama3.2" in page and "llama-server -m" in page
    assert "LLM_ENDPOINTS" in page and "python manage.py llm check" in page


def test_it_lists_the_operator_endpoints_and_the_tenants_own(
    db: None, alice: User, acme: Tenant, bravo: Tenant, client_for: Callable[[User], Client]
) -> None:
    ModelEndpoint.objects.create(
        tenant=bravo,
        name="bravo-secret-llm",
        kind="openai",
        base_url="https://b.example/v1",
        model="m",
        source=Source.TENANT,
    )
    ModelEndpoint.objects.create(
        tenant=acme,
        name="acme-llm",
        kind="openai",
        base_url="https://a.example/v1",
        model="m",
        source=Source.TENANT,
    )
    with override_settings(LLM_ENDPOINTS_JSON=json.dumps([OLLAMA]), LLM_ENDPOINTS_FILE=""):
        page = client_for(alice).get(reverse("llm:endpoints")).content.decode()
    assert "local" in page and "llama3.2" in page and "acme-llm" in page
    assert "bravo-secret-llm" not in page
    assert "No model is reachable" not in page


def test_agents_cannot_manage_endpoints(
    db: None, charlie: User, client_for: Callable[[User], Client]
) -> None:
    assert client_for(charlie).get(reverse("llm:endpoints")).status_code == 403
    response = client_for(charlie).post(reverse("llm:endpoint_add"), {"name": "x"})
    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(db: None) -> None:
    response = Client().get(reverse("llm:endpoints"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_owner_adds_and_removes_an_endpoint(
    db: None,
    alice: User,
    acme: Tenant,
    client_for: Callable[[User], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("chatbot.lib.outbound.check_url", lambda url: None)
    client = client_for(alice)
    response = client.post(
        reverse("llm:endpoint_add"),
        {
            "name": "together",
            "kind": "openai",
            "base_url": "https://api.together.xyz/v1",
            "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "auth": "bearer",
            "api_key": "tgp_secret",
            "context_window": "131072",
            "images": "on",
        },
    )
    assert response.status_code == 302
    endpoint = ModelEndpoint.objects.get(tenant=acme, name="together")
    assert endpoint.images and endpoint.context_window == 131072 and endpoint.secret == "tgp_secret"
    page = client.get(reverse("llm:endpoints")).content.decode()
    assert "together" in page and "tgp_secret" not in page
    client.post(reverse("llm:endpoint_delete", args=[endpoint.pk]))
    assert not ModelEndpoint.objects.filter(pk=endpoint.pk).exists()
    events = list(
        AuditEvent.objects.filter(tenant=acme).order_by("id").values_list("action", "target")
    )
    assert events == [("model_endpoint.added", "together"), ("model_endpoint.removed", "together")]
    assert not AuditEvent.objects.filter(details__icontains="tgp_secret").exists()


def test_managers_find_models_in_the_navigation(
    db: None, alice: User, charlie: User, client_for: Callable[[User], Client]
) -> None:
    link = f'href="{reverse("llm:endpoints")}"'
    assert link in client_for(alice).get(reverse("dashboard:home")).content.decode()
    assert link not in client_for(charlie).get(reverse("dashboard:home")).content.decode()


def test_a_loopback_url_is_refused_with_a_message(
    db: None, alice: User, acme: Tenant, client_for: Callable[[User], Client]
) -> None:
    response = client_for(alice).post(
        reverse("llm:endpoint_add"),
        {
            "name": "inside",
            "kind": "ollama",
            "base_url": "http://127.0.0.1:11434",
            "model": "m",
            "auth": "none",
        },
        follow=True,
    )
    assert "This URL cannot be used" in response.content.decode()
    assert not ModelEndpoint.objects.filter(tenant=acme).exists()


def test_another_tenants_endpoint_cannot_be_deleted(
    db: None, bob: User, acme: Tenant, client_for: Callable[[User], Client]
) -> None:
    endpoint = ModelEndpoint.objects.create(
        tenant=acme,
        name="acme-llm",
        kind="openai",
        base_url="https://a.example/v1",
        model="m",
        source=Source.TENANT,
    )
    response = client_for(bob).post(reverse("llm:endpoint_delete", args=[endpoint.pk]))
    assert response.status_code == 404
    assert ModelEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_checking_an_own_endpoint_inside_the_platform_is_refused_by_the_guard(
    db: None, alice: User, acme: Tenant, client_for: Callable[[User], Client]
) -> None:
    endpoint = ModelEndpoint.objects.create(
        tenant=acme, name="sneaky", kind="openai", base_url="http://127.0.0.1:9/v1", model="m",
        source=Source.TENANT,
    )  # fmt: skip
    response = client_for(alice).post(
        reverse("llm:endpoint_check", args=[endpoint.pk]), follow=True
    )
    page = response.content.decode()
    assert "sneaky: refused to connect" in page and "loopback" in page


@pytest.mark.llama
def test_checking_an_own_endpoint_shows_its_timings(
    db: None, alice: User, acme: Tenant, client_for: Callable[[User], Client], llama_server: Any
) -> None:
    endpoint = ModelEndpoint(
        tenant=acme, name="tiny", kind="openai", base_url=llama_server.url + "/v1",
        model=llama_server.model, auth="bearer", source=Source.TENANT,
    )  # fmt: skip
    endpoint.set_secret(llama_server.key)
    endpoint.save()
    # The operator allows this range (the test server is on loopback).
    with override_settings(OUTBOUND_ALLOW_CIDRS=["127.0.0.0/8"]):
        response = client_for(alice).post(
            reverse("llm:endpoint_check", args=[endpoint.pk]), follow=True
        )
    page = response.content.decode()
    assert "tiny answered: first token" in page and "completion 7 tokens" in page
