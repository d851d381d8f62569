"""The API's endpoints do what the dashboard does, through the same actions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
from chatbot.tools import actions as tool_actions
from chatbot.tools.endpoint import headers_of
from chatbot.tools.models import Action, ActionCall, CallStatus, Contact
from tests.api.conftest import ApiFor
from tests.tools.conftest import SECRET, make_action

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


# --- Actions, their calls, contacts -----------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    """An action's endpoint on loopback that echoes its path and Authorization header."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _action_body(bot: Bot | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "find_order",
        "title": "Looking up your order",
        "description": "Find an order by its number.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "Order number"}},
            "required": ["order_id"],
        },
        "url": "https://93.184.215.14/orders/{order_id}",
        "method": "GET",
        "headers": {"Authorization": f"Bearer {SECRET}"},
        "timeout_seconds": 5,
        "bots": [ids.encode("bot", bot.pk)] if bot else [],
    }
    body.update(overrides)
    return body


def _lead(bot: Bot, name: str = "Ann", email: str = "ann@example.com") -> Contact:
    conversation = _chat(bot, "Call me back", name=name)
    return tool_actions.capture_lead(conversation.pk, {"name": name, "email": email})


def test_an_action_is_created_read_updated_attached_and_deleted_without_its_secret(
    acme: Tenant, bot: Bot, alice: User, api_for: ApiFor, caplog: pytest.LogCaptureFixture
) -> None:
    client = api_for(alice)
    once = {"Idempotency-Key": "create-find-order"}
    created = client.post("/api/v1/actions", _action_body(bot), content_type=JSON, headers=once)
    assert created.status_code == 201, created.content
    again = client.post("/api/v1/actions", _action_body(bot), content_type=JSON, headers=once)
    assert again["Idempotent-Replayed"] == "true" and again.json() == created.json()
    body = created.json()
    assert body["id"].startswith("act_") and body["header_names"] == ["Authorization"]
    assert body["bots"] == [ids.encode("bot", bot.pk)] and body["kind"] == "http"
    action = Action.objects.get()
    assert SECRET not in action.headers_encrypted and headers_of(action)["Authorization"]
    url = f"/api/v1/actions/{body['id']}"
    for answer in (created, client.get(url), client.get("/api/v1/actions")):
        assert SECRET not in answer.content.decode()
    assert client.get("/api/v1/actions").json()["data"][0]["id"] == body["id"]

    # Omitting headers keeps them; the bots list replaces the attached bots; mass assignment
    # of the tenant, the id or the kind is ignored or refused.
    other = Bot.objects.create(tenant=acme, name="Second")
    patched = client.patch(
        url,
        {"title": "Finding it", "bots": [ids.encode("bot", other.pk)], "tenant": 99, "id": "x"},
        content_type=JSON,
    ).json()
    assert patched["title"] == "Finding it" and patched["header_names"] == ["Authorization"]
    assert patched["bots"] == [ids.encode("bot", other.pk)]
    assert list(Action.objects.get().bots.all()) == [other]
    assert client.patch(url, {"kind": "handoff"}, content_type=JSON).status_code == 422
    cleared = client.patch(url, {"headers": {}, "enabled": False}, content_type=JSON).json()
    assert cleared["header_names"] == [] and cleared["enabled"] is False
    assert Action.objects.get().headers_encrypted == ""
    assert client.delete(url).status_code == 204
    assert not Action.objects.exists() and client.get(url).status_code == 404
    assert {"action.created", "action.updated", "action.deleted"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"url": "http://93.184.215.14/x"}, "HTTPS only"),
        ({"url": "https://127.0.0.1/x"}, "loopback"),
        ({"url": "https://169.254.169.254/latest/meta-data"}, "link-local"),
        ({"name": "Find Order"}, "lower-case"),
        ({"parameters": {"type": "array"}}, "must have"),
        ({"parameters": {"type": "object", "title": "a\x00b"}}, "NUL"),
        ({"headers": {"X-Key": "a\r\nInjected: yes"}}, "line break"),
        ({"headers": {"Bad Name": "v"}}, "header names"),
        ({"timeout_seconds": 31}, "timeout_seconds"),
    ],
)
def test_an_action_is_checked_as_the_dashboard_checks_it(
    bot: Bot, alice: User, api_for: ApiFor, override: dict[str, Any], field: str
) -> None:
    response = api_for(alice).post("/api/v1/actions", _action_body(**override), content_type=JSON)
    assert response.status_code == 422, response.content
    assert field in response.content.decode()
    assert not Action.objects.exists()


def test_a_taken_name_is_refused(bot: Bot, alice: User, api_for: ApiFor) -> None:
    client = api_for(alice)
    assert client.post("/api/v1/actions", _action_body(), content_type=JSON).status_code == 201
    again = client.post("/api/v1/actions", _action_body(), content_type=JSON)
    assert again.status_code == 422 and "already has this name" in again.json()["error"]["message"]


def test_a_builtin_action_starts_from_its_usual_definition(
    bot: Bot, alice: User, api_for: ApiFor
) -> None:
    created = api_for(alice).post(
        "/api/v1/actions",
        {"kind": "capture_lead", "url": "https://ignored.example", "bots": []},
        content_type=JSON,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "capture_lead" and body["url"] == ""
    assert "email" in body["parameters"]["properties"]


def test_attaching_another_workspaces_bot_is_a_404_and_changes_nothing(
    bravo: Tenant, bot: Bot, alice: User, api_for: ApiFor
) -> None:
    foreign = Bot.objects.create(tenant=bravo, name="Bravo bot")
    client = api_for(alice)
    created = client.post(
        "/api/v1/actions", _action_body(bots=[ids.encode("bot", foreign.pk)]), content_type=JSON
    )
    missing = client.post("/api/v1/actions", _action_body(bots=["bot_zz"]), content_type=JSON)
    assert created.status_code == missing.status_code == 404
    assert created.json() == missing.json()
    assert not Action.objects.exists()
    action = client.post("/api/v1/actions", _action_body(bot), content_type=JSON).json()
    patched = client.patch(
        f"/api/v1/actions/{action['id']}",
        {"bots": [ids.encode("bot", foreign.pk)]},
        content_type=JSON,
    )
    assert patched.status_code == 404
    assert list(Action.objects.get().bots.all()) == [bot]


def test_testing_an_action_goes_through_the_guard_and_redacts_the_secret(
    acme: Tenant,
    bot: Bot,
    alice: User,
    api_for: ApiFor,
    echo_server: str,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    action = make_action(acme, bot, echo_server + "/orders/{order_id}")
    client = api_for(alice)
    url = f"/api/v1/actions/{ids.encode('act', action.pk)}/test"
    refused = client.post(url, {"arguments": {"order_id": "A1"}}, content_type=JSON).json()
    assert refused["ok"] is False and "loopback" in refused["error"]
    settings.OUTBOUND_ALLOW_CIDRS = ["127.0.0.0/8"]
    tried = client.post(url, {"arguments": {"order_id": "A 1"}}, content_type=JSON)
    assert tried.status_code == 200, tried.content
    result = tried.json()
    assert result["ok"] is True and result["status"] == 200
    assert result["response"]["path"] == "/orders/A%201"
    assert result["response"]["auth"] == "[redacted]"  # the whole header value
    assert result["request"]["headers"] == {"Authorization": "[redacted]"}
    assert SECRET not in tried.content.decode() and SECRET not in caplog.text
    wrong = client.post(url, {"arguments": {}}, content_type=JSON).json()
    assert wrong["ok"] is False and "'order_id' is a required property" in wrong["error"]
    assert AuditEvent.objects.filter(action="action.tested").count() == 3


def test_an_agents_or_a_read_only_key_cannot_change_or_test_actions(
    acme: Tenant, bot: Bot, alice: User, charlie: User, api_for: ApiFor
) -> None:
    action = make_action(acme, bot, "https://93.184.215.14/orders/{order_id}")
    url = f"/api/v1/actions/{ids.encode('act', action.pk)}"
    before = list(Action.objects.values())
    for client in (api_for(charlie), api_for(alice, "read")):
        assert client.get(url).status_code == 200
        assert client.post("/api/v1/actions", _action_body(), content_type=JSON).status_code == 403
        assert client.patch(url, {"title": "x"}, content_type=JSON).status_code == 403
        assert client.post(f"{url}/test", {"arguments": {}}, content_type=JSON).status_code == 403
        assert client.delete(url).status_code == 403
    assert list(Action.objects.values()) == before
    assert not AuditEvent.objects.filter(action="action.tested").exists()


def test_a_conversations_recorded_calls_are_listed(
    acme: Tenant, bot: Bot, charlie: User, api_for: ApiFor
) -> None:
    action = make_action(acme, bot, "https://93.184.215.14/orders/{order_id}")
    conversation = _chat(bot, "Where is A17?")
    reply = conversation_actions.create_reply_message(conversation.pk)
    assert reply is not None
    for n in range(3):
        ActionCall.objects.create(
            conversation=conversation,
            message=reply,
            action=action,
            name="find_order",
            kind="http",
            arguments={"order_id": f"A{n}"},
            status=CallStatus.DONE,
            result={"status": "shipped"},
            duration_ms=12,
        )
    client = api_for(charlie)
    url = f"/api/v1/conversations/{conversation.public_id}/action-calls"
    page = client.get(f"{url}?limit=2").json()
    assert [c["arguments"]["order_id"] for c in page["data"]] == ["A2", "A1"]
    assert page["data"][0]["reply_seq"] == reply.seq
    assert page["data"][0]["action"] == ids.encode("act", action.pk)
    assert page["data"][0]["result"] == {"status": "shipped"}
    rest = client.get(f"{url}?cursor={page['next_cursor']}").json()
    assert [c["arguments"]["order_id"] for c in rest["data"]] == ["A0"]
    assert rest["next_cursor"] is None


def test_contacts_are_listed_searched_and_read_in_fixed_queries(
    acme: Tenant, bot: Bot, charlie: User, api_for: ApiFor
) -> None:
    for n in range(5):
        _lead(bot, name=f"Lead {n}", email=f"lead{n}@example.com")
    ann = _lead(bot)
    client = api_for(charlie)
    client.get("/api/v1/me")  # the key's first use writes last_used_at once
    with CaptureQueriesContext(connection) as few:
        page = client.get("/api/v1/contacts?limit=2").json()
    with CaptureQueriesContext(connection) as many:
        client.get("/api/v1/contacts?limit=6")
    assert len(few) == len(many) <= 4, [q["sql"] for q in many.captured_queries]
    assert page["data"][0]["email"] == "ann@example.com" and page["next_cursor"]
    assert page["data"][0]["visitor"] == ann.visitor.public_id  # type: ignore[union-attr]
    assert page["data"][0]["conversation"] == ann.conversation.public_id  # type: ignore[union-attr]
    seen, cursor = [], None
    while True:
        got = client.get("/api/v1/contacts?limit=4" + (f"&cursor={cursor}" if cursor else ""))
        seen += [c["id"] for c in got.json()["data"]]
        cursor = got.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    assert [c["name"] for c in client.get("/api/v1/contacts?q=ANN").json()["data"]] == ["Ann"]
    assert len(client.get("/api/v1/contacts?q=lead3@").json()["data"]) == 1
    assert client.get("/api/v1/contacts?bot=bot_zz").json()["data"] == []
    bot_id = ids.encode("bot", bot.pk)
    assert len(client.get(f"/api/v1/contacts?bot={bot_id}").json()["data"]) == 6
    one = client.get(f"/api/v1/contacts/{ids.encode('ctc', ann.pk)}")
    assert one.json()["name"] == "Ann" and one["ETag"]


def test_contacts_are_exported_as_csv_or_json_and_deleted_by_managers(
    acme: Tenant, bot: Bot, alice: User, charlie: User, api_for: ApiFor
) -> None:
    _lead(bot, name="=HYPERLINK()", email="ann@example.com")
    _lead(bot, name="Bea", email="bea@example.com")
    client = api_for(alice)
    as_csv = client.get("/api/v1/contacts/export?format=csv")
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    text = b"".join(as_csv.streaming_content).decode()  # type: ignore[attr-defined]
    assert "'=HYPERLINK()" in text and "bea@example.com" in text  # not a formula
    as_json = client.get("/api/v1/contacts/export?q=bea")
    data = json.loads(b"".join(as_json.streaming_content))  # type: ignore[attr-defined]
    assert [c["email"] for c in data["contacts"]] == ["bea@example.com"]
    assert AuditEvent.objects.filter(action="contacts.exported").count() == 2
    agent = api_for(charlie)
    assert agent.get("/api/v1/contacts/export").status_code == 403
    contact = Contact.objects.get(name="Bea")
    url = f"/api/v1/contacts/{ids.encode('ctc', contact.pk)}"
    assert agent.delete(url).status_code == 403
    assert api_for(alice, "read").delete(url).status_code == 403
    assert client.delete(url).status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert AuditEvent.objects.filter(action="contact.deleted").exists()


def test_erasing_a_visitor_erases_their_contacts(bot: Bot, alice: User, api_for: ApiFor) -> None:
    contact = _lead(bot)
    assert contact.visitor is not None
    client = api_for(alice)
    exported = client.get(f"/api/v1/visitors/{contact.visitor.public_id}/export").json()
    assert exported["contacts"][0]["email"] == "ann@example.com"
    erased = client.delete(f"/api/v1/visitors/{contact.visitor.public_id}").json()
    assert erased["contacts"] == 1
    assert not Contact.objects.exists()
    assert client.get(f"/api/v1/contacts/{ids.encode('ctc', contact.pk)}").status_code == 404


def test_conversations_are_exported_with_the_inbox_filters(
    bot: Bot, alice: User, charlie: User, api_for: ApiFor
) -> None:
    _chat(bot, "question about shipping")
    _chat(bot, "refund please")
    client = api_for(alice)
    found = client.get("/api/v1/conversations/export?q=shipping")
    assert found.status_code == 200, found.content
    data = json.loads(b"".join(found.streaming_content))  # type: ignore[attr-defined]
    assert [c["messages"][0]["text"] for c in data["conversations"]] == ["question about shipping"]
    as_csv = client.get("/api/v1/conversations/export?format=csv&status=bot")
    rows = b"".join(as_csv.streaming_content).decode().splitlines()  # type: ignore[attr-defined]
    assert rows[0].startswith("conversation,bot") and len(rows) == 3
    event = AuditEvent.objects.filter(action="conversation.exported").order_by("pk").last()
    assert event is not None and event.details["count"] == 2
    assert client.get("/api/v1/conversations/export?status=nonsense").status_code == 422
    assert api_for(charlie).get("/api/v1/conversations/export").status_code == 403


def test_a_canned_response_is_updated(acme: Tenant, alice: User, api_for: ApiFor) -> None:
    client = api_for(alice)
    hi = client.post(
        "/api/v1/canned-responses", {"shortcut": "hi", "text": "Hello!"}, content_type=JSON
    ).json()
    client.post("/api/v1/canned-responses", {"shortcut": "bye", "text": "Bye"}, content_type=JSON)
    url = f"/api/v1/canned-responses/{hi['id']}"
    changed = client.patch(url, {"text": "Hello there!"}, content_type=JSON)
    assert changed.status_code == 200 and changed.json()["text"] == "Hello there!"
    assert changed.json()["shortcut"] == "hi"
    assert client.patch(url, {"shortcut": "bye"}, content_type=JSON).status_code == 409
    assert client.patch(url, {"shortcut": "no spaces"}, content_type=JSON).status_code == 422
    assert api_for(alice, "read").patch(url, {"text": "x"}, content_type=JSON).status_code == 403
    assert CannedResponse.objects.get(shortcut="hi").text == "Hello there!"


def test_lists_hide_other_workspaces_actions_contacts_and_calls(
    acme: Tenant, bot: Bot, alice: User, bob: User, api_for: ApiFor
) -> None:
    make_action(acme, bot, "https://93.184.215.14/orders/{order_id}")
    lead = _lead(bot)
    bravo_client = api_for(bob)
    assert bravo_client.get("/api/v1/actions").json()["data"] == []
    assert bravo_client.get("/api/v1/contacts").json()["data"] == []
    assert bravo_client.get("/api/v1/contacts?q=ann").json()["data"] == []
    acme_bot = ids.encode("bot", bot.pk)
    assert bravo_client.get(f"/api/v1/contacts?bot={acme_bot}").json()["data"] == []
    exported = bravo_client.get("/api/v1/contacts/export?format=csv")
    assert "ann@example.com" not in b"".join(exported.streaming_content).decode()  # type: ignore[attr-defined]
    conversations = bravo_client.get("/api/v1/conversations/export")
    assert lead.conversation is not None
    assert lead.conversation.public_id not in b"".join(conversations.streaming_content).decode()  # type: ignore[attr-defined]
    assert len(api_for(alice).get("/api/v1/contacts").json()["data"]) == 1


@pytest.mark.parametrize(
    ("depth", "status", "words"), [(33, 422, "nested"), (10_000, 400, "Cannot parse")]
)
def test_deeply_nested_parameters_or_arguments_are_refused_not_a_crash(
    acme: Tenant, bot: Bot, alice: User, api_for: ApiFor, depth: int, status: int, words: str
) -> None:
    client = api_for(alice)
    nested = '{"a": ' * depth + "1" + "}" * depth
    created = client.post(
        "/api/v1/actions", f'{{"name": "deep", "parameters": {nested}}}', content_type=JSON
    )
    assert created.status_code == status and words in created.json()["error"]["message"]
    assert not Action.objects.exists()
    action = make_action(acme, bot, "https://93.184.215.14/orders/{order_id}")
    tried = client.post(
        f"/api/v1/actions/{ids.encode('act', action.pk)}/test",
        f'{{"arguments": {{"order_id": {nested}}}}}',
        content_type=JSON,
    )
    assert tried.status_code == status and words in tried.json()["error"]["message"]


def test_actions_and_their_calls_are_listed_in_fixed_queries(
    acme: Tenant, bot: Bot, alice: User, api_for: ApiFor
) -> None:
    conversation = _chat(bot, "Where are my orders?")
    for n in range(6):
        action = make_action(acme, bot, "https://93.184.215.14/orders/{order_id}", name=f"a{n}")
        ActionCall.objects.create(
            conversation=conversation, action=action, name=f"a{n}", kind="http", status="done"
        )
    client = api_for(alice)
    client.get("/api/v1/me")  # the key's first use writes last_used_at once
    for url in ("/api/v1/actions", f"/api/v1/conversations/{conversation.public_id}/action-calls"):
        with CaptureQueriesContext(connection) as few:
            page = client.get(f"{url}?limit=2").json()
        with CaptureQueriesContext(connection) as many:
            client.get(f"{url}?limit=6")
        assert len(few) == len(many) <= 5, [q["sql"] for q in many.captured_queries]
        assert len(page["data"]) == 2 and page["next_cursor"]
