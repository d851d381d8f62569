"""The operator edits endpoints in the Django admin; secrets are write-only there."""

from __future__ import annotations

import json

from django.test import Client, override_settings
from django.urls import reverse

from chatbot.llm import registry
from chatbot.llm.models import ModelEndpoint
from chatbot.tenants.models import User


def staff_client() -> Client:
    admin = User.objects.create_superuser("ops@parley.test", "pw-ops-123456")
    client = Client()
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_the_operator_adds_an_endpoint_with_a_secret_that_is_never_shown(db: None) -> None:
    client = staff_client()
    assert client.get(reverse("admin:llm_modelendpoint_add")).status_code == 200
    form = {
        "name": "vllm", "kind": "openai", "base_url": "http://gpu-1:8000/v1",
        "model": "meta-llama/Llama-3.1-8B-Instruct", "auth": "bearer", "auth_header": "api-key",
        "new_secret": "vllm-token", "connect_timeout": "5", "first_token_timeout": "60",
        "idle_timeout": "30", "queue_timeout": "10", "max_concurrency": "32",
        "context_window": "32768", "chars_per_token": "3.5", "breaker_failures": "3",
        "breaker_cooldown": "30", "enabled": "on", "position": "0",
    }  # fmt: skip
    response = client.post(reverse("admin:llm_modelendpoint_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = ModelEndpoint.objects.get(name="vllm")
    assert endpoint.secret == "vllm-token" and endpoint.max_concurrency == 32
    change = client.get(reverse("admin:llm_modelendpoint_change", args=[endpoint.pk]))
    assert change.status_code == 200 and "vllm-token" not in change.content.decode()
    # Saving again without typing a secret keeps the stored one.
    client.post(
        reverse("admin:llm_modelendpoint_change", args=[endpoint.pk]), {**form, "new_secret": ""}
    )
    endpoint.refresh_from_db()
    assert endpoint.secret == "vllm-token"
    listing = client.get(reverse("admin:llm_modelendpoint_changelist")).content.decode()
    assert "vllm" in listing and "not used yet" in listing


def test_declared_endpoints_are_read_only_in_the_admin(db: None) -> None:
    declared = [
        {
            "name": "groq",
            "kind": "openai",
            "url": "https://api.groq.com/openai/v1",
            "model": "llama-3.3-70b-versatile",
        }
    ]
    with override_settings(LLM_ENDPOINTS_JSON=json.dumps(declared), LLM_ENDPOINTS_FILE=""):
        (groq,) = registry.operator_endpoints()
        page = staff_client().get(reverse("admin:llm_modelendpoint_change", args=[groq.pk]))
    assert page.status_code == 200
    assert 'name="base_url"' not in page.content.decode()  # shown, not editable
