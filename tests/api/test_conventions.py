"""The API's conventions: JSON errors everywhere, root links, cursor pages, Idempotency-Key,
ETags, per-key rate limits, opaque ids, roles and scopes."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from chatbot.bots.models import Bot
from chatbot.lib import ids
from chatbot.tenants.models import Tenant, User
from tests.api.conftest import ApiFor

pytestmark = pytest.mark.django_db


def test_the_root_answers_with_links_and_the_version() -> None:
    body = Client().get("/api/v1/").json()
    assert body["version"] == "1"
    assert body["links"]["conversations"].endswith("/api/v1/conversations")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/nothing-here", 404),
        ("get", "/api/v1", 404),
        ("get", "/api/", 404),
        ("post", "/api/v1/conversations", 405),
        ("get", "/api/v1/conversations", 401),
    ],
)
def test_errors_are_json_with_a_code_and_a_message(method: str, path: str, status: int) -> None:
    response = getattr(Client(), method)(path)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] and error["message"]


def test_a_malformed_body_is_refused_naming_the_field(alice: User, api_for: ApiFor) -> None:
    client = api_for(alice)
    broken = client.post("/api/v1/bots", "{not json", content_type="application/json")
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "bad_request"
    nul = client.post("/api/v1/bots", {"name": "a\x00b"}, content_type="application/json")
    assert nul.status_code == 422
    assert nul.json()["error"]["fields"][0]["field"] == "body.payload.name"
    assert not Bot.objects.exists()


def test_ids_reveal_no_counts_and_foreign_shapes_are_missing(
    acme: Tenant, alice: User, api_for: ApiFor
) -> None:
    first = Bot.objects.create(tenant=acme, name="one")
    second = Bot.objects.create(tenant=acme, name="two")
    a, b = ids.encode("bot", first.pk), ids.encode("bot", second.pk)
    # Neighbouring rows get unrelated ids, and an id is not the key in any base ("1" may
    # still occur among its digits: asserting otherwise failed whenever it did).
    assert a[:6] != b[:6]
    for digits, pk in ((a.removeprefix("bot_"), first.pk), (b.removeprefix("bot_"), second.pk)):
        assert digits != str(pk) and int(digits, 36) != pk
    assert "987654321" not in ids.encode("bot", 987654321)
    client = api_for(alice)
    assert client.get(f"/api/v1/bots/{a}").json()["name"] == "one"
    for wrong in ("bot_zz", ids.encode("src", first.pk), str(first.pk), "x" * 300):
        response = client.get(f"/api/v1/bots/{wrong}")
        assert response.status_code == 404, wrong
        assert response.json()["error"]["code"] == "not_found"


def test_cursor_pages_walk_every_row_once(acme: Tenant, alice: User, api_for: ApiFor) -> None:
    for n in range(7):
        Bot.objects.create(tenant=acme, name=f"bot {n}")
    client = api_for(alice)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/bots?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).json()
        seen += [bot["name"] for bot in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"bot {n}" for n in range(7))
    assert client.get("/api/v1/bots?cursor=garbage").json()["error"]["code"] == "bad_cursor"


def test_the_same_idempotency_key_and_body_replays_the_first_answer(
    acme: Tenant, alice: User, api_for: ApiFor
) -> None:
    client = api_for(alice)
    headers = {"Idempotency-Key": "create-helper-1"}
    body = {"name": "Helper"}
    first = client.post("/api/v1/bots", body, content_type="application/json", headers=headers)
    again = client.post("/api/v1/bots", body, content_type="application/json", headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Bot.objects.filter(tenant=acme).count() == 1
    other = client.post(
        "/api/v1/bots", {"name": "Else"}, content_type="application/json", headers=headers
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_mismatch"


def test_reads_carry_an_etag_and_answer_304_when_unchanged(
    acme: Tenant, alice: User, api_for: ApiFor
) -> None:
    bot = Bot.objects.create(tenant=acme, name="Helper")
    client = api_for(alice)
    url = f"/api/v1/bots/{ids.encode('bot', bot.pk)}"
    first = client.get(url)
    etag = first["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    Bot.objects.filter(pk=bot.pk).update(name="Renamed")
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 200


@override_settings(WIDGET_RATE_LIMITS={"api:key": (3, 60)})
def test_each_key_has_its_own_rate_limit_with_retry_after(
    alice: User, bob: User, api_for: ApiFor
) -> None:
    client = api_for(alice)
    statuses = [client.get("/api/v1/me").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/me")
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    assert api_for(bob).get("/api/v1/me").status_code == 200


def test_a_read_only_key_cannot_write(acme: Tenant, alice: User, api_for: ApiFor) -> None:
    client = api_for(alice, "read")
    response = client.post("/api/v1/bots", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]
    assert not Bot.objects.exists()


def test_an_agents_key_cannot_manage_bots(
    acme: Tenant, alice: User, charlie: User, api_for: ApiFor
) -> None:
    response = api_for(charlie).post("/api/v1/bots", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert not Bot.objects.exists()
    assert api_for(charlie).get("/api/v1/conversations").status_code == 200


def test_a_key_stops_when_its_creator_leaves(acme: Tenant, charlie: User, api_for: ApiFor) -> None:
    from chatbot.tenants.models import Membership

    client = api_for(charlie)
    Membership.objects.filter(user=charlie).delete()
    response = client.get("/api/v1/me")
    assert response.status_code == 403
