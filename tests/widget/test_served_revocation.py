"""Revocation crosses processes: the owner acts in one process, the socket lives in another.

A widget socket and a dashboard socket are open on a served process (`manage.py serve`);
the owner's actions run here, in the test process, which has no event loop of its own
serving sockets, so the notices can only travel through Redis (chatbot.lib.fanout). Both
sockets must close with their codes within a second. PostgreSQL + Redis run only.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chatbot.bots import actions as bot_actions
from chatbot.bots.models import Bot
from chatbot.tenants import actions as tenant_actions
from chatbot.tenants.models import Membership, Tenant, User
from tests.fixtures.servers import free_port
from tests.inbox.processes import child_env, process, wait_until_up
from tests.widget.conftest import SHOP, session_token

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

WITHIN = 1.0


def closed_with(ws: ClientConnection, seconds: float) -> int | None:
    """The close code the server sends within `seconds` (None if it stays open)."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    return None


def test_revocations_reach_sockets_of_another_process(
    live_db: None, acme: Tenant, alice: User, charlie: User
) -> None:
    bot = Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=[SHOP])
    token, _ = session_token(bot)
    client = Client()
    client.force_login(charlie, backend="django.contrib.auth.backends.ModelBackend")
    cookie = client.cookies["sessionid"].value
    port = free_port()
    serve = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    site = f"http://127.0.0.1:{port}"
    with process(serve, child_env()) as (child, _log):
        wait_until_up(site, child)
        with (
            connect(f"ws://127.0.0.1:{port}/ws/widget/{bot.public_key}", origin=SHOP) as widget,  # type: ignore[arg-type]
            connect(
                f"ws://127.0.0.1:{port}/ws/dashboard/",
                origin=site,  # type: ignore[arg-type]
                additional_headers={"Cookie": f"sessionid={cookie}"},
            ) as dashboard,
        ):
            widget.send(json.dumps({"type": "hello", "token": token}))
            assert json.loads(widget.recv(timeout=10))["type"] == "ready"
            dashboard.send(json.dumps({"type": "ping"}))
            assert json.loads(dashboard.recv(timeout=10)) == {"type": "pong"}

            bot_actions.update_bot(Bot.objects.get(pk=bot.pk), None, enabled=False)
            assert closed_with(widget, WITHIN) == 4004

            owner = Membership.objects.get(tenant=acme, user=alice)
            member = Membership.objects.get(tenant=acme, user=charlie)
            tenant_actions.remove_member(owner, member)
            assert closed_with(dashboard, WITHIN) == 4003
