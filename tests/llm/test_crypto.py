"""Secrets at rest: encrypted with a key derived from FIELD_ENCRYPTION_KEY (or SECRET_KEY)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from chatbot.bots.models import Bot
from chatbot.lib.crypto import UndecryptableSecret, decrypt_str, encrypt_str
from chatbot.llm import service
from chatbot.llm.models import ModelEndpoint, Source
from chatbot.tenants.models import Tenant, User


def test_round_trip_and_empty() -> None:
    token = encrypt_str("sk-live-123")
    assert token != "sk-live-123" and "sk-live-123" not in token
    assert decrypt_str(token) == "sk-live-123"
    assert encrypt_str("") == "" and decrypt_str("") == ""
    assert encrypt_str("same") != encrypt_str("same")  # random IVs: equal keys do not show


def test_a_changed_key_is_a_clear_error_not_garbage() -> None:
    with override_settings(FIELD_ENCRYPTION_KEY="first key " * 4):
        token = encrypt_str("sk-live-123")
    with (
        override_settings(FIELD_ENCRYPTION_KEY="second key " * 4),
        pytest.raises(UndecryptableSecret, match="enter the secret again"),
    ):
        decrypt_str(token)


def test_an_undecryptable_endpoint_is_skipped_and_shown(
    db: None, acme: Tenant, alice: User, client_for: Callable[[User], Client]
) -> None:
    with override_settings(FIELD_ENCRYPTION_KEY="old key " * 5):
        endpoint = ModelEndpoint(
            tenant=acme, name="mine", kind="openai", base_url="https://x.example/v1",
            model="m", auth="bearer", source=Source.TENANT,
        )  # fmt: skip
        endpoint.set_secret("sk-123")
        endpoint.save()
    with override_settings(FIELD_ENCRYPTION_KEY="new key " * 5, LLM_ENDPOINTS_JSON=""):
        bot = Bot.objects.create(tenant=acme, name="B")
        service.set_bot_route(bot, [endpoint.pk])
        assert service.resolve_route(bot).specs == ()
        page = client_for(alice).get(reverse("llm:endpoints")).content.decode()
    assert "cannot be decrypted" in page
