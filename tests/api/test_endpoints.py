"""The API's endpoints do what the dashboard does, through the same actions."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatbot.bots.models import Bot
from chatbot.conversations import actions as conversation_actions
from chatbot.conversations.models import CannedResponse, Conversation, Message, Visitor
from chatbot.knowledge.models import Source
from chatbot.lib import ids
from chatbot.tenants.models import AuditEvent, Membership, Tenant, User
from tests.api.conftest import ApiFor

pytestmark = pytest.mark.django_db
JSON = "application/json"


def _chat(bot: Bot, text: str, name: str = "") -> Conversation:
    visitor = Visitor.objects.create(bot=bot, name=name)
    return conversation_actions.receive_visitor_message(
        visitor, None, client_id="c1", text=text
    ).conversation


@pytest.fixture
def bot(acme: Tenant) -> Bot:
    return Bot.objects.create(tenant=acme, name="Helper")


def test_a_bot_is_created_updated_rotated_and_deleted(
    acme: Tenant, alice: User, api_for: ApiFor
) -> None:
    client = api_for(alice)
    created = client.post(
        "/api/v1/bots",
        {"name": "Helper", "allowed_origins": ["https://Shop.Example:443"]},
        content_type=JSON,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["allowed_origins"] == ["https://shop.example"]
    url = f"/api/v1/bots/{body['id']}"
    bad = client.patch(url, {"accent_color": "red"}, content_type=JSON)
    assert bad.status_code == 422 and "accent_color" in bad.json()["error"]["message"]
    patched = client.patch(url, {"greeting": "Hi!", "enabled": False}, content_type=JSON).json()
    assert patched["greeting"] == "Hi!" and patched["enabled"] is False
    assert patched["allowed_origins"] == ["https://shop.example"]
    bot = Bot.objects.get(tenant=acme)
    old_secret = bot.identity_secret
    rotated = client.post(f"{url}/rotate-identity-secret").json()
    assert rotated["identity_secret"] != old_secret
    assert client.get(f"{url}/route").json() == {"endpoints": [], "uses_default": True}
    assert (
        client.put(f"{url}/route", {"endpoints": ["mep_zz"]}, content_type=JSON).status_code == 422
    )
    assert client.delete(url).status_code == 204
    assert not Bot.objects.exists()
    assert AuditEvent.objects.filter(action="bot.deleted").exists()


def test_mass_assignment_cannot_set_the_tenant_or_keys(
    bravo: Tenant, alice: User, api_for: ApiFor
) -> None:
    response = api_for(alice).post(
        "/api/v1/bots",
        {"name": "x", "tenant": bravo.pk, "public_key": "pk_mine", "identity_secret": "is_x"},
        content_type=JSON,
    )
    assert response.status_code == 201
    bot = Bot.objects.get()
    assert bot.tenant.name == "Acme" and bot.public_key != "pk_mine"


def test_conversations_list_with_filters_and_search_in_fixed_queries(
    bot: Bot, alice: User, api_for: ApiFor
) -> None:
    for n in range(6):
        _chat(bot, f"question number {n} about shipping" if n % 2 else f"refund {n}")
    client = api_for(alice)
    client.get("/api/v1/me")  # the key's first use writes last_used_at once
    with CaptureQueriesContext(connection) as few:
        page = client.get("/api/v1/conversations?limit=2").json()
    with CaptureQueriesContext(connection) as many:
        client.get("/api/v1/conversations?limit=6")
    assert len(few) == len(many) <= 5, [q["sql"] for q in many.captured_queries]
    assert len(page["data"]) == 2 and page["next_cursor"]
    found = client.get("/api/v1/conversations?q=shipping").json()["data"]
    assert len(found) == 3
    assert client.get("/api/v1/conversations?status=closed").json()["data"] == []
    bot_id = ids.encode("bot", bot.pk)
    assert len(client.get(f"/api/v1/conversations?bot={bot_id}").json()["data"]) == 6
    assert client.get("/api/v1/conversations?bot=bot_zz").json()["data"] == []
    assert client.get("/api/v1/conversations?status=nonsense").status_code == 422


def test_an_agent_takes_over_replies_notes_assigns_and_closes(
    bot: Bot, alice: User, charlie: User, api_for: ApiFor
) -> None:
    conversation = _chat(bot, "I need help")
    client = api_for(charlie)
    base = f"/api/v1/conversations/{conversation.public_id}"
    taken = client.post(f"{base}/take-over").json()
    assert taken["status"] == "agent" and taken["assignee"] == ids.encode("usr", charlie.pk)
    sent = client.post(f"{base}/messages", {"text": "Hello, Charlie here"}, content_type=JSON)
    assert sent.status_code == 201 and sent.json()["role"] == "agent"
    note = client.post(f"{base}/notes", {"text": "VIP"}, content_type=JSON).json()
    assert note["role"] == "note"
    member = ids.encode("usr", alice.pk)
    assigned = client.post(f"{base}/assign", {"member": member}, content_type=JSON).json()
    assert assigned["assignee"] == member
    closed = client.post(f"{base}/close").json()
    assert closed["status"] == "closed"
    refused = client.post(f"{base}/messages", {"text": "late"}, content_type=JSON)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conversation_closed"
    assert client.post(f"{base}/reopen").json()["status"] == "agent"
    messages = client.get(f"{base}/messages?after_seq=1&limit=2").json()
    assert [m["seq"] for m in messages["data"]] == [2, 3] and messages["next_after_seq"] == 3
    assert client.post(f"{base}/hand-back").json()["status"] == "bot"


def test_assigning_another_workspaces_member_is_a_404_and_changes_nothing(
    bot: Bot, alice: User, bob: User, api_for: ApiFor
) -> None:
    conversation = _chat(bot, "hi")
    base = f"/api/v1/conversations/{conversation.public_id}"
    client = api_for(alice)
    foreign = client.post(
        f"{base}/assign", {"member": ids.encode("usr", bob.pk)}, content_type=JSON
    )
    missing = client.post(f"{base}/assign", {"member": "usr_zz"}, content_type=JSON)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    conversation.refresh_from_db()
    assert conversation.assignee_id is None


def test_a_visitor_is_read_exported_and_erased(bot: Bot, alice: User, api_for: ApiFor) -> None:
    conversation = _chat(bot, "my order 42", name="Vera")
    client = api_for(alice)
    url = f"/api/v1/visitors/{conversation.visitor.public_id}"
    assert client.get(url).json()["name"] == "Vera"
    exported = client.get(f"{url}/export").json()
    assert exported["conversations"][0]["messages"][0]["text"] == "my order 42"
    exported_one = client.get(f"/api/v1/conversations/{conversation.public_id}/export").json()
    assert exported_one["messages"][0]["text"] == "my order 42"
    erased = client.delete(url).json()
    assert erased == {"conversations": 1, "messages": 1, "attachments": 0, "contacts": 0}
    assert not Visitor.objects.exists() and not Message.objects.exists()
    assert client.get(url).status_code == 404


def test_an_agent_cannot_export_or_erase(bot: Bot, charlie: User, api_for: ApiFor) -> None:
    conversation = _chat(bot, "hi")
    client = api_for(charlie)
    url = f"/api/v1/visitors/{conversation.visitor.public_id}"
    assert client.get(f"{url}/export").status_code == 403
    assert client.delete(url).status_code == 403
    assert Visitor.objects.exists()


def test_knowledge_sources_are_added_synced_and_deleted(
    bot: Bot, alice: User, api_for: ApiFor
) -> None:
    client = api_for(alice)
    bot_id = ids.encode("bot", bot.pk)
    text = client.post(
        f"/api/v1/bots/{bot_id}/sources",
        {"kind": "text", "title": "Returns", "text": "Returns are free within 30 days."},
        content_type=JSON,
    )
    assert text.status_code == 201, text.content
    assert text.json()["status"] == "pending"  # synced after the commit
    qa = client.post(
        f"/api/v1/bots/{bot_id}/sources",
        {"kind": "qa", "question": "Open on Sunday?", "answer": "No."},
        content_type=JSON,
    )
    assert qa.status_code == 201
    private = client.post(
        f"/api/v1/bots/{bot_id}/sources",
        {"kind": "url", "url": "http://127.0.0.1/admin"},
        content_type=JSON,
    )
    assert private.status_code == 422 and "cannot be used" in private.json()["error"]["message"]
    upload = client.post(
        f"/api/v1/bots/{bot_id}/sources/upload",
        {"file": SimpleUploadedFile("faq.md", b"# FAQ\n\nWe ship worldwide.", "text/markdown")},
    )
    assert upload.status_code == 201, upload.content
    assert upload.json()["file_name"] == "faq.md"
    listed = client.get(f"/api/v1/bots/{bot_id}/sources").json()["data"]
    assert len(listed) == 3
    source_url = f"/api/v1/sources/{text.json()['id']}"
    assert client.post(f"{source_url}/sync").status_code == 202
    assert client.delete(source_url).status_code == 204
    assert Source.objects.count() == 2


def test_canned_responses_members_invitations_and_usage(
    acme: Tenant, alice: User, charlie: User, api_for: ApiFor
) -> None:
    client = api_for(alice)
    canned = client.post(
        "/api/v1/canned-responses", {"shortcut": "hi", "text": "Hello!"}, content_type=JSON
    )
    assert canned.status_code == 201
    dup = client.post(
        "/api/v1/canned-responses", {"shortcut": "hi", "text": "again"}, content_type=JSON
    )
    assert dup.status_code == 409
    assert client.delete(f"/api/v1/canned-responses/{canned.json()['id']}").status_code == 204
    assert not CannedResponse.objects.exists()
    members = client.get("/api/v1/members").json()["data"]
    assert {m["email"] for m in members} == {"alice@acme.test", "charlie@acme.test"}
    charlie_id = ids.encode("usr", charlie.pk)
    changed = client.patch(f"/api/v1/members/{charlie_id}", {"role": "admin"}, content_type=JSON)
    assert changed.json()["role"] == "admin"
    invited = client.post(
        "/api/v1/invitations", {"email": "dave@acme.test", "role": "agent"}, content_type=JSON
    )
    assert invited.status_code == 201 and "token" not in invited.text
    assert client.delete(f"/api/v1/invitations/{invited.json()['id']}").status_code == 204
    assert client.delete(f"/api/v1/members/{charlie_id}").status_code == 204
    assert not Membership.objects.filter(user=charlie).exists()
    usage = client.get("/api/v1/usage?days=7").json()
    assert usage["conversations"] == 0 and usage["days"] == 7
