"""An action in a real Chromium: the visitor asks to cancel an order, confirms the card, and
sees the result card (the model is a scripted OpenAI-compatible server choosing the calls)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chatbot.tools.models import Action, ActionCall, CallStatus
from tests.tools.conftest import make_action

from .helpers import Shop, open_widget, operator_endpoint, wait_for_reply

pytestmark = pytest.mark.browser


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class ToolModel(BaseHTTPRequestHandler):
    """Calls cancel_order first; then words the tool result it got back."""

    def do_POST(self) -> None:  # the chat completions endpoint
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        messages = body["messages"]
        results = [m["content"] for m in messages if m["role"] == "tool"]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if not results:
            call = {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "cancel_order", "arguments": '{"order_id": "A17"}'},
            }
            self._chunk({"tool_calls": [call]}, None)
            self._chunk({}, "tool_calls")
        else:
            done = "cancelled" in results[-1]
            text = "Your order A17 is cancelled." if done else "Please confirm above."
            self._chunk({"content": text}, None)
            self._chunk({}, "stop")
        self.wfile.write(b"data: [DONE]\n\n")

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> None:
        chunk = {"object": "chat.completion.chunk", "created": int(time.time()), "model": "m",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


class OrdersApi(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        card = {
            "title": "Order A17 cancelled",
            "fields": [{"label": "Refund", "value": "€42.00"}],
            "links": [{"label": "View order", "url": "https://shop.acme.test/orders/A17"}],
            "replies": ["Thanks!"],
        }
        data = json.dumps({"status": "cancelled", "card": card}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def servers(live_db: None, settings: Any) -> Iterator[tuple[str, str]]:
    settings.OUTBOUND_ALLOW_CIDRS = ["127.0.0.0/8"]
    model, api = serve(ToolModel), serve(OrdersApi)
    yield (
        f"http://127.0.0.1:{model.server_address[1]}",
        f"http://127.0.0.1:{api.server_address[1]}",
    )
    for server in (model, api):
        server.shutdown()
        server.server_close()


def test_the_visitor_confirms_a_cancellation_and_sees_the_result_card(
    page: Any, shop: Shop, servers: tuple[str, str]
) -> None:
    model_url, api_url = servers
    operator_endpoint("tools", model_url + "/v1", "m")
    make_action(
        shop.bot.tenant,
        shop.bot,
        api_url + "/cancel",
        name="cancel_order",
        title="Cancelling your order",
        method="POST",
        needs_confirmation=True,
        parameters={
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "Order number"}},
        },
    )
    frame = open_widget(page, shop.url)
    frame.fill("#input", "Please cancel my order A17")
    frame.press("#input", "Enter")
    wait_for_reply(frame, "Please confirm above.")
    confirm = frame.locator(".card.confirm")
    assert "Cancelling your order" in confirm.inner_text()
    assert "Order number" in confirm.inner_text() and "A17" in confirm.inner_text()
    assert ActionCall.objects.get().status == CallStatus.AWAITING  # nothing ran yet
    confirm.get_by_role("button", name="Confirm").click()
    wait_for_reply(frame, "Your order A17 is cancelled.")
    card = frame.locator(".msg.action .card").last
    card.wait_for()
    assert "Order A17 cancelled" in card.inner_text() and "€42.00" in card.inner_text()
    link = card.get_by_role("link", name="View order")
    assert link.get_attribute("href") == "https://shop.acme.test/orders/A17"
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert card.get_by_role("button", name="Thanks!").is_visible()
    call = ActionCall.objects.get()
    assert call.status == CallStatus.DONE and call.confirmed_by
    assert Action.objects.count() == 1
