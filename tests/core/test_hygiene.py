"""The inputs that answered 500 (or dropped a socket) in the attack on a running instance.

Each is refused at the edge (chatbot/core/hygiene.py) with a 400 naming the field, or, for an
id that cannot exist, the answer of a missing id; on SQLite and on PostgreSQL (which refuses
NUL in text and where most of these used to fail).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.test import Client

from chatbot.bots.forms import BotForm
from chatbot.bots.models import Bot, normalize_origin
from chatbot.conversations import actions
from chatbot.conversations.models import Conversation, Message
from chatbot.lib.ids import parse_id
from chatbot.tenants.models import Tenant, User
from tests.widget.conftest import SHOP, connect, receive, session_token

pytestmark = pytest.mark.django_db

NUL = "\x00"
HUGE = "9" * 20


@pytest.fixture
def bot(acme: Tenant) -> Bot:
    return Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=[SHOP])


def _conversation(bot: Bot) -> Conversation:
    visitor = actions.open_visitor(bot)
    return actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi").conversation


def _bad_request(response: Any, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    if response["Content-Type"].startswith("application/json"):
        error = response.json()["error"]
        assert error["code"] == "bad_request"
        text = error["message"]
    else:
        text = response.content.decode()
    assert f"`{field}`" in text, text


class TestPublicWidgetEndpoints:
    def test_nul_in_the_config_path_is_a_400(self, client: Client) -> None:
        _bad_request(client.get("/widget/config/%00"), "path")

    def test_a_lone_surrogate_in_the_session_body_is_a_400_naming_the_field(
        self, client: Client, bot: Bot
    ) -> None:
        body = '{"bot": "\\ud800", "origin": "' + SHOP + '"}'
        _bad_request(
            client.post("/widget/api/session", body, content_type="application/json"), "bot"
        )
        nul = json.dumps({"bot": bot.public_key + NUL, "origin": SHOP})
        _bad_request(
            client.post("/widget/api/session", nul, content_type="application/json"), "bot"
        )

    def test_raw_invalid_utf8_in_a_body_is_a_400(self, client: Client) -> None:
        _bad_request(
            client.post("/widget/api/session", b'{"bot": "\xff"}', content_type="text/plain"),
            "body",
        )

    def test_nul_in_the_sse_conversation_is_a_400(self, client: Client, bot: Bot) -> None:
        token, _ = session_token(bot)
        answer = client.get(
            "/widget/api/events?conversation=c_%00",
            headers={"Authorization": f"Bearer {token}"},
        )
        _bad_request(answer, "conversation")

    def test_a_surrogate_in_a_fallback_send_is_a_400(self, client: Client, bot: Bot) -> None:
        token, _ = session_token(bot)
        body = '{"type": "message.send", "client_id": "c1", "text": "\\udfff"}'
        answer = client.post(
            "/widget/api/send",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}", "Origin": SHOP},
        )
        _bad_request(answer, "text")
        assert not Message.objects.exists()


class TestDashboard:
    def test_nul_in_replies_notes_canned_responses_and_audit_search_is_a_400(
        self, alice: User, bot: Bot, client_for: Callable[[User], Client]
    ) -> None:
        conversation = _conversation(bot)
        client = client_for(alice)
        base = f"/conversations/{conversation.public_id}"
        _bad_request(client.post(f"{base}/reply/", {"text": f"a{NUL}b"}), "text")
        _bad_request(client.post(f"{base}/note/", {"text": f"a{NUL}b"}), "text")
        _bad_request(client.post("/conversations/canned/", {"shortcut": "hi", "text": NUL}), "text")
        _bad_request(client.get("/dashboard/audit/?q=%00"), "q")
        assert Message.objects.filter(conversation=conversation).count() == 1

    def test_nul_in_a_multipart_form_is_a_400_however_large_the_file(
        self, alice: User, bot: Bot, client_for: Callable[[User], Client]
    ) -> None:
        from django.core.files.uploadedfile import SimpleUploadedFile

        big = SimpleUploadedFile("notes.txt", b"returns within 30 days\n" * 200_000)
        answer = client_for(alice).post(
            "/knowledge/add/", {"kind": "file", "bot": bot.pk, "title": f"a{NUL}", "file": big}
        )
        _bad_request(answer, "title")

    def test_twenty_digit_ids_find_nothing_instead_of_overflowing(
        self, alice: User, bot: Bot, client_for: Callable[[User], Client]
    ) -> None:
        conversation = _conversation(bot)
        client = client_for(alice)
        assert client.get(f"/conversations/?bot={HUGE}").status_code == 200
        assert client.get(f"/conversations/export/?bot={HUGE}").status_code == 200
        assign = client.post(f"/conversations/{conversation.public_id}/assign/", {"user": HUGE})
        assert assign.status_code in (302, 400, 404)
        assert client.post("/tenants/switch/", {"tenant": HUGE}).status_code == 404
        assert client.get(f"/bots/{HUGE}/").status_code == 404
        assert client.get(f"/knowledge/{HUGE}/").status_code == 404

    def test_an_unclosed_ipv6_url_is_a_form_error(
        self, alice: User, bot: Bot, client_for: Callable[[User], Client]
    ) -> None:
        client = client_for(alice)
        answer = client.post(
            "/knowledge/add/",
            {
                "kind": "url",
                "bot": bot.pk,
                "url": "http://[::1",
                "max_depth": 0,
                "max_pages": 1,
                "sync_interval": 0,
            },
        )
        assert answer.status_code == 400
        assert "cannot be used" in answer.content.decode()
        with pytest.raises(ValidationError):
            normalize_origin("http://[::1")
        form = BotForm(data={"allowed_origins_text": f"{SHOP}\nhttp://[::1"}, instance=bot)
        assert not form.is_valid()
        assert "http://[::1" in " ".join(form.errors["allowed_origins_text"])


class TestParseId:
    def test_it_takes_only_ids_a_table_can_hold(self) -> None:
        assert parse_id("42") == 42
        assert parse_id(42) == 42
        assert parse_id("9223372036854775807") == 2**63 - 1
        for bad in (HUGE, "9223372036854775808", "0", "-1", "1.0", "²", "", None, True, 2**64):
            assert parse_id(bad) is None, bad


@pytest.mark.django_db(transaction=True)
class TestWidgetFrames:
    async def test_bad_text_in_frames_gets_bad_request_and_the_socket_stays_up(
        self, bot: Bot
    ) -> None:
        token, _ = await database_sync_to_async(session_token)(bot)
        comm = connect(bot)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "hello", "token": token})
        assert (await receive(comm))["type"] == "ready"
        for raw, field in (
            ('{"type": "message.send", "client_id": "c1", "text": "\\ud800"}', "text"),
            ('{"type": "message.send", "client_id": "c1", "text": "a\\u0000b"}', "text"),
            ('{"type": "conversation.open", "conversation": "c_\\u0000"}', "conversation"),
            ('{"type": "reply.fetch", "seq": ' + HUGE + ', "offset": 0}', "seq"),
            ('{"type": "ping", "x": {"\\udc00": 1}}', "x.\udc00"),
        ):
            await comm.send_to(text_data=raw)
            error = await receive(comm)
            assert error["type"] == "error" and error["code"] == "bad_request", error
            assert f"`{field.replace(chr(0xDC00), '?')}`" in error["message"]
        await comm.send_json_to({"type": "ping"})
        assert await receive(comm) == {"type": "pong"}
        await comm.disconnect()
        assert not await Message.objects.aexists()
