"""API keys: shown once, hashed at rest, visible prefix, scopes, last use, revocation;
and the API authenticating with them."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
from django.test import Client
from ninja.errors import HttpError

from chatbot.api.auth import require_write
from chatbot.tenants import actions
from chatbot.tenants.models import ApiKey, AuditEvent, Membership, Tenant, User, hash_secret

ClientFor = Callable[[User], Client]


def api(secret: str | None) -> Client:
    return Client(headers={"authorization": f"Bearer {secret}"} if secret else {})


@pytest.mark.django_db
class TestKeysPage:
    def test_a_new_key_is_shown_once_and_only_its_hash_is_kept(
        self, acme: Tenant, alice: User, client_for: ClientFor
    ) -> None:
        client = client_for(alice)
        response = client.post("/dashboard/keys/", {"name": "CRM sync", "scope": "read"})
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        key = ApiKey.objects.get(tenant=acme)
        page = response.content.decode()
        start = page.index('id="new-key-secret">') + len('id="new-key-secret">')
        secret = page[start : page.index("</code>", start)]
        assert secret.startswith(key.prefix + "_")
        assert len(secret) > 40
        assert key.secret_hash == hash_secret(secret)
        assert secret not in str(list(ApiKey.objects.filter(pk=key.pk).values()))
        later = client.get("/dashboard/keys/").content.decode()
        assert secret not in later
        assert f"{key.prefix}…" in later
        event = AuditEvent.objects.get(action="key.created")
        assert secret not in str(event.details) + event.target

    def test_a_name_is_required(self, alice: User, client_for: ClientFor) -> None:
        response = client_for(alice).post("/dashboard/keys/", {"name": "", "scope": "read"})
        assert response.status_code == 400
        assert not ApiKey.objects.exists()

    def test_revoking_a_key_stops_it_at_once(
        self, acme: Tenant, alice: User, client_for: ClientFor
    ) -> None:
        key, secret = actions.create_api_key(
            Membership.objects.get(user=alice), "CRM", "read_write"
        )
        assert api(secret).get("/api/v1/me").status_code == 200
        client_for(alice).post(f"/dashboard/keys/{key.pk}/revoke/")
        assert api(secret).get("/api/v1/me").status_code == 401
        assert AuditEvent.objects.filter(tenant=acme, action="key.revoked").exists()


@pytest.mark.django_db
class TestApi:
    def test_me_answers_for_the_keys_workspace(self, acme: Tenant, alice: User) -> None:
        key, secret = actions.create_api_key(Membership.objects.get(user=alice), "CRM", "read")
        response = api(secret).get("/api/v1/me")
        assert response.status_code == 200
        body = response.json()
        assert body["workspace"] == {
            "id": acme.pk,
            "name": "Acme",
            "slug": "acme",
            "timezone": "UTC",
        }
        assert body["key"]["prefix"] == key.prefix and body["key"]["scope"] == "read"
        key.refresh_from_db()
        assert key.last_used_at is not None

    def test_last_use_is_written_at_most_once_a_minute(self, alice: User) -> None:
        key, secret = actions.create_api_key(Membership.objects.get(user=alice), "CRM", "read")
        api(secret).get("/api/v1/me")
        key.refresh_from_db()
        first = key.last_used_at
        api(secret).get("/api/v1/me")
        key.refresh_from_db()
        assert key.last_used_at == first

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda s: None,
            lambda s: "",
            lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # right length, wrong secret
            lambda s: s[:12],  # the visible prefix alone
            lambda s: "prl_00000000_" + s[13:],  # unknown prefix
            lambda s: s + "x" * 300,
        ],
        ids=["none", "empty", "wrong-secret", "prefix-only", "unknown-prefix", "oversized"],
    )
    def test_a_wrong_key_is_401_with_a_clear_message(
        self, alice: User, mangle: Callable[[str], str | None]
    ) -> None:
        _key, secret = actions.create_api_key(Membership.objects.get(user=alice), "CRM", "read")
        response = api(mangle(secret)).get("/api/v1/me")
        assert response.status_code == 401
        assert "Authorization: Bearer prl_" in response.json()["error"]["message"]

    def test_a_read_only_key_cannot_write(self, alice: User) -> None:
        read, _ = actions.create_api_key(Membership.objects.get(user=alice), "r", "read")
        write, _ = actions.create_api_key(Membership.objects.get(user=alice), "w", "read_write")
        with pytest.raises(HttpError) as refused:
            require_write(SimpleNamespace(auth=read))  # type: ignore[arg-type]
        assert refused.value.status_code == 403
        assert "read-only" in refused.value.message
        require_write(SimpleNamespace(auth=write))  # type: ignore[arg-type]

    def test_the_schema_is_public_and_documents_the_key(self) -> None:
        schema = Client().get("/api/v1/openapi.json").json()
        assert "/api/v1/me" in schema["paths"]
        assert schema["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"

    def test_a_session_cookie_does_not_authenticate_the_api(
        self, alice: User, client_for: ClientFor
    ) -> None:
        assert client_for(alice).get("/api/v1/me").status_code == 401
