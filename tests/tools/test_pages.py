"""The Actions and Contacts pages: forms, secrets, the SSRF guard, the test button, roles."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.urls import reverse

from chatbot.bots.models import Bot
from chatbot.conversations import actions as conversation_actions
from chatbot.conversations.export import erase_visitor, visitor_export
from chatbot.tenants.models import AuditEvent, Tenant, User
from chatbot.tools import actions as tool_actions
from chatbot.tools.models import Action, Contact

from .conftest import SECRET, make_action

pytestmark = pytest.mark.django_db


def action_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "http",
        "name": "find_order",
        "title": "Looking up your order",
        "description": "Find an order by number.",
        "schema_mode": "fields",
        "field_name_0": "order_id",
        "field_type_0": "string",
        "field_description_0": "Order number",
        "field_required_0": "1",
        "url": "https://93.184.215.14/orders/{order_id}",
        "method": "GET",
        "headers_text": f"Authorization: Bearer {SECRET}",
        "timeout_seconds": "5",
        "enabled": "on",
    }
    data.update(overrides)
    return data


class EchoHandler(BaseHTTPRequestHandler):
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
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class TestActionForm:
    def test_it_saves_simple_fields_as_a_schema_and_keeps_header_values_secret(
        self, alice: User, acme: Tenant, acme_bot: Bot, client_for: Any
    ) -> None:
        client = client_for(alice)
        response = client.post(reverse("tools:create"), action_form(bots=[acme_bot.pk]))
        assert response.status_code == 302, response.content.decode()[:2000]
        action = Action.objects.get()
        assert action.parameters == {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "Order number"}},
            "required": ["order_id"],
        }
        assert list(action.bots.all()) == [acme_bot]
        assert SECRET not in action.headers_encrypted
        page = client.get(reverse("tools:edit", args=[action.pk])).content.decode()
        assert "Authorization" in page and SECRET not in page
        # Saving again without headers keeps them.
        client.post(reverse("tools:edit", args=[action.pk]), action_form(headers_text=""))
        action.refresh_from_db()
        assert action.headers_encrypted
        assert AuditEvent.objects.filter(action="action.created").exists()

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("url", "http://93.184.215.14/x", "HTTPS only"),
            ("url", "https://127.0.0.1/x", "loopback"),
            ("url", "https://169.254.169.254/latest/meta-data", "link-local"),
            ("name", "Find Order", "lower-case"),
            ("parameters_json", '{"type": "array"}', "must have"),
        ],
    )
    def test_it_refuses_what_cannot_be_used(
        self, alice: User, acme_bot: Bot, client_for: Any, field: str, value: str, message: str
    ) -> None:
        data = action_form(**{field: value})
        if field == "parameters_json":
            data["schema_mode"] = "raw"
        response = client_for(alice).post(reverse("tools:create"), data)
        assert response.status_code == 400
        assert message in response.content.decode()
        assert not Action.objects.exists()

    def test_another_tenants_bot_cannot_be_attached(
        self, alice: User, bob: User, bravo: Tenant, client_for: Any
    ) -> None:
        foreign = Bot.objects.create(tenant=bravo, name="Bravo bot")
        response = client_for(alice).post(reverse("tools:create"), action_form(bots=[foreign.pk]))
        assert response.status_code == 400
        assert not Action.objects.exists()

    def test_agents_cannot_manage_actions(self, charlie: User, client_for: Any) -> None:
        assert client_for(charlie).get(reverse("tools:list")).status_code == 403


class TestTheTestButton:
    def test_the_guard_refuses_a_private_address_even_when_saved_before(
        self, alice: User, acme: Tenant, acme_bot: Bot, client_for: Any, echo_server: str
    ) -> None:
        action = make_action(acme, acme_bot, echo_server + "/orders/{order_id}")
        response = client_for(alice).post(
            reverse("tools:test", args=[action.pk]), {"arguments": '{"order_id": "A1"}'}
        )
        page = response.content.decode()
        assert "refused" in page and "loopback" in page

    def test_it_shows_the_request_and_the_response_without_the_secret(
        self,
        alice: User,
        acme: Tenant,
        acme_bot: Bot,
        client_for: Any,
        echo_server: str,
        loopback_allowed: None,
    ) -> None:
        action = make_action(acme, acme_bot, echo_server + "/orders/{order_id}")
        response = client_for(alice).post(
            reverse("tools:test", args=[action.pk]), {"arguments": '{"order_id": "A 1"}'}
        )
        page = response.content.decode()
        assert "/orders/A%201" in page and "HTTP 200" in page
        assert "[redacted]" in page and SECRET not in page

    def test_sample_arguments_are_checked_against_the_schema(
        self, alice: User, acme: Tenant, acme_bot: Bot, client_for: Any
    ) -> None:
        action = make_action(acme, acme_bot, "https://93.184.215.14/x")
        response = client_for(alice).post(
            reverse("tools:test", args=[action.pk]), {"arguments": "{}"}
        )
        assert "&#39;order_id&#39; is a required property" in response.content.decode()


class TestContacts:
    def _lead(
        self, bot: Bot, email: str = "ann@example.com", phone: str = "+44 20 1234"
    ) -> Contact:
        visitor = conversation_actions.open_visitor(bot)
        received = conversation_actions.receive_visitor_message(
            visitor, None, client_id="c1", text="Call me"
        )
        return tool_actions.capture_lead(
            received.conversation.pk, {"name": "Ann", "email": email, "phone": phone}
        )

    def test_agents_see_contacts_and_managers_export_them(
        self, alice: User, charlie: User, acme_bot: Bot, client_for: Any
    ) -> None:
        self._lead(acme_bot, email="=cmd@example.com")
        page = client_for(charlie).get(reverse("tools:contacts")).content.decode()
        assert "=cmd@example.com" in page
        assert client_for(charlie).get(reverse("tools:contacts_export")).status_code == 403
        response = client_for(alice).get(reverse("tools:contacts_export"))
        body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
        assert "'=cmd@example.com" in body  # not a spreadsheet formula

    def test_other_tenants_do_not_see_them(self, bob: User, acme_bot: Bot, client_for: Any) -> None:
        self._lead(acme_bot)
        assert (
            "ann@example.com" not in client_for(bob).get(reverse("tools:contacts")).content.decode()
        )

    def test_erasing_the_visitor_erases_their_contact_and_exports_include_it(
        self, alice: User, acme: Tenant, acme_bot: Bot
    ) -> None:
        contact = self._lead(acme_bot)
        assert contact.visitor is not None
        exported = visitor_export(contact.visitor)
        assert exported["contacts"][0]["email"] == "ann@example.com"
        erase_visitor(acme, alice, contact.visitor)
        assert not Contact.objects.exists()

    def test_a_lead_needs_a_way_to_reach_them(self, acme_bot: Bot) -> None:
        with pytest.raises(tool_actions.LeadProblem):
            self._lead(acme_bot, email="", phone="")


class TestTranscript:
    def test_agents_see_each_call_under_its_reply_and_exports_carry_it(
        self, charlie: User, alice: User, acme_bot: Bot, client_for: Any
    ) -> None:
        from chatbot.conversations.export import conversation_dicts
        from chatbot.conversations.models import Conversation
        from chatbot.tools.models import ActionCall, CallStatus

        visitor = conversation_actions.open_visitor(acme_bot)
        received = conversation_actions.receive_visitor_message(
            visitor, None, client_id="c1", text="Where is A17?"
        )
        reply = conversation_actions.create_reply_message(received.conversation.pk)
        assert reply is not None
        ActionCall.objects.create(
            conversation=received.conversation,
            message=reply,
            name="find_order",
            kind="http",
            arguments={"order_id": "A17"},
            status=CallStatus.DONE,
            result={"status": "shipped"},
            duration_ms=12,
        )
        url = reverse("conversations:detail", args=[received.conversation.public_id])
        page = client_for(charlie).get(url).content.decode()
        assert "find_order" in page and "A17" in page and "shipped" in page
        [exported] = conversation_dicts(Conversation.objects.all())
        assert exported["actions"][0]["arguments"] == {"order_id": "A17"}
        assert exported["actions"][0]["reply_seq"] == reply.seq
        received.conversation.delete()  # retention deletes conversations: the calls go too
        assert not ActionCall.objects.exists()
