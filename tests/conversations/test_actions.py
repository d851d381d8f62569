"""Conversation actions: stored once per client_id, seq under a lock, broadcasts after commit."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.actions import ActionError
from chatbot.conversations.models import Conversation, Message, MessageStatus, Status
from chatbot.tenants.models import Tenant


@pytest.fixture
def bot(acme: Tenant) -> Bot:
    return Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=["https://a.test"])


class TestReceive:
    def test_the_message_is_stored_and_announced_after_commit(
        self, bot: Bot, django_capture_on_commit_callbacks: Any
    ) -> None:
        visitor = actions.open_visitor(bot)
        with (
            mock.patch("chatbot.conversations.actions.broadcast") as sent,
            django_capture_on_commit_callbacks(execute=True),
        ):
            received = actions.receive_visitor_message(
                visitor, None, client_id="c1", text="  Hello  "
            )
            assert sent.call_count == 0  # nothing announced before the commit
        assert sent.call_count == 1
        conversation_id, event = sent.call_args.args
        assert conversation_id == received.conversation.pk
        assert event["type"] == "message" and event["message"]["seq"] == 1
        assert received.message.text == "Hello" and received.message.seq == 1
        assert received.reply_wanted and not received.duplicate

    def test_a_duplicate_client_id_returns_the_first_row(self, bot: Bot) -> None:
        visitor = actions.open_visitor(bot)
        first = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi")
        again = actions.receive_visitor_message(
            visitor, first.conversation, client_id="c1", text="Hi"
        )
        assert again.duplicate and again.message.pk == first.message.pk
        assert not again.reply_wanted
        assert Message.objects.count() == 1

    def test_client_ids_are_per_visitor(self, bot: Bot) -> None:
        one, two = actions.open_visitor(bot), actions.open_visitor(bot)
        a = actions.receive_visitor_message(one, None, client_id="same", text="Hi")
        b = actions.receive_visitor_message(two, None, client_id="same", text="Hi")
        assert not b.duplicate and a.conversation.pk != b.conversation.pk

    def test_a_closed_conversation_refuses_messages(self, bot: Bot) -> None:
        visitor = actions.open_visitor(bot)
        first = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi")
        Conversation.objects.filter(pk=first.conversation.pk).update(status=Status.CLOSED)
        with pytest.raises(ActionError) as caught:
            actions.receive_visitor_message(
                visitor, first.conversation, client_id="c2", text="Still there?"
            )
        assert caught.value.code == "conversation_closed"

    def test_another_visitors_conversation_is_not_found(self, bot: Bot) -> None:
        owner, intruder = actions.open_visitor(bot), actions.open_visitor(bot)
        first = actions.receive_visitor_message(owner, None, client_id="c1", text="Hi")
        with pytest.raises(ActionError) as caught:
            actions.receive_visitor_message(
                intruder, first.conversation, client_id="c2", text="Let me in"
            )
        assert caught.value.code == "not_found"

    def test_a_waiting_conversation_stores_but_does_not_reply(self, bot: Bot) -> None:
        visitor = actions.open_visitor(bot)
        first = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi")
        actions.request_handoff(visitor, first.conversation)
        second = actions.receive_visitor_message(
            visitor, first.conversation, client_id="c2", text="Hello?"
        )
        assert second.message.seq == 3  # 2 is the system note of the handoff
        assert not second.reply_wanted


class TestReplies:
    def test_the_sweep_settles_replies_of_a_dead_process(self, bot: Bot) -> None:
        visitor = actions.open_visitor(bot)
        first = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi")
        reply = actions.create_reply_message(first.conversation.pk)
        assert reply is not None
        actions.save_partial_reply(reply.pk, "Half")
        Message.objects.filter(pk=reply.pk).update(
            updated_at=timezone.now() - timedelta(minutes=11)
        )
        assert actions.sweep_stale_replies() == 1
        reply.refresh_from_db()
        assert (reply.status, reply.text, reply.error_code) == (
            MessageStatus.INCOMPLETE,
            "Half",
            "interrupted",
        )
        assert actions.sweep_stale_replies() == 0

    def test_no_reply_row_once_an_agent_owns_the_conversation(self, bot: Bot) -> None:
        visitor = actions.open_visitor(bot)
        first = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi")
        Conversation.objects.filter(pk=first.conversation.pk).update(status=Status.AGENT)
        assert actions.create_reply_message(first.conversation.pk) is None


@pytest.mark.django_db(transaction=True)
class TestConcurrency:
    def test_concurrent_writers_never_share_a_seq(self, bot: Bot) -> None:
        visitor = actions.open_visitor(bot)
        conversation = actions.start_conversation(visitor)
        errors: list[BaseException] = []

        def send(n: int) -> None:
            try:
                for i in range(5):
                    actions.receive_visitor_message(
                        visitor, conversation, client_id=f"t{n}-{i}", text=f"{n}/{i}"
                    )
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        seqs = sorted(
            Message.objects.filter(conversation=conversation).values_list("seq", flat=True)
        )
        assert seqs == list(range(1, 21))
        conversation.refresh_from_db()
        assert conversation.last_seq == 20

    def test_the_same_client_id_sent_concurrently_is_stored_once(self, bot: Bot) -> None:
        visitor = actions.open_visitor(bot)
        conversation = actions.start_conversation(visitor)
        results: list[bool] = []

        def send() -> None:
            try:
                results.append(
                    actions.receive_visitor_message(
                        visitor, conversation, client_id="same", text="Hi"
                    ).duplicate
                )
            finally:
                connection.close()

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Message.objects.filter(conversation=conversation).count() == 1
        assert sorted(results) == [False, True, True, True]
