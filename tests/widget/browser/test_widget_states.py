"""The widget's error states, fallback transport and signed identity, in a real Chromium."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from chatbot.conversations.models import Visitor

from .helpers import ScriptedModel, Shop, open_widget, operator_endpoint, wait_for_reply

pytestmark = pytest.mark.browser

# A WebSocket that a proxy or firewall refuses: it never opens and closes abnormally.
BLOCK_WEBSOCKETS = """
window.WebSocket = class BlockedSocket extends EventTarget {
  constructor() {
    super();
    this.readyState = 0;
    setTimeout(() => {
      this.readyState = 3;
      this.dispatchEvent(new CloseEvent('close', { code: 1006 }));
    }, 10);
  }
  send() {}
  close() {}
};
"""


def banner(frame: Any) -> str:
    return "" if frame.is_hidden("#banner") else frame.inner_text("#banner-text")


def send(frame: Any, text: str) -> None:
    frame.fill("#input", text)
    frame.press("#input", "Enter")


@pytest.fixture
def scripted(live_db: None) -> Any:
    model = ScriptedModel("Replies work over **plain HTTP** too.")
    operator_endpoint("scripted", model.url + "/v1", "scripted")
    yield model
    model.close()


def test_reply_arrives_over_http_when_websockets_are_blocked(
    page: Any, shop: Shop, scripted: ScriptedModel
) -> None:
    page.add_init_script(BLOCK_WEBSOCKETS)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    frame = open_widget(page, shop.url)
    send(frame, "Is anyone there?")
    wait_for_reply(frame, "plain HTTP")
    assert frame.inner_text("#log .msg.assistant:not(.greeting) strong") == "plain HTTP"
    assert any("/widget/api/send" in url for url in requests)
    assert any("/widget/api/events" in url for url in requests)
    # The session token travels in a header, never in the URL.
    assert not [url for url in requests if "token=" in url or "eyJ" in url]
    # And the history is there after a reload, still over HTTP.
    page.reload()
    frame = open_widget(page, shop.url)
    frame.wait_for_function(
        "() => document.getElementById('log').textContent.includes('plain HTTP')"
    )


def test_offline_visitor_is_told_and_the_widget_reconnects_when_back(page: Any, shop: Shop) -> None:
    sockets: list[Any] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    frame = open_widget(page, shop.url)
    frame.wait_for_function("() => !!document.getElementById('log').children.length")
    page.context.set_offline(True)
    frame.wait_for_function(
        "() => document.getElementById('banner-text').textContent.startsWith('You are offline')"
    )
    connected_before = len(sockets)
    page.context.set_offline(False)
    frame.wait_for_function(
        "() => !document.getElementById('banner-text').textContent.startsWith('You are offline')"
    )
    # Back online, it connected again at once (no backoff wait).
    page.wait_for_timeout(300)
    assert len(sockets) > connected_before


def test_assistant_offline_is_explained_with_a_retry(page: Any, shop: Shop) -> None:
    # No model endpoint at all: the bot's status is "offline".
    frame = open_widget(page, shop.url)
    frame.wait_for_function("() => !document.getElementById('banner').hidden")
    assert banner(frame).startswith("The assistant is unavailable")
    assert frame.is_visible("#banner-retry")
    send(frame, "Hello?")
    reply = frame.wait_for_selector("#log .msg.assistant:not(.greeting) .meta .state")
    assert reply.inner_text().startswith("The assistant is unavailable")
    assert frame.is_visible("#log .msg.assistant:not(.greeting) .meta button")
    # The visitor's message is kept.
    assert "Hello?" in frame.inner_text("#log .msg.visitor")


def test_rate_limited_visitor_sees_the_wait_and_the_message_is_not_lost(
    page: Any, shop: Shop, settings: Any
) -> None:
    settings.WIDGET_RATE_LIMITS = {"send:visitor": (1, 60)}
    frame = open_widget(page, shop.url)
    send(frame, "first")
    frame.wait_for_selector("#log .msg.visitor[data-seq]")
    send(frame, "second")
    # (No model is configured here, so "assistant unavailable" may show first.)
    frame.wait_for_function(
        "() => document.getElementById('banner-text').textContent.includes('Try again in')"
    )
    second = frame.locator("#log .msg.visitor", has_text="second")
    assert "Not sent." in second.inner_text()
    assert second.locator("button").inner_text() == "Retry"


def test_signed_identity_from_the_host_selects_a_verified_visitor(page: Any, shop: Shop) -> None:
    token = jwt.encode(
        {
            "sub": "user-42",
            "name": "Dana",
            "email": "dana@example.com",
            "exp": int(time.time()) + 3600,
        },
        shop.bot.identity_secret,
        algorithm="HS256",
    )
    page.goto(shop.url)
    page.evaluate("(token) => Parley('identify', {token})", token)
    open_widget(page, None)
    for _ in range(100):
        if Visitor.objects.filter(bot=shop.bot, external_id="user-42", verified=True).exists():
            break
        page.wait_for_timeout(50)
    visitor = Visitor.objects.get(bot=shop.bot, external_id="user-42")
    assert visitor.verified and visitor.name == "Dana"


def test_a_forged_identity_is_refused_and_the_visitor_stays_anonymous(
    page: Any, shop: Shop
) -> None:
    forged = jwt.encode(
        {"sub": "admin", "exp": int(time.time()) + 3600}, "not-the-secret", algorithm="HS256"
    )
    page.goto(shop.url)
    page.evaluate("(token) => Parley('identify', {token})", forged)
    frame = open_widget(page, None)
    send(frame, "who am I?")
    frame.wait_for_selector("#log .msg.visitor[data-seq]")
    assert not Visitor.objects.filter(bot=shop.bot, verified=True).exists()
    assert Visitor.objects.filter(bot=shop.bot, verified=False).count() == 1


def png_bytes(width: int = 40, height: int = 30) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 60, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_visitor_attaches_an_image_when_the_route_takes_images(
    page: Any, shop: Shop, live_db: None
) -> None:
    model = ScriptedModel("Nice picture.")
    operator_endpoint("scripted vision", model.url + "/v1", "scripted", images=True)
    try:
        frame = open_widget(page, shop.url)
        assert frame.is_visible("#attach-btn")
        frame.set_input_files(
            "#file", files=[{"name": "bike.png", "mimeType": "image/png", "buffer": png_bytes()}]
        )
        frame.wait_for_selector("#previews li:not(.uploading) img")
        assert frame.is_enabled("#send-btn")
        send(frame, "What is wrong with my bike?")
        wait_for_reply(frame, "Nice picture.")
        # The stored, re-encoded image is shown from the platform, and it loads.
        image = frame.wait_for_selector("#log .msg.visitor[data-seq] .pictures img")
        assert "/widget/attachments/" in (image.get_attribute("src") or "")
        frame.wait_for_function(
            "() => document.querySelector('#log .msg.visitor .pictures img').naturalWidth === 40"
        )
        # Pasting an image and dropping one attach it too.
        frame.evaluate(
            """(bytes) => {
                const file = () => new File([new Uint8Array(bytes)], 'shot.png',
                                            {type: 'image/png'});
                const pasted = new DataTransfer();
                pasted.items.add(file());
                document.getElementById('input').dispatchEvent(
                    new ClipboardEvent('paste', {clipboardData: pasted, bubbles: true}));
                const dropped = new DataTransfer();
                dropped.items.add(file());
                document.getElementById('app').dispatchEvent(
                    new DragEvent('drop', {dataTransfer: dropped, bubbles: true}));
            }""",
            list(png_bytes()),
        )
        frame.wait_for_function(
            "() => document.querySelectorAll('#previews li:not(.uploading)').length === 2"
        )
        frame.click("#previews li:first-child .remove")
        assert frame.locator("#previews li").count() == 1
        frame.click("#previews li .remove")
        assert frame.is_hidden("#previews")
        # A file that is not an image is refused in the frame, with the reason.
        frame.set_input_files(
            "#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"}]
        )
        assert banner(frame) == "Only PNG, JPEG, WebP or GIF images can be attached."
        assert frame.is_hidden("#previews")
    finally:
        model.close()


def test_attach_is_not_offered_when_the_route_takes_no_images(
    page: Any, shop: Shop, scripted: ScriptedModel
) -> None:
    frame = open_widget(page, shop.url)
    assert frame.is_hidden("#attach-btn")


def test_visitor_asks_for_a_person_and_the_bot_steps_back(
    page: Any, shop: Shop, scripted: ScriptedModel
) -> None:
    from chatbot.conversations.models import Conversation

    frame = open_widget(page, shop.url)
    assert frame.locator("#suggestions .chip.human").count() == 0  # nothing to hand off yet
    send(frame, "Can I talk to someone?")
    wait_for_reply(frame, "plain HTTP")
    frame.click("#suggestions .chip.human")
    frame.wait_for_selector("#log .msg.system", state="attached")
    frame.wait_for_function(
        "() => document.querySelector('#log .msg.system').textContent"
        ".includes('We have asked someone from the team to join.')"
    )
    assert frame.locator("#suggestions .chip.human").count() == 0
    assert Conversation.objects.get(visitor__bot=shop.bot).status == "waiting"
    page.evaluate("Parley('setLocale', 'fr')")
    frame.wait_for_function(
        "() => document.querySelector('#log .msg.system').textContent"
        ".includes('Nous avons demandé')"
    )


def test_a_stale_conversation_id_in_storage_is_dropped_and_chat_goes_on(
    page: Any, shop: Shop, scripted: ScriptedModel
) -> None:
    frame = open_widget(page, shop.url)
    send(frame, "first visit")
    wait_for_reply(frame, "plain HTTP")
    frame.evaluate(
        """() => {
            const key = localStorage.key(0);
            const saved = JSON.parse(localStorage.getItem(key));
            localStorage.setItem(key, JSON.stringify({...saved, conversation: 'c_not_mine'}));
        }"""
    )
    page.reload()
    frame = open_widget(page, shop.url)
    # The server refuses the unknown id; the frame forgets it and reopens the visitor's own.
    frame.wait_for_function(
        "() => document.getElementById('log').textContent.includes('first visit')"
    )
    stored = frame.evaluate(
        "() => JSON.parse(localStorage.getItem(localStorage.key(0))).conversation"
    )
    assert stored.startswith("c_") and stored != "c_not_mine"
    send(frame, "still here")
    frame.wait_for_selector("#log .msg.visitor[data-seq='3']")


def test_a_dropped_connection_reconnects_and_the_message_is_stored_once(
    page: Any, shop: Shop, scripted: ScriptedModel
) -> None:
    import re

    from chatbot.conversations.models import Message

    sockets: list[Any] = []
    state = {"drop_next_ack": True}

    def relay(route: Any) -> None:
        sockets.append(route)
        server = route.connect_to_server()
        closed = {"page": False}

        def to_page(message: str | bytes) -> None:
            if closed["page"]:
                return
            if state["drop_next_ack"] and '"type":"ack"' in str(message):
                # The server stored the message, but the line drops before the frame hears so.
                state["drop_next_ack"] = False
                closed["page"] = True
                route.close(code=1012, reason="restart")
                server.close()
                return
            route.send(message)

        route.on_message(lambda message: server.send(message))
        server.on_message(to_page)

    page.route_web_socket(re.compile(r"/ws/widget/"), relay)
    frame = open_widget(page, shop.url)
    send(frame, "are you still there?")
    wait_for_reply(frame, "plain HTTP")
    # The frame reconnected by itself and resent the unacknowledged message (same client_id):
    # the server kept one copy, and the visitor sees one.
    assert len(sockets) >= 2
    visitor_messages = frame.locator("#log .msg.visitor")
    assert visitor_messages.count() == 1
    assert visitor_messages.get_attribute("data-seq") == "1"
    assert Message.objects.filter(role="visitor", text="are you still there?").count() == 1
