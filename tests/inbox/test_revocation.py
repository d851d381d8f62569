"""Revocation reaches open dashboard sockets within a second, server-side.

Each test opens a member's `/ws/dashboard/` socket, takes a right away through the real
action (or log-out view), and expects the close (or the new role) without the client sending
anything. Runs with the in-memory layer and, in the PostgreSQL + Redis run, through Redis.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from chatbot.bots.models import Bot
from chatbot.conversations.models import Conversation
from chatbot.tenants import actions as tenant_actions
from chatbot.tenants.models import Membership, Role, Tenant, User
from tests.inbox.test_live import _conversation, agent_socket, open_visitor, subscribe
from tests.widget.conftest import receive, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

WITHIN = 1.0  # seconds: the promise


async def open_with_client(user: User) -> tuple[WebsocketCommunicator, Client]:
    """A member's socket on the session of a test client (so the client can log out)."""

    def log_in() -> Client:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    client = await database_sync_to_async(log_in)()
    comm = agent_socket(client.cookies["sessionid"].value)
    connected, _ = await comm.connect()
    assert connected
    return comm, client


async def expect_closed(comm: WebsocketCommunicator) -> None:
    """The server closes the socket within the promise, with 4003, unasked."""
    output = await comm.receive_output(timeout=WITHIN)
    assert output == {"type": "websocket.close", "code": 4003}, output


def _membership(tenant: Tenant, user: User) -> Membership:
    return Membership.objects.select_related("tenant", "user").get(tenant=tenant, user=user)


class TestDashboardRevocation:
    async def test_a_removed_member_is_closed_and_hears_no_more_visitors(
        self, alice: User, charlie: User, acme: Tenant, acme_bot: Bot
    ) -> None:
        conversation = await database_sync_to_async(_conversation)(acme_bot, "Hi")
        comm, _ = await open_with_client(charlie)
        await comm.send_json_to({"type": "subscribe.inbox"})
        assert (await receive(comm))["type"] == "subscribed"
        await subscribe(comm, conversation.public_id)

        owner = await database_sync_to_async(_membership)(acme, alice)
        member = await database_sync_to_async(_membership)(acme, charlie)
        await database_sync_to_async(tenant_actions.remove_member)(owner, member)
        await expect_closed(comm)

        # A visitor writing now reaches nobody on that socket.
        visitor, _ = await open_visitor(acme_bot)
        await visitor.send_json_to({"type": "message.send", "client_id": "v1", "text": "Hello?"})
        await receive_until(visitor, lambda f: f["type"] == "ack")
        assert await comm.receive_nothing(timeout=0.3)
        await visitor.disconnect()

    async def test_a_role_change_downgrades_the_open_socket(
        self, alice: User, acme: Tenant, acme_bot: Bot
    ) -> None:
        second_owner = await database_sync_to_async(_make_admin)(acme)
        comm, _ = await open_with_client(second_owner)
        owner = await database_sync_to_async(_membership)(acme, alice)
        member = await database_sync_to_async(_membership)(acme, second_owner)
        await database_sync_to_async(tenant_actions.change_role)(owner, member, Role.AGENT)
        assert await receive(comm, timeout=WITHIN) == {"type": "membership", "role": "agent"}
        # Still open: an agent may watch the inbox.
        await comm.send_json_to({"type": "subscribe.inbox"})
        assert (await receive(comm))["type"] == "subscribed"
        await comm.disconnect()

    async def test_logging_out_closes_that_sessions_sockets(self, charlie: User) -> None:
        comm, client = await open_with_client(charlie)
        other_browser, _ = await open_with_client(charlie)
        answer = await database_sync_to_async(client.post)("/accounts/logout/")
        assert answer.status_code == 302
        await expect_closed(comm)
        # The same member's other browser stays logged in, and its socket stays open.
        assert await other_browser.receive_nothing(timeout=0.3)
        await other_browser.send_json_to({"type": "ping"})
        assert await receive(other_browser) == {"type": "pong"}
        await other_browser.disconnect()

    async def test_deleting_the_workspace_closes_its_members_sockets(
        self, alice: User, charlie: User, acme: Tenant
    ) -> None:
        owners, _ = await open_with_client(alice)
        agents, _ = await open_with_client(charlie)
        await database_sync_to_async(tenant_actions.delete_tenant)(acme, alice, "Acme")
        await expect_closed(owners)
        await expect_closed(agents)

    async def test_subscribing_checks_the_membership_again(
        self, charlie: User, acme: Tenant, acme_bot: Bot
    ) -> None:
        # A membership gone without a notice (a row deleted by hand, a notice lost between
        # processes): the next subscription finds out.
        conversation = await database_sync_to_async(_conversation)(acme_bot, "Hi")
        comm, _ = await open_with_client(charlie)
        await Membership.objects.filter(tenant=acme, user=charlie).adelete()
        await comm.send_json_to(
            {"type": "subscribe.conversation", "conversation": conversation.public_id}
        )
        await expect_closed(comm)
        assert await Conversation.objects.filter(pk=conversation.pk).aexists()

    async def test_another_tenants_changes_leave_the_socket_alone(
        self, alice: User, bob: User, bravo: Tenant
    ) -> None:
        comm, _ = await open_with_client(alice)
        bravo_owner = await database_sync_to_async(_membership)(bravo, bob)
        newcomer = await database_sync_to_async(_make_admin)(bravo)
        member = await database_sync_to_async(_membership)(bravo, newcomer)
        await database_sync_to_async(tenant_actions.remove_member)(bravo_owner, member)
        assert await comm.receive_nothing(timeout=0.3)
        await comm.send_json_to({"type": "ping"})
        assert await receive(comm) == {"type": "pong"}
        await comm.disconnect()


def _make_admin(tenant: Tenant) -> User:
    from tests.fixtures.personas import make_member

    return make_member(tenant, f"dana@{tenant.slug}.test", Role.ADMIN, "Dana")
