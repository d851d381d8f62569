"""The worked example: the demo bot looks orders up on the demo host page's process."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command

from chatbot.core.management.commands.serve import serve_demo_host
from chatbot.tools import endpoint
from chatbot.tools.models import Action
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.django_db


def test_the_demo_bot_finds_an_order_on_the_demo_host(
    loopback_allowed: None, settings: Any
) -> None:
    port = free_port()
    call_command("seed_demo", "--port", str(port - 1), stdout=None)
    call_command("seed_demo", "--port", str(port - 1), stdout=None)  # idempotent
    find_order = Action.objects.get(name="find_order")
    assert {a.name for a in Action.objects.all()} == {"find_order", "capture_lead"}
    assert [b.name for b in find_order.bots.all()] == ["Demo assistant"]
    served = serve_demo_host("127.0.0.1", port)
    assert served is not None
    try:
        found = async_to_sync(endpoint.call)(find_order, {"order_id": "d-1001"})
        missing = async_to_sync(endpoint.call)(find_order, {"order_id": "nope"})
    finally:
        served[1].shutdown()
        served[1].server_close()
    assert found.ok and found.body["status"] == "Shipped"
    assert found.body["card"]["title"] == "Order D-1001"
    assert not missing.ok and missing.status == 404
