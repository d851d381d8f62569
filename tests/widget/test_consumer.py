"""The widget WebSocket, through channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import jwt
import pytest
from channels.db import database_sync_to_async

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.models import Conversation, Message
from chatbot.llm.types import StreamError
from widget.consumers import Close
from widget.tokens import _session_key, issue_session_token

from .conftest import (
    SHOP,
    ScriptedModel,
    connect,
    is_final_reply,
    receive,
    receive_until,
    session_token,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def hello(bot: Bot, token: str, **extra: object):
    comm = connect(bot)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "hello", "token": token, **extra})
    ready = await receive(comm)
    assert ready["type"] == "ready", ready
    return comm, ready


async def make_token(bot: Bot, **kwargs: object):
    return await database_sync_to_async(session_token)(bot, **kwargs)


class TestHappyPath:
    async def test_a_message_is_stored_then_the_reply_streams_and_is_stored(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        token, visitor = await make_token(acme_bot)
        comm, ready = await hello(acme_bot, token)
        assert ready["conversation"] is None
        assert ready["visitor"] == {"id": visitor.public_id, "name": "", "verified": False}

        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Hi there"})
        ack = await receive(comm)
        assert ack["type"] == "ack" and ack["seq"] == 1 and ack["duplicate"] is False
        frames = await receive_until(comm, is_final_reply)
        await actions.wait_for_replies()

        deltas = "".join(f["text"] for f in frames if f["type"] == "delta")
        final = frames[-1]["message"]
        assert deltas == "Hello from Acme!"
        assert final == {**final, "seq": 2, "status": "complete", "text": "Hello from Acme!"}
        rows = await database_sync_to_async(
            lambda: list(
                Message.objects.order_by("seq").values_list("seq", "role", "text", "status")
            )
        )()
        assert rows == [
            (1, "visitor", "Hi there", "complete"),
            (2, "assistant", "Hello from Acme!", "complete"),
        ]
        reply = await database_sync_to_async(Message.objects.get)(seq=2)
        assert (reply.model, reply.endpoint, reply.tokens_in, reply.tokens_out) == (
            "tiny",
            "scripted",
            12,
            4,
        )
        assert reply.ttft_ms is not None and reply.duration_ms is not None
        # The model saw the visitor's words as a user turn.
        assert [m.plain_text for m in model.histories[0]] == ["Hi there"]
        await comm.disconnect()

    async def test_a_model_failure_keeps_the_partial_text_as_incomplete(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        model.chunks = ["Half an", " answer"]
        model.fail_with = StreamError("upstream", "The model server closed the stream.")
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Hi"})
        frames = await receive_until(comm, is_final_reply)
        final = frames[-1]["message"]
        assert final["status"] == "incomplete"
        assert final["text"] == "Half an answer"
        assert final["error"]["code"] == "upstream"
        visitor_row = await database_sync_to_async(Message.objects.get)(seq=1)
        assert visitor_row.text == "Hi"  # the visitor message is kept

        # Retry answers again (the model is fine now).
        model.fail_with = None
        model.chunks = ["Whole answer"]
        await comm.send_json_to({"type": "reply.retry"})
        frames = await receive_until(comm, is_final_reply)
        assert frames[-1]["message"]["status"] == "complete"
        assert frames[-1]["message"]["seq"] == 3
        await actions.wait_for_replies()
        await comm.disconnect()

    async def test_offline_model_fails_the_reply_with_the_offline_code(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        model.chunks = []
        model.fail_with = StreamError("offline", "No model endpoint is reachable.")
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Hi"})
        frames = await receive_until(comm, is_final_reply)
        assert frames[-1]["message"]["status"] == "failed"
        assert frames[-1]["message"]["error"]["code"] == "offline"
        await actions.wait_for_replies()
        await comm.disconnect()

    async def test_visitors_never_read_endpoint_names_or_addresses_operators_do(
        self, acme_bot: Bot, model: ScriptedModel, caplog: pytest.LogCaptureFixture
    ) -> None:
        detail = (
            "refuse is skipped after repeated failures (30 s cool-down); last error: "
            "connection refused by refuse (http://127.0.0.1:9/v1)"
        )
        model.chunks = []
        model.fail_with = StreamError("connect", detail)
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Hi"})
        frames = await receive_until(comm, is_final_reply)
        await actions.wait_for_replies()
        final = frames[-1]["message"]
        assert final["status"] == "failed"
        assert final["error"] == {
            "code": "connect",
            "message": "The assistant is unavailable right now. Please try again in a moment.",
        }
        for frame in frames:
            assert "refuse" not in json.dumps(frame) and "127.0.0.1" not in json.dumps(frame)
        # On reconnect too (the history comes from the stored row).
        comm2, _ready = await hello(acme_bot, token, conversation=frames[0]["conversation"])
        history = await receive_until(comm2, lambda f: f.get("message", {}).get("seq") == 2)
        assert history[-1]["message"]["error"]["code"] == "connect"
        assert "127.0.0.1" not in json.dumps(history)
        # The operator keeps the detail: in the stored row (the dashboard shows it) and the log.
        row = await database_sync_to_async(Message.objects.get)(seq=2)
        assert row.error_message == detail
        assert any(detail in record.getMessage() for record in caplog.records)
        await comm.disconnect()
        await comm2.disconnect()


class TestResume:
    async def test_reconnect_gets_missed_messages_and_the_partial_reply(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        model.chunks = ["One", " two", " three", " four"]
        model.hold_at = 2
        model.gate = asyncio.Event()
        model.reached = asyncio.Event()
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Count"})
        ack = await receive(comm)
        conversation_id = ack["conversation"]
        await comm.disconnect()  # the visitor drops; the reply keeps going
        await asyncio.wait_for(model.reached.wait(), 5)
        await asyncio.sleep(0.1)  # let the batch flush reach the cache

        # Reconnect having seen seq 1 only.
        comm, ready = await hello(acme_bot, token, conversation=conversation_id, resume_after_seq=1)
        assert ready["conversation"]["id"] == conversation_id
        partial = await receive(comm)
        assert partial["type"] == "message"
        assert partial["message"]["seq"] == 2 and partial["message"]["status"] == "streaming"
        assert partial["message"]["text"] == "One two"

        model.gate.set()
        frames = await receive_until(comm, is_final_reply)
        text = partial["message"]["text"]
        for frame in frames:
            if frame["type"] == "delta":
                assert frame["offset"] == len(text)  # no repeats, no gaps
                text += frame["text"]
        assert text == "One two three four"
        assert frames[-1]["message"]["text"] == "One two three four"
        await actions.wait_for_replies()
        await comm.disconnect()

    async def test_reconnect_after_the_reply_finished_gets_every_missed_message_once(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "First"})
        ack = await receive(comm)
        await comm.disconnect()
        await actions.wait_for_replies()

        comm, ready = await hello(
            acme_bot, token, conversation=ack["conversation"], resume_after_seq=0
        )
        assert ready["last_seq"] == 2
        first, second = await receive(comm), await receive(comm)
        assert [first["message"]["seq"], second["message"]["seq"]] == [1, 2]
        assert second["message"]["text"] == "Hello from Acme!"
        assert await comm.receive_nothing(0.2)
        await comm.disconnect()

    async def test_two_tabs_both_see_the_reply(self, acme_bot: Bot, model: ScriptedModel) -> None:
        token, _ = await make_token(acme_bot)
        tab1, _ = await hello(acme_bot, token)
        await tab1.send_json_to({"type": "message.send", "client_id": "c1", "text": "Hi"})
        ack = await receive(tab1)
        tab2, _ = await hello(acme_bot, token, conversation=ack["conversation"], resume_after_seq=1)
        await receive_until(tab1, is_final_reply)
        frames = await receive_until(tab2, is_final_reply)
        assert frames[-1]["message"]["text"] == "Hello from Acme!"
        await actions.wait_for_replies()
        await tab1.disconnect()
        await tab2.disconnect()


class TestDuplicates:
    async def test_a_resent_client_id_is_stored_once_and_answered_once(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        client_id = str(uuid.uuid4())
        await comm.send_json_to({"type": "message.send", "client_id": client_id, "text": "Once"})
        first = await receive(comm)
        await receive_until(comm, is_final_reply)
        await comm.send_json_to({"type": "message.send", "client_id": client_id, "text": "Once"})
        again = await receive(comm)
        assert again["duplicate"] is True and again["seq"] == first["seq"]
        assert (await receive(comm))["type"] == "message"
        assert await comm.receive_nothing(0.3)
        await actions.wait_for_replies()
        assert await database_sync_to_async(Message.objects.filter(role="visitor").count)() == 1
        assert await database_sync_to_async(Message.objects.filter(role="assistant").count)() == 1
        assert model.calls == 1
        await comm.disconnect()

    async def test_a_resend_on_a_new_socket_before_the_ack_does_not_duplicate(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "same", "text": "Hi"})
        await comm.disconnect()
        other, _ = await hello(acme_bot, token)
        await other.send_json_to({"type": "message.send", "client_id": "same", "text": "Hi"})
        ack = (await receive_until(other, lambda f: f["type"] == "ack"))[-1]
        assert ack["duplicate"] is True
        await actions.wait_for_replies()
        assert await database_sync_to_async(Conversation.objects.count)() == 1
        assert await database_sync_to_async(Message.objects.filter(role="visitor").count)() == 1
        await other.disconnect()


class TestOrigin:
    @pytest.mark.parametrize(
        "origin",
        [
            None,
            "https://evil.example",
            "https://shop.acme.test.evil.example",
            "http://shop.acme.test",  # scheme differs
            "https://shop.acme.test:8443",  # port differs
            "null",
        ],
    )
    async def test_the_handshake_is_refused_before_accept(
        self, acme_bot: Bot, origin: str | None
    ) -> None:
        comm = connect(acme_bot, origin=origin)
        connected, _ = await comm.connect()
        assert connected is False

    async def test_the_allowed_origin_and_the_platform_frame_are_accepted(
        self, acme_bot: Bot
    ) -> None:
        for origin in (SHOP, "http://127.0.0.1:8000"):
            comm = connect(acme_bot, origin=origin)
            connected, _ = await comm.connect()
            assert connected, origin
            await comm.disconnect()

    async def test_a_disabled_bot_refuses_the_handshake(self, acme_bot: Bot) -> None:
        await database_sync_to_async(Bot.objects.filter(pk=acme_bot.pk).update)(enabled=False)
        connected, _ = await connect(acme_bot).connect()
        assert connected is False


async def expect_close(bot: Bot, token: object, code: int, origin: str = SHOP) -> None:
    comm = connect(bot, origin=origin)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "hello", "token": token})
    output = await comm.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    assert output["code"] == code


class TestTokens:
    async def test_expired_token_closes_with_4002(self, acme_bot: Bot) -> None:
        _, visitor = await make_token(acme_bot)
        now = int(time.time())
        claims = {
            "typ": "visitor",
            "bot": acme_bot.public_key,
            "vid": visitor.public_id,
            "aud": SHOP,
            "gen": 1,
            "iat": now - 1000,
            "exp": now - 10,
        }
        token = jwt.encode(claims, _session_key(), algorithm="HS256")
        await expect_close(acme_bot, token, Close.TOKEN_EXPIRED)

    async def test_token_for_another_bot_closes_with_4001(
        self, acme_bot: Bot, bravo_bot: Bot
    ) -> None:
        token, _ = await database_sync_to_async(session_token)(
            bravo_bot, origin="https://bravo.test"
        )
        await expect_close(acme_bot, token, Close.BAD_TOKEN)

    async def test_tampered_token_closes_with_4001(self, acme_bot: Bot) -> None:
        token, _ = await make_token(acme_bot)
        header, payload, signature = token.split(".")
        flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
        await expect_close(acme_bot, f"{header}.{payload}.{flipped}", Close.BAD_TOKEN)
        # Claims changed but signature kept.
        forged = jwt.encode({"typ": "visitor"}, "not-the-platform-key-" * 3, algorithm="HS256")
        await expect_close(acme_bot, forged, Close.BAD_TOKEN)
        await expect_close(acme_bot, "", Close.BAD_TOKEN)
        await expect_close(acme_bot, None, Close.BAD_TOKEN)

    async def test_alg_none_is_refused(self, acme_bot: Bot) -> None:
        _, visitor = await make_token(acme_bot)
        now = int(time.time())
        unsigned = jwt.encode(
            {
                "typ": "visitor",
                "bot": acme_bot.public_key,
                "vid": visitor.public_id,
                "aud": SHOP,
                "gen": 1,
                "iat": now,
                "exp": now + 60,
            },
            key=None,
            algorithm="none",
        )
        await expect_close(acme_bot, unsigned, Close.BAD_TOKEN)

    async def test_token_replayed_after_rotation_closes_with_4001(self, acme_bot: Bot) -> None:
        token, _ = await make_token(acme_bot)
        from chatbot.bots import actions as bot_actions

        await database_sync_to_async(bot_actions.rotate_identity_secret)(acme_bot, actor=None)
        await expect_close(acme_bot, token, Close.BAD_TOKEN)

    async def test_token_for_another_page_origin_is_refused(self, acme_bot: Bot) -> None:
        await database_sync_to_async(Bot.objects.filter(pk=acme_bot.pk).update)(
            allowed_origins=[SHOP, "https://blog.acme.test"]
        )
        token, _ = await make_token(acme_bot, origin="https://blog.acme.test")
        # A page on the shop presenting the blog's token.
        await expect_close(acme_bot, token, Close.ORIGIN_NOT_ALLOWED)

    async def test_token_whose_origin_was_removed_closes_with_4003(self, acme_bot: Bot) -> None:
        token, _ = await make_token(acme_bot)
        await database_sync_to_async(Bot.objects.filter(pk=acme_bot.pk).update)(
            allowed_origins=[SHOP, "https://other.acme.test"]
        )
        fresh = await database_sync_to_async(Bot.objects.get)(pk=acme_bot.pk)
        fresh.allowed_origins = ["https://other.acme.test"]
        await database_sync_to_async(fresh.save)()
        await expect_close(
            acme_bot, token, Close.ORIGIN_NOT_ALLOWED, origin="https://other.acme.test"
        )

    async def test_a_frame_before_hello_is_an_error_and_no_hello_closes(
        self, acme_bot: Bot, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from widget import consumers

        monkeypatch.setattr(consumers, "HELLO_TIMEOUT_SECONDS", 0.2)
        comm = connect(acme_bot)
        await comm.connect()
        await comm.send_json_to({"type": "message.send", "client_id": "x", "text": "hi"})
        error = await receive(comm)
        assert error["code"] == "not_ready"
        output = await comm.receive_output(timeout=3)
        assert output == {"type": "websocket.close", "code": Close.PROTOCOL, "reason": "protocol"}

    async def test_an_issued_token_is_accepted(self, acme_bot: Bot) -> None:
        _, visitor = await make_token(acme_bot)
        token, ttl = issue_session_token(acme_bot, visitor.public_id, SHOP)
        assert ttl == 900
        comm, ready = await hello(acme_bot, token)
        assert ready["visitor"]["id"] == visitor.public_id
        await comm.disconnect()


class TestBadFrames:
    async def _ready(self, bot: Bot):
        token, _ = await make_token(bot)
        comm, _ = await hello(bot, token)
        return comm

    async def test_a_1_mb_frame_closes_with_4009(self, acme_bot: Bot) -> None:
        comm = await self._ready(acme_bot)
        await comm.send_to(text_data="x" * (1024 * 1024))
        output = await comm.receive_output(timeout=5)
        assert output["type"] == "websocket.close" and output["code"] == Close.TOO_LARGE

    @pytest.mark.parametrize(
        ("payload", "code"),
        [
            ("{not json", "bad_request"),
            ("[1, 2]", "bad_request"),
            ('{"no": "type"}', "bad_request"),
            ('{"type": "launch.missiles"}', "unknown_type"),
            ("[" * 10_000 + "]" * 10_000, "bad_request"),
            ('{"type": "x", "a": ' + "[" * 40 + "]" * 40 + "}", "bad_request"),
            ('{"type": "message.send", "text": "\ud800"}', "bad_request"),
            ('{"type": "message.send", "client_id": "bad id!", "text": "hi"}', "bad_request"),
            ('{"type": "message.send", "client_id": "ok", "text": 5}', "bad_request"),
            (
                '{"type": "message.send", "client_id": "ok", "text": "' + "a" * 4001 + '"}',
                "bad_request",
            ),
            ('{"type": "feedback", "seq": 1, "value": "up"}', "not_found"),
            ('{"type": "conversation.open", "conversation": "c_nope"}', "not_found"),
        ],
    )
    async def test_bad_frames_get_an_error_frame_and_the_socket_stays_up(
        self, acme_bot: Bot, payload: str, code: str
    ) -> None:
        comm = await self._ready(acme_bot)
        await comm.send_to(text_data=payload)
        error = await receive(comm)
        assert error["type"] == "error" and error["code"] == code, error
        await comm.send_json_to({"type": "ping"})
        assert (await receive(comm))["type"] == "pong"
        await comm.disconnect()

    async def test_binary_frames_get_an_error_frame(self, acme_bot: Bot) -> None:
        comm = await self._ready(acme_bot)
        await comm.send_to(bytes_data=b"\xff\xfe\x00binary")
        error = await receive(comm)
        assert error == {**error, "type": "error", "code": "binary"}
        await comm.send_json_to({"type": "ping"})
        assert (await receive(comm))["type"] == "pong"
        await comm.disconnect()


class TestIsolation:
    async def test_a_visitor_cannot_open_another_visitors_conversation(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        token_a, _ = await make_token(acme_bot)
        comm_a, _ = await hello(acme_bot, token_a)
        await comm_a.send_json_to({"type": "message.send", "client_id": "a1", "text": "Private"})
        ack = await receive(comm_a)
        await actions.wait_for_replies()
        await comm_a.disconnect()

        token_b, _ = await make_token(acme_bot)
        comm_b = connect(acme_bot)
        await comm_b.connect()
        await comm_b.send_json_to(
            {"type": "hello", "token": token_b, "conversation": ack["conversation"]}
        )
        error = await receive(comm_b)
        assert error["type"] == "error" and error["code"] == "not_found"
        await comm_b.send_json_to({"type": "hello", "token": token_b})
        ready = await receive(comm_b)
        assert ready["conversation"] is None
        await comm_b.send_json_to({"type": "conversations.list"})
        listing = await receive(comm_b)
        assert listing == {"type": "conversations", "items": []}
        await comm_b.disconnect()


class TestRateLimits:
    async def test_the_visitor_limit_answers_with_a_retry_time(
        self, acme_bot: Bot, model: ScriptedModel, settings: object
    ) -> None:
        settings.WIDGET_RATE_LIMITS = {"send:visitor": (2, 60)}  # type: ignore[attr-defined]
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        for n in range(2):
            await comm.send_json_to({"type": "message.send", "client_id": f"m{n}", "text": "hi"})
            await receive_until(comm, lambda f: f["type"] == "ack")
        await comm.send_json_to({"type": "message.send", "client_id": "m3", "text": "hi"})
        frames = await receive_until(comm, lambda f: f["type"] == "error")
        error = frames[-1]
        assert error["code"] == "rate_limited" and 1 <= error["retry_after"] <= 60
        assert error["client_id"] == "m3"
        await actions.wait_for_replies()
        assert await database_sync_to_async(Message.objects.filter(role="visitor").count)() == 2
        await comm.disconnect()

    async def test_the_connection_limit_closes_with_4029(
        self, acme_bot: Bot, settings: object
    ) -> None:
        settings.WIDGET_RATE_LIMITS = {"connect:ip": (1, 60)}  # type: ignore[attr-defined]
        first = connect(acme_bot)
        assert (await first.connect())[0]
        second = connect(acme_bot)
        await second.connect()
        output = await second.receive_output(timeout=5)
        assert output["type"] == "websocket.close" and output["code"] == Close.RATE_LIMITED
        assert output["reason"].startswith("rate_limited:")
        await first.disconnect()


class TestConversations:
    async def test_feedback_new_list_and_reopen(self, acme_bot: Bot, model: ScriptedModel) -> None:
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "First"})
        first = (await receive_until(comm, lambda f: f["type"] == "ack"))[-1]
        await receive_until(comm, is_final_reply)

        await comm.send_json_to({"type": "feedback", "seq": 2, "value": "up"})
        rated = await receive_until(comm, lambda f: f["type"] == "message")
        assert rated[-1]["message"]["feedback"] == "up"
        await comm.send_json_to({"type": "feedback", "seq": 1, "value": "up"})
        assert (await receive_until(comm, lambda f: f["type"] == "error"))[-1]["code"] == (
            "not_found"
        )  # only replies take feedback

        await comm.send_json_to({"type": "conversation.new"})
        ready = (await receive_until(comm, lambda f: f["type"] == "ready"))[-1]
        assert ready["conversation"]["id"] != first["conversation"]
        assert ready["last_seq"] == 0

        await comm.send_json_to({"type": "conversations.list"})
        listing = (await receive_until(comm, lambda f: f["type"] == "conversations"))[-1]
        ids = [item["id"] for item in listing["items"]]
        assert ids == [ready["conversation"]["id"], first["conversation"]]
        assert listing["items"][1]["preview"] == "Hello from Acme!"

        await comm.send_json_to(
            {"type": "conversation.open", "conversation": first["conversation"]}
        )
        frames = await receive_until(comm, lambda f: f.get("message", {}).get("seq") == 2)
        assert frames[0]["type"] == "ready" and frames[0]["last_seq"] == 2
        await actions.wait_for_replies()
        await comm.disconnect()

    async def test_a_refreshed_token_keeps_the_socket(self, acme_bot: Bot) -> None:
        token, visitor = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        fresh, _ = await database_sync_to_async(session_token)(acme_bot, visitor=visitor)
        await comm.send_json_to({"type": "token.refresh", "token": fresh})
        await comm.send_json_to({"type": "ping"})
        assert (await receive(comm))["type"] == "pong"
        other, _ = await make_token(acme_bot)  # another visitor's token
        await comm.send_json_to({"type": "token.refresh", "token": other})
        error = await receive(comm)
        assert error["code"] == "bad_request"
        await comm.disconnect()

    async def test_typing_reaches_the_other_tabs_not_the_sender(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        token, _ = await make_token(acme_bot)
        tab1, _ = await hello(acme_bot, token)
        await tab1.send_json_to({"type": "message.send", "client_id": "c1", "text": "Hi"})
        ack = (await receive_until(tab1, lambda f: f["type"] == "ack"))[-1]
        await receive_until(tab1, is_final_reply)
        tab2, _ = await hello(acme_bot, token, conversation=ack["conversation"], resume_after_seq=2)
        await tab1.send_json_to({"type": "typing"})
        assert await receive(tab2) == {"type": "typing", "who": "visitor"}
        assert await tab1.receive_nothing(0.2)
        await actions.wait_for_replies()
        await tab1.disconnect()
        await tab2.disconnect()

    async def test_a_handoff_stops_the_bot_answering(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Hi"})
        await receive_until(comm, is_final_reply)
        await comm.send_json_to({"type": "handoff.request"})
        system = (
            await receive_until(comm, lambda f: f.get("message", {}).get("role") == "system")
        )[-1]
        assert system["message"]["text"] == "handoff.requested"
        await comm.send_json_to({"type": "message.send", "client_id": "c2", "text": "Hello?"})
        await receive_until(comm, lambda f: f["type"] == "ack")
        await actions.wait_for_replies()
        assert model.calls == 1
        assert (
            await database_sync_to_async(Conversation.objects.filter(status="waiting").count)() == 1
        )
        await comm.disconnect()


class TestSharedLimits:
    @pytest.mark.parametrize("scope", ["send:ip", "send:bot"])
    async def test_ip_and_bot_limits_apply_across_visitors(
        self, acme_bot: Bot, model: ScriptedModel, settings: object, scope: str
    ) -> None:
        settings.WIDGET_RATE_LIMITS = {scope: (1, 60)}  # type: ignore[attr-defined]
        first_token, _ = await make_token(acme_bot)
        first, _ = await hello(acme_bot, first_token)
        await first.send_json_to({"type": "message.send", "client_id": "a", "text": "hi"})
        await receive_until(first, lambda f: f["type"] == "ack")
        second_token, _ = await make_token(acme_bot)
        second, _ = await hello(acme_bot, second_token)
        await second.send_json_to({"type": "message.send", "client_id": "b", "text": "hi"})
        error = (await receive_until(second, lambda f: f["type"] == "error"))[-1]
        assert error["code"] == "rate_limited" and error["retry_after"] >= 1
        await actions.wait_for_replies()
        await first.disconnect()
        await second.disconnect()


@pytest.mark.redis
class TestRedisLayer:
    async def test_an_idle_socket_outlives_the_redis_read_timeout(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        # channels_redis blocks 5 s per BZPOPMIN; a socket timeout at or below that (redis-py
        # 8's default) tore every idle consumer down after ~5 s.
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "r1", "text": "Hi"})
        await receive_until(comm, is_final_reply)
        await asyncio.sleep(7)
        await comm.send_json_to({"type": "ping"})
        assert (await receive(comm))["type"] == "pong"
        await actions.wait_for_replies()
        await comm.disconnect()


class TestPageUpdates:
    async def test_a_page_frame_on_the_site_is_kept_and_another_site_refused(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        from chatbot.conversations.models import Visitor

        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "page", "url": SHOP + "/checkout?step=2"})
        assert await comm.receive_nothing(0.2)
        visitor = await Visitor.objects.filter(bot=acme_bot).afirst()
        assert visitor is not None and visitor.page_url == SHOP + "/checkout?step=2"
        for bad in ("https://evil.example/x", SHOP + ".evil.example/x", 42, "x" * 600):
            await comm.send_json_to({"type": "page", "url": bad})
            error = await receive(comm)
            assert error["type"] == "error" and error["code"] == "bad_request"
        await comm.disconnect()


async def test_a_first_message_asking_for_a_person_gets_the_handoff_answer(
    acme_bot: Bot,
) -> None:
    """The handoff is announced before the socket follows the conversation that message
    created: the answer comes with the send's own frames instead of being lost (the visitor
    would see "typing…" forever)."""
    token, _visitor = await make_token(acme_bot)
    comm, _ready = await hello(acme_bot, token)
    await comm.send_json_to(
        {"type": "message.send", "client_id": "c1", "text": "Can I talk to a person?"}
    )
    frames = await receive_until(comm, lambda f: f["type"] == "conversation")
    system = [f["message"] for f in frames if f["type"] == "message" and f["message"]["seq"] == 2]
    assert system and system[0]["role"] == "system" and system[0]["text"] == "handoff.requested"
    assert frames[-1]["conversation"]["status"] == "waiting"
    await comm.disconnect()
