"""The relay at scale: streams that lose nothing (gaps fetched, offsets in code points, a dead
process's reply marked interrupted at once), fan-out, database threads and query counts."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from chatbot.bots.models import Bot
from chatbot.conversations import actions, replies, streams
from chatbot.conversations.models import Message
from chatbot.lib import db, fanout, redis_clients

from .conftest import ScriptedModel, is_final_reply, receive, receive_until
from .conftest import session_token as session_token_for
from .test_consumer import hello, make_token

pytestmark = pytest.mark.django_db(transaction=True)


class TestGaps:
    async def test_a_client_that_missed_deltas_fetches_the_text_so_far(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        model.chunks = ["One", " two", " three"]
        model.hold_at = 2
        model.gate, model.reached = asyncio.Event(), asyncio.Event()
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Count"})
        await asyncio.wait_for(model.reached.wait(), 5)
        await asyncio.sleep(0.15)  # the batch with " two" is flushed
        await receive_until(comm, lambda f: f["type"] == "delta" and f["offset"] == 3)

        # As if the delta at offset 0 had been lost on its way: ask from offset 0.
        await comm.send_json_to({"type": "reply.fetch", "seq": 2, "offset": 0})
        fetched = await receive(comm)
        assert fetched == {"type": "delta", "seq": 2, "offset": 0, "text": "One two"}

        model.gate.set()
        frames = await receive_until(comm, is_final_reply)
        deltas = [f for f in frames if f["type"] == "delta"]
        assert [(d["offset"], d["text"]) for d in deltas] == [(7, " three")]
        await actions.wait_for_replies()

        # After the end, a fetch answers with the stored message.
        await comm.send_json_to({"type": "reply.fetch", "seq": 2, "offset": 3})
        final = await receive(comm)
        assert final["type"] == "message"
        assert final["message"]["text"] == "One two three"
        assert final["message"]["status"] == "complete"
        await comm.disconnect()

    @pytest.mark.parametrize(
        ("frame", "code"),
        [
            ({"seq": "2", "offset": 0}, "bad_request"),
            ({"seq": 2, "offset": -1}, "bad_request"),
            ({"seq": 2, "offset": True}, "bad_request"),
            ({"seq": 99, "offset": 0}, "not_found"),
        ],
    )
    async def test_a_bad_fetch_gets_an_error_frame(
        self, acme_bot: Bot, model: ScriptedModel, frame: dict[str, object], code: str
    ) -> None:
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Hi"})
        await receive_until(comm, is_final_reply)
        await actions.wait_for_replies()
        await comm.send_json_to({"type": "reply.fetch", **frame})
        error = await receive(comm)
        assert error["type"] == "error" and error["code"] == code, error
        await comm.disconnect()

    async def test_a_fetch_never_reaches_another_visitors_conversation(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Secret"})
        await receive_until(comm, is_final_reply)
        await actions.wait_for_replies()

        other_token, _ = await make_token(acme_bot)
        other, _ = await hello(acme_bot, other_token)
        await other.send_json_to({"type": "reply.fetch", "seq": 2, "offset": 0})
        error = await receive(other)
        assert error["type"] == "error" and error["code"] == "not_found"
        await comm.disconnect()
        await other.disconnect()

    async def test_offsets_count_code_points(self, acme_bot: Bot, model: ScriptedModel) -> None:
        model.chunks = ["😀 é", "🚲!"]
        model.hold_at = 1
        model.gate, model.reached = asyncio.Event(), asyncio.Event()
        token, _ = await make_token(acme_bot)
        comm, _ = await hello(acme_bot, token)
        await comm.send_json_to({"type": "message.send", "client_id": "c1", "text": "Hi"})
        await asyncio.wait_for(model.reached.wait(), 5)
        await asyncio.sleep(0.15)
        model.gate.set()
        frames = await receive_until(comm, is_final_reply)
        deltas = [(f["offset"], f["text"]) for f in frames if f["type"] == "delta"]
        assert deltas == [(0, "😀 é"), (3, "🚲!")]
        await actions.wait_for_replies()
        await comm.disconnect()


def _streaming_reply(bot: Bot) -> Message:
    visitor = actions.open_visitor(bot)
    received = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hello?")
    reply = actions.create_reply_message(received.conversation.pk)
    assert reply is not None
    actions.save_partial_reply(reply.pk, "Half")
    return reply


@pytest.mark.redis
class TestInterrupted:
    async def test_a_reply_whose_process_stopped_is_marked_interrupted_on_resume(
        self, acme_bot: Bot
    ) -> None:
        reply = await database_sync_to_async(_streaming_reply)(acme_bot)
        conversation = await database_sync_to_async(lambda: reply.conversation)()
        visitor = await database_sync_to_async(lambda: conversation.visitor)()
        client = redis_clients.sync_client()
        assert client is not None
        # Written by a process that then died: its heartbeat key is absent.
        client.set(streams._key(conversation.pk, reply.seq), "deadprocess\nHalf a reply")

        token, _ = await make_token(acme_bot, visitor=visitor)
        comm, _ = await hello(
            acme_bot, token, conversation=conversation.public_id, resume_after_seq=1
        )
        message = (await receive(comm))["message"]
        assert message["seq"] == reply.seq
        assert message["status"] == "incomplete"
        assert message["error"]["code"] == "interrupted"
        row = await database_sync_to_async(Message.objects.get)(pk=reply.pk)
        assert row.status == "incomplete" and row.text == "Half a reply"  # the longer text kept
        # And the visitor can ask again.
        assert await database_sync_to_async(actions.can_retry_reply)(visitor, conversation)
        await comm.disconnect()

    async def test_a_reply_of_a_live_process_keeps_streaming(self, acme_bot: Bot) -> None:
        reply = await database_sync_to_async(_streaming_reply)(acme_bot)
        conversation = await database_sync_to_async(lambda: reply.conversation)()
        visitor = await database_sync_to_async(lambda: conversation.visitor)()
        client = redis_clients.sync_client()
        assert client is not None
        client.set(streams._key(conversation.pk, reply.seq), "liveprocess\nHalf a reply")
        client.set(fanout.alive_key("liveprocess"), 1, ex=30)

        token, _ = await make_token(acme_bot, visitor=visitor)
        comm, _ = await hello(
            acme_bot, token, conversation=conversation.public_id, resume_after_seq=1
        )
        message = (await receive(comm))["message"]
        assert message["status"] == "streaming"
        assert message["text"] == "Half a reply"
        await comm.disconnect()

    async def test_a_reply_whose_process_dies_just_after_the_resume_is_marked_too(
        self, acme_bot: Bot, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(fanout, "HEARTBEAT_EVERY_SECONDS", 0.1)
        reply = await database_sync_to_async(_streaming_reply)(acme_bot)
        conversation = await database_sync_to_async(lambda: reply.conversation)()
        visitor = await database_sync_to_async(lambda: conversation.visitor)()
        client = redis_clients.sync_client()
        assert client is not None
        client.set(streams._key(conversation.pk, reply.seq), "dyingprocess\nHalf a reply")
        client.set(fanout.alive_key("dyingprocess"), 1, ex=30)

        token, _ = await make_token(acme_bot, visitor=visitor)
        comm, _ = await hello(
            acme_bot, token, conversation=conversation.public_id, resume_after_seq=1
        )
        assert (await receive(comm))["message"]["status"] == "streaming"
        client.delete(fanout.alive_key("dyingprocess"))  # its heartbeat stops
        settled = await receive_until(comm, is_final_reply)
        assert settled[-1]["message"]["status"] == "incomplete"
        assert settled[-1]["message"]["text"] == "Half a reply"
        assert settled[-1]["message"]["error"]["code"] == "interrupted"
        await comm.disconnect()


@pytest.mark.redis
class TestFanOut:
    async def test_events_from_another_process_arrive_in_order_and_own_ones_once(
        self,
    ) -> None:
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        await fanout.subscribe("conv.4242", queue)
        fanout.start()

        # Another process (a Celery worker, another `serve`) publishes through Redis.
        def other_process() -> None:
            for n in range(300):
                fanout._publish_without_hub("conv.4242", {"n": n}, sender="other-process")

        thread = threading.Thread(target=other_process)
        thread.start()
        await asyncio.to_thread(thread.join)
        got = [await asyncio.wait_for(queue.get(), 5) for _ in range(300)]
        assert [event["n"] for event in got] == list(range(300))

        # This process's own event is delivered here once, not again through Redis.
        fanout.publish("conv.4242", {"n": "mine"})
        assert await asyncio.wait_for(queue.get(), 5) == {"n": "mine"}
        await asyncio.sleep(0.3)
        assert queue.empty()
        fanout.unsubscribe("conv.4242", queue)

    async def test_a_group_nobody_follows_costs_no_delivery(self) -> None:
        client = redis_clients.sync_client()
        assert client is not None
        fanout._publish_without_hub("conv.777", {"n": 1}, sender="other-process")
        assert not client.keys(redis_clients.key("fan", "inbox", "*"))


@pytest.mark.postgres
async def test_database_calls_run_side_by_side_on_postgresql() -> None:
    barrier = threading.Barrier(2, timeout=5)

    def meet() -> int:
        barrier.wait()  # both calls must be running at once to pass
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return threading.get_ident()

    first, second = await asyncio.gather(db.db_async(meet)(), db.db_async(meet)())
    assert first != second


@pytest.mark.embedded
async def test_database_calls_share_one_thread_on_sqlite() -> None:
    threads = {await db.db_async(threading.get_ident)() for _ in range(3)}
    assert len(threads) == 1


async def test_the_reply_needs_one_database_trip_before_the_upstream_request(
    acme_bot: Bot, model: ScriptedModel, django_assert_max_num_queries: object
) -> None:
    def queries_of_prepare() -> int:
        visitor = actions.open_visitor(acme_bot)
        received = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi")
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            prepared = replies._prepare(received.conversation.pk)
        assert prepared is not None
        return len(captured.captured_queries)

    count = await database_sync_to_async(queries_of_prepare)()
    # Lock + insert + seq update (in one transaction), conversation with bot, history,
    # the bot's route and the operator's endpoints: pinned so a change shows up here.
    assert count <= 12, count


def test_a_send_stores_the_message_and_prepares_the_reply_in_one_transaction(
    acme_bot: Bot,
) -> None:
    """The visitor's message, the bot's `streaming` row and the model's context: one database
    trip, one transaction, 9 statements (20 in three trips before); the outcome: 4 more."""
    from django.test.utils import CaptureQueriesContext

    from widget.session import WidgetSession
    from widget.tokens import read_session_token

    token, visitor = session_token_for(acme_bot)
    session = WidgetSession(acme_bot, visitor, read_session_token(token), "127.0.0.1")
    session._send({"type": "message.send", "client_id": "c1", "text": "Hi"})  # the new one
    first = session.take_prepared_reply(session.conversation.pk)
    assert first is not None
    actions.finish_reply(first[0].pk, text="Hello!", status="complete", row=first[0])

    with CaptureQueriesContext(connection) as sent:
        events, reply_conversation = session._send(
            {"type": "message.send", "client_id": "c2", "text": "And my order?"}
        )
    prepared = session.take_prepared_reply(reply_conversation)
    assert prepared is not None
    reply, context = prepared
    statements = [q["sql"] for q in sent.captured_queries]
    assert sum(sql.startswith(("BEGIN", "SAVEPOINT")) for sql in statements) <= 1, statements
    assert len(statements) <= 10, statements
    # The visitor's message (seq 3) and the reply's row (seq 4), the history for the model.
    assert [e["message"]["seq"] for e in events if e["type"] == "message"] == [3]
    assert (reply.seq, reply.status, reply.role) == (4, "streaming", "assistant")
    assert [m.role for m in context.history] == ["user", "assistant", "user"]
    assert context.history[-1].parts[0].text == "And my order?"

    with CaptureQueriesContext(connection) as finished:
        actions.finish_reply(reply.pk, text="On its way.", status="complete", row=reply)
    assert len(finished.captured_queries) <= 4, [q["sql"] for q in finished.captured_queries]
    stored = Message.objects.get(pk=reply.pk)
    assert (stored.text, stored.status) == ("On its way.", "complete")


def test_a_message_sent_while_a_reply_runs_leaves_the_next_reply_to_its_task(
    acme_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a reply of this process still streaming, the next one is not prepared in the
    send: it waits for the running one and then reads the history with its text."""
    from widget.session import WidgetSession
    from widget.tokens import read_session_token

    token, visitor = session_token_for(acme_bot)
    session = WidgetSession(acme_bot, visitor, read_session_token(token), "127.0.0.1")
    session._send({"type": "message.send", "client_id": "c1", "text": "Hi"})
    assert session.prepared_reply is not None
    session.prepared_reply = None
    monkeypatch.setattr(actions, "reply_running", lambda conversation_id: True)
    _, reply_conversation = session._send({"type": "message.send", "client_id": "c2", "text": "?"})
    assert reply_conversation == session.conversation.pk
    assert session.take_prepared_reply(reply_conversation) is None
    assert not Message.objects.filter(conversation=session.conversation, seq=4).exists()


async def test_a_prepared_reply_queued_behind_a_running_one_reads_its_text(
    acme_bot: Bot, model: ScriptedModel
) -> None:
    """Two replies in one conversation, the second prepared before the first ended (two tabs
    sending at once): the second waits, then reads the history again, the first reply's
    final text included."""
    model.gate = asyncio.Event()
    model.hold_at = 1
    model.reached = asyncio.Event()
    token, _ = await make_token(acme_bot)
    comm, _ = await hello(acme_bot, token)
    await comm.send_json_to({"type": "message.send", "client_id": "a", "text": "First"})
    await asyncio.wait_for(model.reached.wait(), 5)
    conversation_id = next(iter(actions._running))

    def second_send() -> tuple[Message, object]:
        received = actions.receive_visitor_message(
            Message.objects.get(conversation_id=conversation_id, seq=1).conversation.visitor,
            Message.objects.get(conversation_id=conversation_id, seq=1).conversation,
            client_id="b",
            text="Second",
            with_reply=True,
        )
        assert received.reply is not None
        return received.reply, replies.load_context(received.reply)

    prepared = await database_sync_to_async(second_send)()
    second = actions.start_reply(conversation_id, prepared)
    model.hold_at = None
    model.gate.set()
    await asyncio.wait_for(second, 5)
    last_history = model.histories[-1]
    assert [m.role for m in last_history] == ["user", "assistant", "user"]
    assert last_history[1].parts[0].text == "Hello from Acme!"
    await comm.disconnect()


async def test_open_widget_sockets_are_counted_for_metrics(acme_bot: Bot) -> None:
    from chatbot.core import metrics

    def open_count() -> float:
        value = metrics.REGISTRY.get_sample_value("parley_sockets_open", {"kind": "widget"})
        return value or 0.0

    before = open_count()
    token, _ = await make_token(acme_bot)
    comm, _ = await hello(acme_bot, token)
    assert open_count() == before + 1
    await comm.disconnect()
    for _ in range(50):
        if open_count() == before:
            break
        await asyncio.sleep(0.02)
    assert open_count() == before


def test_the_conversation_list_is_one_query(acme_bot: Bot) -> None:
    from django.test.utils import CaptureQueriesContext

    from widget.session import WidgetSession
    from widget.tokens import read_session_token

    token, visitor = session_token_for(acme_bot)
    for n in range(5):
        actions.receive_visitor_message(visitor, None, client_id=f"c{n}", text=f"Question {n}")
    session = WidgetSession(acme_bot, visitor, read_session_token(token), "127.0.0.1")
    with CaptureQueriesContext(connection) as captured:
        events, _ = session._list({"type": "conversations.list"})
    assert len(captured.captured_queries) == 1
    previews = sorted(item["preview"] for item in events[0]["items"])
    assert previews == [f"Question {n}" for n in range(5)]


def test_a_new_visitors_hello_is_one_query(acme_bot: Bot) -> None:
    """The session request records the page and browser, and the visitor's read brings the id
    of their latest open conversation: the socket's hello then reads one row and writes none."""
    from django.test.utils import CaptureQueriesContext

    from widget.consumers import _open_session
    from widget.tokens import issue_session_token

    from .conftest import SHOP

    visitor = actions.open_visitor(acme_bot, page_url=SHOP, user_agent="Firefox")
    token, _ = issue_session_token(acme_bot, visitor.public_id, SHOP)
    with CaptureQueriesContext(connection) as captured:
        session = _open_session(acme_bot, token, SHOP, "Firefox", "127.0.0.1", "s", None)
    assert session.conversation is None
    assert len(captured.captured_queries) == 1, [q["sql"] for q in captured.captured_queries]

    received = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi")
    with CaptureQueriesContext(connection) as captured:
        session = _open_session(acme_bot, token, SHOP, "Firefox", "127.0.0.1", "s", None)
    assert session.conversation == received.conversation
    assert len(captured.captured_queries) == 2
