"""Usage metering and plan quotas: each reply counted once, refusals at the limit (also under
concurrent sends from two processes), suspension, and the other plan limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core import mail
from django.test import Client

from chatbot.billing import actions as billing
from chatbot.billing import meter, tasks
from chatbot.billing.models import Account, Plan
from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.models import Message, MessageStatus, Role
from chatbot.lib import redis_clients
from chatbot.tenants.models import AuditEvent, Tenant
from tests.widget.conftest import (
    ScriptedModel,
    is_final_reply,
    receive_until,
)
from tests.widget.test_consumer import hello, make_token

pytestmark = pytest.mark.django_db(transaction=True)


def _plan(tenant: Tenant, **limits: Any) -> Plan:
    plan = Plan.objects.create(name=f"Test {len(limits)} {sorted(limits)}", **limits)
    billing.set_plan(tenant, plan, None)
    return plan


async def _replies_of(bot: Bot) -> list[Message]:
    return await database_sync_to_async(
        lambda: list(
            Message.objects.filter(conversation__bot=bot, role=Role.ASSISTANT).order_by("pk")
        )
    )()


async def _send_and_wait(bot: Bot, client_id: str, text: str = "Hi") -> list[dict[str, Any]]:
    token, _ = await make_token(bot)
    comm, _ = await hello(bot, token)
    await comm.send_json_to({"type": "message.send", "client_id": client_id, "text": text})
    frames = await receive_until(comm, is_final_reply)
    await actions.wait_for_replies()
    await comm.disconnect()
    return frames


def test_a_new_workspace_gets_an_account_on_the_default_plan(db: None) -> None:
    plan = Plan.objects.create(name="Starter", monthly_messages=100, is_default=True)
    tenant = Tenant.objects.create(name="Delta", slug="delta")
    assert Account.objects.get(tenant=tenant).plan == plan


class TestMetering:
    async def test_each_reply_is_counted_once_with_its_tokens(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        await database_sync_to_async(_plan)(acme_bot.tenant, monthly_messages=10)
        await _send_and_wait(acme_bot, "c1")
        await _send_and_wait(acme_bot, "c2")
        replies, tokens = await database_sync_to_async(meter.usage_now)(acme_bot.tenant_id)
        # ScriptedModel reports 12 prompt tokens and one completion token per chunk (4).
        assert (replies, tokens) == (2, 2 * 16)

        # The same reply recorded again (a retried task, another process) counts nothing.
        reply = (await _replies_of(acme_bot))[0]
        limits = meter.Limits(acme_bot.tenant_id, 10, None)
        assert await meter.areserve(limits, reply.pk) is None
        record = meter.TokenRecord(acme_bot.tenant_id, reply.pk, 16)
        client = redis_clients.async_client()
        if client is None:
            record.apply_locally()
        else:
            pipe = client.pipeline(transaction=False)
            record.queue(pipe)
            await pipe.execute()
        assert await database_sync_to_async(meter.usage_now)(acme_bot.tenant_id) == (2, 32)

    async def test_the_reply_at_the_limit_is_refused_with_a_clear_message(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        await database_sync_to_async(_plan)(acme_bot.tenant, monthly_messages=1)
        await _send_and_wait(acme_bot, "c1")
        frames = await _send_and_wait(acme_bot, "c2")
        final = frames[-1]["message"]
        assert final["status"] == "failed"
        assert final["error"] == {
            "code": "quota_exceeded",
            "message": meter.VISITOR_MESSAGES[meter.QUOTA_EXCEEDED],
        }
        assert model.calls == 1  # no model call for the refused reply
        assert await database_sync_to_async(meter.usage_now)(acme_bot.tenant_id) == (1, 16)

    async def test_the_token_limit_stops_the_next_reply(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        await database_sync_to_async(_plan)(acme_bot.tenant, monthly_tokens=10)
        await _send_and_wait(acme_bot, "c1")  # 16 tokens: over the limit after this one
        frames = await _send_and_wait(acme_bot, "c2")
        assert frames[-1]["message"]["error"]["code"] == "quota_exceeded"

    def test_agents_still_chat_at_the_limit(self, acme_bot: Bot, alice: Any) -> None:
        from chatbot.conversations import takeover

        _plan(acme_bot.tenant, monthly_messages=0)
        visitor = actions.open_visitor(acme_bot)
        received = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi")
        conversation = takeover.take_over(received.conversation, alice)
        sent = takeover.agent_reply(conversation, alice, "A person answers.")
        assert sent.role == Role.AGENT and sent.text == "A person answers."

    def test_the_owner_sees_the_reason_on_the_usage_page(
        self, acme_bot: Bot, alice: Any, client_for: Any
    ) -> None:
        _plan(acme_bot.tenant, monthly_messages=0)
        page = client_for(alice).get("/usage/")
        assert page.status_code == 200
        assert "monthly limit is reached" in page.content.decode()


# Another process: its own interpreter, its own Redis connections. Both wait on a Redis list
# so that their sends overlap.
OTHER_PROCESS = """
import asyncio, sys
import django
django.setup()
from chatbot.billing import meter
from chatbot.lib import redis_clients

tenant_id, first_id, count, limit, room = map(int, sys.argv[1:6])
import redis
from django.conf import settings
sync = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=120)  # waits for the start
sync.rpush(f"test:ready:{room}", 1)
sync.blpop([f"test:go:{room}"], timeout=90)

async def run():
    limits = meter.Limits(tenant_id, limit, None)
    results = await asyncio.gather(*(meter.areserve(limits, first_id + n) for n in range(count)))
    return sum(1 for result in results if result is None)

print(asyncio.run(run()))
"""


@pytest.mark.redis
def test_two_processes_sending_at_the_limit_never_exceed_it(acme: Tenant) -> None:
    import os
    import subprocess
    import sys

    import redis
    from django.conf import settings

    # A read timeout above the wait: the children may start slowly on a busy machine.
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=120)
    room = acme.pk
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatbot.settings"}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                OTHER_PROCESS,
                str(acme.pk),
                str(1_000_000 * (n + 1)),
                "40",
                "25",
                str(room),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for _ in workers:
        assert client.blpop([f"test:ready:{room}"], timeout=90) is not None
    client.rpush(f"test:go:{room}", 1, 1)
    allowed = [int(worker.communicate(timeout=60)[0].strip()) for worker in workers]
    assert sum(allowed) == 25, allowed
    assert meter.usage_now(acme.pk) == (25, 0)


async def test_concurrent_visitors_at_the_limit_get_exactly_the_limit(
    acme_bot: Bot, model: ScriptedModel
) -> None:
    await database_sync_to_async(_plan)(acme_bot.tenant, monthly_messages=3)
    await asyncio.gather(*(_send_and_wait(acme_bot, f"c{n}") for n in range(6)))
    replies = await _replies_of(acme_bot)
    complete = [r for r in replies if r.status == MessageStatus.COMPLETE]
    refused = [r for r in replies if r.error_code == meter.QUOTA_EXCEEDED]
    assert (len(complete), len(refused)) == (3, 3)
    assert model.calls == 3


class TestReconcile:
    def test_lost_counters_come_back_from_the_messages_and_emails_go_out_once(
        self, acme_bot: Bot, alice: Any
    ) -> None:
        _plan(acme_bot.tenant, monthly_messages=5)
        visitor = actions.open_visitor(acme_bot)
        for n in range(4):
            received = actions.receive_visitor_message(visitor, None, client_id=f"c{n}", text="Hi")
            reply = actions.create_reply_message(received.conversation.pk)
            assert reply is not None
            actions.finish_reply(
                reply.pk, text="Hello", status="complete", tokens_in=3, tokens_out=2
            )
        mail.outbox.clear()
        assert meter.usage_now(acme_bot.tenant_id) == (0, 0)  # as if Redis had lost them
        tasks.check_usage()
        assert meter.usage_now(acme_bot.tenant_id) == (4, 20)
        assert [m.subject for m in mail.outbox] == ["Acme: 80% of this month's plan is used"]
        assert mail.outbox[0].to == ["alice@acme.test"]
        tasks.check_usage()  # again: no second email, no double count
        assert len(mail.outbox) == 1
        assert meter.usage_now(acme_bot.tenant_id) == (4, 20)


class TestSuspension:
    def test_a_suspended_workspace_widget_and_api_refuse_with_clear_messages(
        self, acme_bot: Bot, alice: Any
    ) -> None:
        from chatbot.tenants.actions import create_api_key
        from chatbot.tenants.models import Membership
        from tests.widget.conftest import SHOP

        _, secret = create_api_key(Membership.objects.get(user=alice), "k", "read")
        billing.suspend(acme_bot.tenant, None, "unpaid")
        client = Client()

        def session() -> Any:
            return client.post(
                "/widget/api/session",
                {"bot": acme_bot.public_key, "origin": SHOP},
                content_type="application/json",
                headers={"origin": SHOP},
            )

        refused = session()
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "bot_disabled"
        assert client.get(f"/widget/frame/{acme_bot.public_key}").status_code == 404
        api = client.get("/api/v1/me", headers={"authorization": f"Bearer {secret}"})
        assert api.status_code == 403
        assert api.json()["error"]["code"] == "workspace_suspended"
        assert "suspended" in api.json()["error"]["message"]

        billing.resume(acme_bot.tenant, None)
        assert session().status_code == 200
        assert (
            client.get("/api/v1/me", headers={"authorization": f"Bearer {secret}"}).status_code
            == 200
        )
        assert Bot.objects.get(pk=acme_bot.pk).enabled  # nothing was changed or deleted
        assert list(
            AuditEvent.objects.filter(tenant=acme_bot.tenant, action__startswith="tenant.")
            .order_by("pk")
            .values_list("action", flat=True)
        ) == ["tenant.suspended", "tenant.resumed"]

    async def test_a_suspended_workspace_socket_is_refused(self, acme_bot: Bot) -> None:
        from tests.widget.conftest import connect

        await database_sync_to_async(billing.suspend)(acme_bot.tenant, None, "")
        comm = connect(acme_bot)
        connected, _ = await comm.connect()
        assert not connected
