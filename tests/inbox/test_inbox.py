"""The inbox pages: list, filters, search, transcript, roles, takeover, export, erase."""

from __future__ import annotations

import csv
import io
import json
from datetime import time, timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chatbot.bots.models import Bot
from chatbot.conversations import actions, replies, takeover
from chatbot.conversations.models import (
    Attachment,
    CannedResponse,
    Conversation,
    InboxSettings,
    Message,
    Role,
    Status,
    Visitor,
)
from chatbot.conversations.search import InboxFilter, filter_conversations
from chatbot.tenants.models import AuditEvent, Tenant, User
from tests.inbox.helpers import chat, transcript

pytestmark = pytest.mark.django_db


def ids(queryset: Any) -> set[str]:
    return set(queryset.values_list("public_id", flat=True))


class TestSearchAndFilters:
    def test_full_text_search_finds_words_in_any_message(self, acme: Tenant, bot: Bot) -> None:
        refund = chat(bot, "Hello", "I want a refund for my blue jacket")
        other = chat(bot, "What are your opening times?")
        search = lambda q: ids(filter_conversations(acme, InboxFilter(query=q)))  # noqa: E731
        assert search("refund") == {refund.public_id}
        assert search("REFUND jacket") == {refund.public_id}
        assert search("refu") == {refund.public_id}  # prefixes match while typing
        assert search("opening") == {other.public_id}
        assert search("refund opening") == set()  # every word must match in one message
        assert search("happy") == {refund.public_id, other.public_id}  # the bot's words too

    def test_search_text_with_query_syntax_is_taken_as_words(self, acme: Tenant, bot: Bot) -> None:
        chat(bot, 'He said "refund" OR NOT* (now)')
        for hostile in ['"', "refund*", "NOT", "a' OR 1=1 --", "(", "refund OR", "^~:&|!"]:
            # Never a database error; the words (if any) are searched literally.
            list(filter_conversations(acme, InboxFilter(query=hostile)))
        assert len(ids(filter_conversations(acme, InboxFilter(query='"refund" OR')))) == 1

    def test_search_follows_edits_and_deletes(self, acme: Tenant, bot: Bot) -> None:
        conversation = chat(bot, "alpha", reply=None)
        Message.objects.filter(conversation=conversation).update(text="omega")
        assert ids(filter_conversations(acme, InboxFilter(query="alpha"))) == set()
        assert ids(filter_conversations(acme, InboxFilter(query="omega"))) == {
            conversation.public_id
        }

    def test_it_hides_other_tenants_conversations_from_search(
        self, acme: Tenant, bravo: Tenant, bot: Bot, bravo_bot: Bot
    ) -> None:
        chat(bravo_bot, "secret refund at bravo")
        assert ids(filter_conversations(acme, InboxFilter(query="refund"))) == set()
        assert len(ids(filter_conversations(bravo, InboxFilter(query="refund")))) == 1

    def test_filters_by_bot_status_identity_rating_and_dates(
        self, acme: Tenant, bot: Bot, alice: User
    ) -> None:
        second_bot = Bot.objects.create(tenant=acme, name="Second")
        plain = chat(bot, "one")
        waiting = chat(bot, "two")
        actions.request_handoff(waiting.visitor, waiting)
        identified = chat(second_bot, "three", verified=True, external_id="u1", name="Dana")
        rated = chat(bot, "four")
        reply = Message.objects.get(conversation=rated, role=Role.ASSISTANT)
        actions.set_feedback(rated.visitor, rated, reply.seq, "down")
        old = chat(bot, "five")
        Conversation.objects.filter(pk=old.pk).update(
            created_at=timezone.now() - timedelta(days=40),
            updated_at=timezone.now() - timedelta(days=40),
        )

        def f(**kwargs: Any) -> set[str]:
            return ids(filter_conversations(acme, InboxFilter(**kwargs)))

        assert f(bot_id=second_bot.pk) == {identified.public_id}
        assert f(status="waiting") == {waiting.public_id}
        assert f(identity="identified") == {identified.public_id}
        assert identified.public_id not in f(identity="anonymous")
        assert f(rating="down") == {rated.public_id}
        assert f(rating="up") == set()
        today = timezone.now().date()
        assert old.public_id not in f(date_from=today - timedelta(days=1))
        assert f(date_to=today - timedelta(days=30)) == {old.public_id}
        assert plain.public_id in f()


class TestListPage:
    def test_an_agent_sees_the_list_and_the_waiting_count(
        self, client_for: Any, charlie: User, bot: Bot
    ) -> None:
        waiting = chat(bot, "I need a human, please", reply=None)
        assert Conversation.objects.get(pk=waiting.pk).status == Status.WAITING
        chat(bot, "Just browsing")
        response = client_for(charlie).get("/conversations/")
        assert response.status_code == 200
        body = response.content.decode()
        assert "1 waiting for a person" in body
        assert waiting.public_id in body
        assert (
            "Content-Security-Policy" in response
            and "frame-ancestors 'none'" in response["Content-Security-Policy"]
        )
        # Agents do not get the export links.
        assert "/conversations/export/" not in body

    def test_the_list_filters_through_the_query_string(
        self, client_for: Any, alice: User, bot: Bot
    ) -> None:
        refund = chat(bot, "refund please")
        other = chat(bot, "hello")
        body = client_for(alice).get("/conversations/", {"q": "refund"}).content.decode()
        assert refund.public_id in body and other.public_id not in body
        fragment = client_for(alice).get("/conversations/", {"fragment": "list"}).content.decode()
        assert "<html" not in fragment and refund.public_id in fragment

    def test_the_query_count_does_not_grow_with_the_page_size(
        self, client_for: Any, alice: User, acme: Tenant, bot: Bot
    ) -> None:
        visitors = Visitor.objects.bulk_create(
            Visitor(bot=bot, name=f"V{i}", verified=i % 3 == 0, external_id=f"x{i}")
            for i in range(1050)
        )
        conversations = Conversation.objects.bulk_create(
            Conversation(bot=bot, visitor=v, last_seq=2) for v in visitors
        )
        Message.objects.bulk_create(
            m
            for c in conversations
            for m in (
                Message(conversation=c, seq=1, role=Role.VISITOR, text=f"question {c.pk}"),
                Message(conversation=c, seq=2, role=Role.ASSISTANT, text="answer"),
            )
        )
        assert Conversation.objects.for_tenant(acme).count() >= 1000
        client = client_for(alice)
        counts = {}
        for size in (25, 100):
            with CaptureQueriesContext(connection) as queries:
                response = client.get("/conversations/", {"size": size, "page": 2})
            assert response.status_code == 200
            assert response.content.decode().count("data-conversation-id=") == size
            counts[size] = len(queries)
        assert counts[25] == counts[100], counts
        with CaptureQueriesContext(connection) as queries:
            client.get("/conversations/", {"size": 100, "q": "question", "status": "bot"})
        assert len(queries) == counts[100]


class TestConversationPage:
    def test_the_transcript_shows_times_reply_details_and_the_visitor(
        self, client_for: Any, charlie: User, bot: Bot
    ) -> None:
        conversation = chat(
            bot,
            "Hello **there**",
            reply="Hi! **Welcome** &amp; thanks",
            page_url="https://shop.test/cart",
            locale="fr",
            user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 "
            "Firefox/128.0",
        )
        reply = Message.objects.get(conversation=conversation, role=Role.ASSISTANT)
        actions.set_feedback(conversation.visitor, conversation, reply.seq, "up")
        body = client_for(charlie).get(f"/conversations/{conversation.public_id}/").content
        text = body.decode()
        # The visitor's text as they typed and saw it (plain); the bot's as markdown.
        assert "Hello **there**</div>" in text and "<strong>there</strong>" not in text
        assert "<strong>Welcome</strong> &amp; thanks" in text
        assert "tiny-llama" in text and "12 in / 7 out tokens" in text
        assert "first token 40 ms" in text and "rated helpful" in text
        assert "https://shop.test/cart" in text and "Firefox 128 on Windows" in text
        assert "Anonymous" in text

    def test_hostile_text_is_rendered_inert(self, client_for: Any, alice: User, bot: Bot) -> None:
        conversation = chat(
            bot,
            "<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>",
            reply="![pic](https://evil.test/p.png) <svg onload=alert(4)> [ok](https://ok.test)",
        )
        page = client_for(alice).get(f"/conversations/{conversation.public_id}/").content.decode()
        text = page[page.index('<ol class="transcript"') : page.index("</ol>")]
        assert "alert(1)" in text  # shown as text
        assert "<script>alert" not in text and "<img" not in text and "<svg" not in text
        assert "javascript:" not in text.replace("[x](javascript:alert(2))", "")
        assert 'href="https://ok.test" rel="noopener noreferrer"' in text


class TestTakeover:
    def test_an_agent_takes_over_and_the_visitor_sees_who_joined(
        self, client_for: Any, charlie: User, bot: Bot, django_capture_on_commit_callbacks: Any
    ) -> None:
        conversation = chat(bot, "Hi")
        with (
            mock.patch("chatbot.conversations.takeover.broadcast") as sent,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = client_for(charlie).post(
                f"/conversations/{conversation.public_id}/takeover/"
            )
        assert response.status_code == 302
        conversation.refresh_from_db()
        assert conversation.status == Status.AGENT and conversation.assignee_id == charlie.pk
        joined = Message.objects.filter(conversation=conversation).order_by("-seq").first()
        assert joined is not None and (joined.role, joined.text) == (Role.SYSTEM, "agent.joined")
        events = [call.args[1] for call in sent.call_args_list]
        message_events = [e for e in events if e["type"] == "message"]
        assert message_events[0]["message"]["author"] == "Charlie"
        assert events[-1]["type"] == "conversation"
        assert events[-1]["conversation"]["status"] == "agent"

    def test_the_bot_stops_answering_and_agent_messages_are_stored(
        self, charlie: User, bot: Bot
    ) -> None:
        conversation = chat(bot, "Hi")
        takeover.take_over(conversation, charlie)
        received = actions.receive_visitor_message(
            conversation.visitor, conversation, client_id="later", text="Are you there?"
        )
        assert not received.reply_wanted
        assert actions.create_reply_message(conversation.pk) is None
        takeover.agent_reply(conversation, charlie, "Yes, Charlie here.")
        takeover.add_note(conversation, charlie, "Customer is upset about shipping")
        assert transcript(conversation)[-2:] == [
            (Role.AGENT, "Yes, Charlie here."),
            (Role.NOTE, "Customer is upset about shipping"),
        ]

    def test_notes_never_reach_the_visitor(self, charlie: User, bot: Bot) -> None:
        from widget.session import WidgetSession

        conversation = chat(bot, "Hi")
        note = takeover.add_note(conversation, charlie, "internal only")
        session = WidgetSession(bot, conversation.visitor, mock.Mock(), "1.2.3.4")
        session.conversation = conversation
        from chatbot.conversations.payloads import message_payload

        assert session.filter_event({"type": "message", "message": message_payload(note)}) is None
        replayed = session.sync_ready(0)
        assert all(e.get("message", {}).get("role") != Role.NOTE for e in replayed)

    def test_hand_back_puts_the_human_replies_in_the_bots_context(
        self, charlie: User, bot: Bot
    ) -> None:
        conversation = chat(bot, "Hi")
        takeover.take_over(conversation, charlie)
        takeover.agent_reply(conversation, charlie, "Your order ships Tuesday.")
        takeover.add_note(conversation, charlie, "do not tell the bot this")
        takeover.hand_back(conversation, charlie)
        conversation.refresh_from_db()
        assert conversation.status == Status.BOT
        received = actions.receive_visitor_message(
            conversation.visitor, conversation, client_id="after", text="Thanks, and returns?"
        )
        assert received.reply_wanted
        history = replies._load_context(conversation.pk).history
        texts = [(m.role, m.parts[0].text) for m in history]  # type: ignore[union-attr]
        assert ("assistant", "Your order ships Tuesday.") in texts
        assert all("do not tell" not in text for _, text in texts)
        assert texts[-1] == ("user", "Thanks, and returns?")

    def test_close_and_reopen(self, client_for: Any, charlie: User, bot: Bot) -> None:
        conversation = chat(bot, "Hi")
        client = client_for(charlie)
        client.post(f"/conversations/{conversation.public_id}/close/")
        conversation.refresh_from_db()
        assert conversation.status == Status.CLOSED and conversation.closed_at is not None
        with pytest.raises(actions.ActionError):
            actions.receive_visitor_message(
                conversation.visitor, conversation, client_id="x", text="hello?"
            )
        response = client.post(f"/conversations/{conversation.public_id}/reply/", {"text": "hi"})
        assert response.status_code == 302
        assert not Message.objects.filter(conversation=conversation, role=Role.AGENT).exists()
        client.post(f"/conversations/{conversation.public_id}/reopen/")
        conversation.refresh_from_db()
        assert conversation.status == Status.AGENT and conversation.assignee_id == charlie.pk

    def test_assign_to_a_teammate_and_never_to_another_tenants_user(
        self, client_for: Any, alice: User, charlie: User, bob: User, bot: Bot
    ) -> None:
        conversation = chat(bot, "Hi")
        client = client_for(alice)
        url = f"/conversations/{conversation.public_id}/assign/"
        assert client.post(url, {"user": charlie.pk}).status_code == 302
        conversation.refresh_from_db()
        assert conversation.assignee_id == charlie.pk
        # Bob's id in the body answers like a missing user, and nothing changes.
        foreign = client.post(url, {"user": bob.pk})
        missing = client.post(url, {"user": 2_000_000_000})
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
        conversation.refresh_from_db()
        assert conversation.assignee_id == charlie.pk

    def test_bravo_cannot_act_on_acme_ids_in_paths(
        self, client_for: Any, bob: User, bot: Bot
    ) -> None:
        conversation = chat(bot, "Hi")
        client = client_for(bob)
        for action in ("", "takeover/", "close/", "export/"):
            url = f"/conversations/{conversation.public_id}/{action}"
            response = client.post(url) if action in ("takeover/", "close/") else client.get(url)
            assert response.status_code == 404, url
        assert (
            client.get(
                f"/conversations/visitors/{conversation.visitor.public_id}/export/"
            ).status_code
            == 404
        )
        assert conversation.public_id not in client.get("/conversations/").content.decode()
        conversation.refresh_from_db()
        assert conversation.status == Status.BOT


class TestHandoffRequests:
    @pytest.mark.parametrize(
        "text",
        [
            "Can I talk to a human?",
            "I want to speak with a real person",
            "agent",
            "Je voudrais parler à un conseiller",
        ],
    )
    def test_a_typed_request_for_a_person_is_a_handoff(self, bot: Bot, text: str) -> None:
        conversation = chat(bot, text, reply=None)
        assert conversation.status == Status.WAITING
        assert transcript(conversation)[-1] == (Role.SYSTEM, "handoff.requested")

    @pytest.mark.parametrize(
        "text",
        ["How do agents of change work?", "Is a person size M ok?", "Can I talk to someone?"],
    )
    def test_ordinary_questions_are_not_handoffs(self, bot: Bot, text: str) -> None:
        assert chat(bot, text, reply=None).status == Status.BOT

    def test_outside_office_hours_the_visitor_is_asked_for_an_email(
        self, acme: Tenant, bot: Bot
    ) -> None:
        acme.timezone = "Europe/Paris"
        acme.save()
        InboxSettings.objects.create(
            tenant=acme,
            office_hours_enabled=True,
            office_days=[1, 2, 3, 4, 5],
            office_start=time(9),
            office_end=time(17),
            offline_message="We are closed. Leave your email.",
        )
        # Saturday 12:00 in Paris: closed. Tuesday 10:00 in Paris: open.
        saturday = timezone.datetime(2026, 11, 28, 11, 0, tzinfo=timezone.UTC)
        tuesday = timezone.datetime(2026, 11, 24, 9, 0, tzinfo=timezone.UTC)
        assert not takeover.live_chat_open(acme, saturday)
        assert takeover.live_chat_open(acme, tuesday)
        with mock.patch("chatbot.conversations.takeover.timezone.now", return_value=saturday):
            conversation = chat(bot, "Talk to a person please", reply=None)
        assert transcript(conversation)[-1] == (Role.SYSTEM, "We are closed. Leave your email.")
        actions.receive_visitor_message(
            conversation.visitor, conversation, client_id="mail", text="sure: dana@example.org"
        )
        conversation.refresh_from_db()
        assert conversation.followup_email == "dana@example.org"
        assert transcript(conversation)[-1] == (
            Role.SYSTEM,
            "Thank you. We will reply to dana@example.org.",
        )

    def test_the_team_is_emailed_when_email_is_configured(
        self,
        bot: Bot,
        alice: User,
        charlie: User,
        settings: Any,
        mailoutbox: Any,
        django_capture_on_commit_callbacks: Any,
        monkeypatch: Any,
    ) -> None:
        from chatbot.celery import app

        settings.EMAIL_CONFIGURED = True
        # Run the task here (with REDIS_URL set it would go to a worker: see test_worker.py).
        monkeypatch.setitem(app.conf, "task_always_eager", True)
        conversation = chat(bot, "Hi")
        with django_capture_on_commit_callbacks(execute=True):
            actions.request_handoff(conversation.visitor, conversation)
        assert len(mailoutbox) == 1
        assert sorted(mailoutbox[0].to) == ["alice@acme.test", "charlie@acme.test"]
        assert f"/conversations/{conversation.public_id}/" in mailoutbox[0].body

    def test_no_email_without_email_configured(
        self,
        bot: Bot,
        alice: User,
        settings: Any,
        mailoutbox: Any,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        settings.EMAIL_CONFIGURED = False
        conversation = chat(bot, "Hi")
        with django_capture_on_commit_callbacks(execute=True):
            actions.request_handoff(conversation.visitor, conversation)
        assert mailoutbox == []


class TestExportAndErase:
    def test_an_owner_exports_one_conversation_as_json_and_csv(
        self, client_for: Any, alice: User, bot: Bot
    ) -> None:
        conversation = chat(bot, '=HYPERLINK("https://evil.test")', "second question")
        client = client_for(alice)
        response = client.get(f"/conversations/{conversation.public_id}/export/")
        assert response["Content-Disposition"].startswith("attachment;")
        data = json.loads(b"".join(response.streaming_content))
        [exported] = data["conversations"]
        assert exported["id"] == conversation.public_id
        assert [m["role"] for m in exported["messages"]] == [
            "visitor",
            "assistant",
            "visitor",
            "assistant",
        ]
        assert exported["messages"][1]["model"] == "tiny-llama"
        response = client.get(f"/conversations/{conversation.public_id}/export/?format=csv")
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert len(rows) == 4 and rows[0]["text"].startswith("'=HYPERLINK")
        events = AuditEvent.objects.filter(action="conversation.exported")
        assert events.count() == 2 and events.first().target == conversation.public_id  # type: ignore[union-attr]

    def test_csv_cells_people_named_cannot_run_as_formulas(
        self, client_for: Any, alice: User, charlie: User, bot: Bot
    ) -> None:
        # A bot name, an agent's address and a model name are chosen by people too.
        Bot.objects.filter(pk=bot.pk).update(name='=HYPERLINK("https://evil.test")')
        bot.refresh_from_db()
        User.objects.filter(pk=charlie.pk).update(email="+cmd@acme.test")
        charlie.refresh_from_db()
        conversation = chat(bot, "Hi")
        takeover.take_over(conversation, charlie)
        takeover.agent_reply(conversation, charlie, "-2+3")
        Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).update(
            model="@SUM(1)"
        )
        response = client_for(alice).get(
            f"/conversations/{conversation.public_id}/export/?format=csv"
        )
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert {row["bot"] for row in rows} == {'\'=HYPERLINK("https://evil.test")'}
        [agent_row] = [row for row in rows if row["role"] == "agent"]
        assert agent_row["author"] == "'+cmd@acme.test" and agent_row["text"] == "'-2+3"
        [model_row] = [row for row in rows if row["role"] == "assistant"]
        assert model_row["model"] == "'@SUM(1)"

    def test_a_filtered_set_exports_only_what_matches(
        self, client_for: Any, alice: User, bot: Bot
    ) -> None:
        refund = chat(bot, "refund")
        chat(bot, "other")
        response = client_for(alice).get("/conversations/export/", {"q": "refund"})
        data = json.loads(b"".join(response.streaming_content))
        assert [c["id"] for c in data["conversations"]] == [refund.public_id]
        event = AuditEvent.objects.get(action="conversation.exported")
        assert event.details["count"] == 1 and "q=refund" in event.details["filters"]

    def test_agents_cannot_export_or_erase(self, client_for: Any, charlie: User, bot: Bot) -> None:
        conversation = chat(bot, "Hi")
        client = client_for(charlie)
        visitor_id = conversation.visitor.public_id
        assert client.get(f"/conversations/{conversation.public_id}/export/").status_code == 403
        assert client.get("/conversations/export/").status_code == 403
        assert client.get(f"/conversations/visitors/{visitor_id}/export/").status_code == 403
        erase = client.post(f"/conversations/visitors/{visitor_id}/erase/", {"confirm": visitor_id})
        assert erase.status_code == 403
        assert Visitor.objects.filter(public_id=visitor_id).exists()

    def test_erasing_a_visitor_removes_everything_and_is_audited(
        self, client_for: Any, alice: User, bot: Bot, django_capture_on_commit_callbacks: Any
    ) -> None:
        visitor = actions.open_visitor(bot)
        Visitor.objects.filter(pk=visitor.pk).update(name="Dana", email="dana@example.org")
        first = chat(bot, "one", visitor=visitor)
        chat(bot, "two", visitor=Visitor.objects.get(pk=visitor.pk))
        stored = default_storage.save("widget-attachments/test/a.png", io.BytesIO(b"png"))
        Attachment.objects.create(
            bot=bot,
            visitor=visitor,
            message=Message.objects.filter(conversation=first).first(),
            content_type="image/png",
            size=3,
            width=1,
            height=1,
            sha256="0" * 64,
            stored_name=stored,
        )
        client = client_for(alice)
        exported = client.get(f"/conversations/visitors/{visitor.public_id}/export/").json()
        assert exported["visitor"]["email"] == "dana@example.org"
        assert len(exported["conversations"]) == 2
        url = f"/conversations/visitors/{visitor.public_id}/erase/"
        assert client.post(url, {"confirm": "wrong"}).status_code == 302
        assert Visitor.objects.filter(pk=visitor.pk).exists()
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(url, {"confirm": visitor.public_id}).status_code == 302
        assert not Visitor.objects.filter(pk=visitor.pk).exists()
        assert not Conversation.objects.filter(visitor_id=visitor.pk).exists()
        assert not Message.objects.filter(conversation__visitor_id=visitor.pk).exists()
        assert not Attachment.objects.filter(visitor_id=visitor.pk).exists()
        assert not default_storage.exists(stored)
        event = AuditEvent.objects.get(action="visitor.erased")
        assert event.target == visitor.public_id and event.details["conversations"] == 2
        assert "dana" not in json.dumps(event.details)


class TestRetention:
    def test_old_conversations_are_purged_in_batches_and_new_ones_kept(
        self,
        acme: Tenant,
        bravo: Tenant,
        bot: Bot,
        bravo_bot: Bot,
        monkeypatch: Any,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        from chatbot.conversations import retention

        monkeypatch.setattr(retention, "BATCH_SIZE", 2)
        InboxSettings.objects.create(tenant=acme, retention_days=30)
        old = [chat(bot, f"old {i}") for i in range(5)]
        fresh = chat(bot, "fresh")
        bravo_old = chat(bravo_bot, "bravo keeps forever")
        long_ago = timezone.now() - timedelta(days=31)
        Conversation.objects.filter(pk__in=[c.pk for c in [*old, bravo_old]]).update(
            updated_at=long_ago
        )
        with django_capture_on_commit_callbacks(execute=True):
            purged = retention.purge_expired()
        assert purged == {acme.pk: 5}
        assert set(Conversation.objects.values_list("pk", flat=True)) == {fresh.pk, bravo_old.pk}
        assert retention.purge_expired() == {}  # idempotent

    def test_the_settings_page_offers_retention_and_office_hours(
        self, client_for: Any, alice: User, acme: Tenant
    ) -> None:
        client = client_for(alice)
        page = client.get("/dashboard/settings/").content.decode()
        assert "Data retention" in page and "Office hours" in page
        response = client.post(
            "/dashboard/settings/", {"section": "retention", "retention-retention_days": "90"}
        )
        assert response.status_code == 302
        assert InboxSettings.objects.get(tenant=acme).retention_days == 90
        bad = client.post(
            "/dashboard/settings/",
            {"section": "office_hours", "office_hours-office_hours_enabled": "on"},
        )
        assert bad.status_code == 400 and "Pick the days" in bad.content.decode()


class TestCannedResponses:
    def test_managers_add_them_and_agents_use_them(
        self, client_for: Any, alice: User, charlie: User, acme: Tenant, bot: Bot
    ) -> None:
        response = client_for(alice).post(
            "/conversations/canned/", {"shortcut": "ship", "text": "Orders ship in 2 days."}
        )
        assert response.status_code == 302
        assert (
            client_for(charlie)
            .post("/conversations/canned/", {"shortcut": "x", "text": "y"})
            .status_code
            == 403
        )
        conversation = chat(bot, "Hi")
        page = client_for(charlie).get(f"/conversations/{conversation.public_id}/")
        assert "Orders ship in 2 days." in page.content.decode()
        assert CannedResponse.objects.for_tenant(acme).count() == 1


def test_the_transcript_links_the_visitors_images(
    client_for: Any, charlie: User, bot: Bot, django_capture_on_commit_callbacks: Any
) -> None:
    conversation = chat(bot, "Look at this", reply=None)
    message = Message.objects.get(conversation=conversation)
    Attachment.objects.create(
        bot=bot,
        visitor=conversation.visitor,
        message=message,
        content_type="image/png",
        size=2048,
        width=28,
        height=28,
        sha256="0" * 64,
        stored_name="widget-attachments/x/y.png",
    )
    page = client_for(charlie).get(f"/conversations/{conversation.public_id}/").content.decode()
    assert "Image attached</a> (image/png, 28×28, 2.0 KB)" in page
    assert 'href="/widget/attachments/' in page


def test_celery_beat_runs_the_retention_purge_and_the_stale_reply_sweep() -> None:
    from django.conf import settings

    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "chatbot.conversations.tasks.purge_expired_conversations" in tasks
    assert "chatbot.conversations.tasks.sweep_stale_replies" in tasks
