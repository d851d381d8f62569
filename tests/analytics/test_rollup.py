"""Roll-ups agree with the raw messages (on SQLite and PostgreSQL), are idempotent, and the
analytics page shows charts with tables and CSV from them alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatbot.analytics import rollup
from chatbot.analytics.models import ActionDay, BotDay, EndpointDay, QuestionDay
from chatbot.analytics.tasks import roll_up_recent, today_for
from chatbot.bots.models import Bot
from chatbot.conversations import actions, takeover
from chatbot.conversations.models import Message, Role
from chatbot.tenants.models import Tenant, User
from chatbot.tools import actions as tools
from chatbot.tools.models import ActionCall, ActionKind, CallStatus
from tests.tools.conftest import make_action

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_bot(acme: Tenant) -> Bot:
    return Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=["https://a.test"])


def _reply(conversation_id: int, text: str, **fields: Any) -> Message:
    reply = actions.create_reply_message(conversation_id)
    assert reply is not None
    return actions.finish_reply(reply.pk, text=text, **{"status": "complete", **fields})


def _traffic(bot: Bot, agent: User) -> None:
    """Three conversations: one answered with knowledge, one thumbs-down, one handed over."""
    first = actions.open_visitor(bot)
    got = actions.receive_visitor_message(first, None, client_id="a1", text="What are your hours?")
    _reply(
        got.conversation.pk,
        "9 to 5.",
        endpoint="local",
        model="llama",
        tokens_in=10,
        tokens_out=5,
        ttft_ms=300,
        citations=[{"title": "Hours", "url": ""}],
    )
    got2 = actions.receive_visitor_message(
        first, got.conversation, client_id="a2", text="Your hours, please?"
    )
    _reply(
        got2.conversation.pk,
        "9 to 5.",
        endpoint="local",
        model="llama",
        tokens_in=20,
        tokens_out=5,
        ttft_ms=700,
        citations=[{"title": "Hours", "url": ""}],
    )

    second = actions.open_visitor(bot)
    got = actions.receive_visitor_message(second, None, client_id="b1", text="Do you ship to Mars?")
    reply = _reply(
        got.conversation.pk,
        "No idea.",
        endpoint="local",
        model="llama",
        tokens_in=8,
        tokens_out=2,
        ttft_ms=5000,
    )
    actions.set_feedback(second, got.conversation, reply.seq, "down")

    third = actions.open_visitor(bot)
    got = actions.receive_visitor_message(third, None, client_id="c1", text="Refund my order")
    _reply(got.conversation.pk, "", status="failed", error_code="upstream", endpoint="cloud")
    actions.request_handoff(third, got.conversation)
    conversation = takeover.take_over(got.conversation, agent)
    takeover.agent_reply(conversation, agent, "Done.")


def test_the_roll_up_matches_the_raw_messages_and_is_idempotent(
    acme_bot: Bot, charlie: User
) -> None:
    _traffic(acme_bot, charlie)
    tenant = acme_bot.tenant
    day = today_for(tenant)
    rollup.roll_up(tenant, day)
    rollup.roll_up(tenant, day)  # again: the same rows, not twice as many

    row = BotDay.objects.get(bot=acme_bot, day=day)
    messages = Message.objects.filter(conversation__bot=acme_bot)
    assert row.conversations == 3
    assert row.visitors == 3
    assert row.visitor_messages == messages.filter(role=Role.VISITOR).count() == 4
    assert row.replies == messages.filter(role=Role.ASSISTANT).count() == 4
    assert row.reply_errors == 1
    assert row.agent_messages == 1
    assert (row.handoffs, row.resolved_by_bot) == (1, 2)
    assert (row.feedback_up, row.feedback_down) == (0, 1)
    assert (row.tokens_in, row.tokens_out) == (38, 12)
    assert sum(row.hours) == 4
    assert sum(row.first_agent_reply) == 1

    endpoints = {(e.endpoint, e.model): e for e in EndpointDay.objects.filter(day=day)}
    assert set(endpoints) == {("local", "llama"), ("cloud", "")}
    local = endpoints[("local", "llama")]
    assert (local.replies, local.errors, local.tokens_in, sum(local.ttft)) == (3, 0, 38, 3)
    assert endpoints[("cloud", "")].errors == 1

    questions = {q.key: q for q in QuestionDay.objects.filter(day=day)}
    # "What are your hours?" and "Your hours, please?" share their words.
    assert questions["hours"].count == 2 and questions["hours"].unanswered == 0
    assert questions["mars ship"].unanswered == 1  # no knowledge, thumbs down
    assert questions["order refund"].unanswered == 1  # failed, then a person
    assert BotDay.objects.count() == 1


def _action_traffic(bot: Bot) -> None:
    """Calls of two actions in one conversation, ending every way a call can end."""
    make_action(bot.tenant, bot, "https://shop.acme.test/orders/{order_id}")
    make_action(bot.tenant, bot, kind=ActionKind.CAPTURE_LEAD, name="capture_lead", title="Saving")
    visitor = actions.open_visitor(bot)
    got = actions.receive_visitor_message(visitor, None, client_id="t1", text="Where is 42?")
    reply = _reply(got.conversation.pk, "Looking.", endpoint="local", model="llama")

    def call(name: str, kind: str, status: str = CallStatus.RUNNING) -> ActionCall:
        new = tools.NewCall(f"call-{name}", name, None, name, kind, {}, status)
        [row] = tools.record_calls(got.conversation.pk, reply.pk, reply.seq, [new])
        return row

    finished = [("done", 120), ("done", 80), ("failed", 1000)]
    for status, duration in finished:
        row = call("find_order", ActionKind.HTTP)
        tools.finish_call(row.pk, reply.seq, status=status, duration_ms=duration)
    call("find_order", ActionKind.HTTP)  # still running
    lead = call("capture_lead", ActionKind.CAPTURE_LEAD, CallStatus.AWAITING)
    tools.answer_confirmation(visitor, got.conversation, lead.public_id, False)
    tools.finish_call(call("capture_lead", ActionKind.CAPTURE_LEAD).pk, None, status="done")


def test_the_action_roll_up_matches_the_recorded_calls_and_is_idempotent(acme_bot: Bot) -> None:
    _action_traffic(acme_bot)
    tenant = acme_bot.tenant
    day = today_for(tenant)
    rollup.roll_up(tenant, day)
    rollup.roll_up(tenant, day)

    rows = {row.name: row for row in ActionDay.objects.filter(bot=acme_bot, day=day)}
    assert set(rows) == {"find_order", "capture_lead"}
    calls = ActionCall.objects.filter(conversation__bot=acme_bot, name="find_order")
    order = rows["find_order"]
    assert order.calls == calls.count() == 4
    assert (order.succeeded, order.failed, order.declined) == (2, 1, 0)
    assert (order.duration_ms, order.timed, order.kind) == (1200, 3, "http")
    lead = rows["capture_lead"]
    assert (lead.calls, lead.succeeded, lead.failed, lead.declined) == (2, 1, 0, 1)
    assert lead.timed == 0  # finished without a recorded duration

    # Yesterday holds none of today's calls, and another day's rebuild leaves today alone.
    rollup.roll_up(tenant, day - timedelta(days=1))
    assert not ActionDay.objects.filter(day=day - timedelta(days=1)).exists()
    assert ActionDay.objects.filter(day=day).count() == 2


def test_the_report_shows_actions_with_their_success_rate(
    acme_bot: Bot, alice: User, client_for: Any
) -> None:
    client = client_for(alice)
    page = client.get("/analytics/?days=7").content.decode()
    assert 'id="h-actions"' not in page  # no actions yet: no chart for them

    _action_traffic(acme_bot)
    rollup.roll_up(acme_bot.tenant, today_for(acme_bot.tenant))
    page = client.get("/analytics/?days=7").content.decode()
    assert page.count('<svg class="chart"') == 5
    assert "Actions called and their success" in page
    # find_order: 2 of the 3 that finished succeeded; mean of 120, 80 and 1000 ms.
    assert (
        "<td>find_order</td><td>4</td><td>2</td><td>1</td><td>0</td><td>67%</td><td>400</td>"
        in (page)
    )
    assert (
        "<td>capture_lead</td><td>2</td><td>1</td><td>0</td><td>1</td><td>100%</td><td>—</td>"
        in (page)
    )
    assert "find_order, Succeeded: 2" in page  # the bar's own title

    csv = client.get("/analytics/?days=7&csv=actions").content.decode().splitlines()
    assert csv[0] == (
        "Action,Calls,Succeeded,Failed,Declined by the visitor,Success rate,Mean duration (ms)"
    )
    assert csv[1:] == ["find_order,4,2,1,0,67%,400", "capture_lead,2,1,0,1,100%,—"]

    # One bot's report holds only that bot's calls.
    other = Bot.objects.create(tenant=acme_bot.tenant, name="Other")
    page = client.get(f"/analytics/?days=7&bot={other.pk}").content.decode()
    assert "<td>find_order</td>" not in page and 'id="h-actions"' in page


def test_days_follow_the_tenant_time_zone(acme_bot: Bot) -> None:
    tenant = acme_bot.tenant
    tenant.timezone = "Pacific/Kiritimati"  # UTC+14: its day starts 14 hours before UTC's
    tenant.save()
    visitor = actions.open_visitor(acme_bot)
    got = actions.receive_visitor_message(visitor, None, client_id="z1", text="Hello there")
    start, end = rollup.day_bounds(tenant, today_for(tenant))
    assert start <= got.message.created_at < end
    assert end - start == timedelta(days=1)


def test_the_periodic_task_rolls_up_every_tenant(acme_bot: Bot, bravo: Tenant) -> None:
    visitor = actions.open_visitor(acme_bot)
    actions.receive_visitor_message(visitor, None, client_id="p1", text="Hi")
    assert roll_up_recent() == 4  # two tenants, yesterday and today
    assert BotDay.objects.get(bot=acme_bot, day=today_for(acme_bot.tenant)).visitor_messages == 1


def test_the_page_reads_only_the_roll_ups(
    acme_bot: Bot, alice: User, charlie: User, client_for: Any
) -> None:
    _traffic(acme_bot, charlie)
    rollup.roll_up(acme_bot.tenant, today_for(acme_bot.tenant))
    client = client_for(alice)
    with CaptureQueriesContext(connection) as captured:
        page = client.get("/analytics/?days=7")
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('<svg class="chart"') == 4
    assert "Conversations and messages per day" in body and "<table>" in body
    assert "Do you ship to Mars?" in body and "Add an answer" in body
    assert not [q for q in captured.captured_queries if "conversations_message" in q["sql"]]
    assert len(captured.captured_queries) <= 15

    csv = client.get("/analytics/?days=7&csv=volume")
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0] == "Day,Conversations,Visitor messages,Bot replies,Visitors"
    assert lines[-1].endswith(",3,4,4,3")

    # An agent may not read the report.
    assert client_for(charlie).get("/analytics/").status_code == 403


def test_an_unanswered_question_becomes_a_knowledge_answer_in_one_step(
    acme_bot: Bot, alice: User, client_for: Any
) -> None:
    from chatbot.knowledge.models import Source

    response = client_for(alice).post(
        f"/analytics/bots/{acme_bot.pk}/answer/",
        {"question": "Do you ship to Mars?", "answer": "Not yet, only to Earth."},
    )
    assert response.status_code == 302
    source = Source.objects.get(bot=acme_bot)
    assert (source.kind, source.title) == ("qa", "Do you ship to Mars?")


def test_another_tenants_bot_is_a_404(bravo: Tenant, alice: User, client_for: Any) -> None:
    foreign = Bot.objects.create(tenant=bravo, name="Bravo help")
    assert client_for(alice).get(f"/analytics/bots/{foreign.pk}/answer/").status_code == 404


@pytest.fixture
def eager_tasks() -> Any:
    """With REDIS_URL tasks go to the broker; this test wants the result now."""
    from chatbot.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.mark.usefixtures("eager_tasks")
def test_a_day_is_rebuilt_on_demand(acme_bot: Bot, alice: User, client_for: Any) -> None:
    visitor = actions.open_visitor(acme_bot)
    actions.receive_visitor_message(visitor, None, client_id="r1", text="Hi")
    response = client_for(alice).post("/analytics/rebuild/", {"day": today_for(acme_bot.tenant)})
    assert response.status_code == 302
    assert BotDay.objects.get(bot=acme_bot).visitor_messages == 1
