"""What a visitor meets when the model is down, in Arabic, and in a closed conversation."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.test import Client

from .helpers import Shop, open_widget, operator_endpoint

pytestmark = pytest.mark.browser


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_model_that_refuses_connections_reads_as_assistant_offline(
    page: Any, shop: Shop, settings: Any
) -> None:
    settings.OUTBOUND_ALLOW_CIDRS = ["127.0.0.0/8"]
    operator_endpoint("dead", f"http://127.0.0.1:{closed_port()}/v1", "llama")
    config = f"/widget/config/{shop.bot.public_key}"
    assert Client().get(config, HTTP_ORIGIN=shop.site.origin).json()["status"] == "ok"
    frame = open_widget(page, shop.url)
    frame.fill("#input", "Hello?")
    frame.press("#input", "Enter")
    state = frame.wait_for_selector("#log .msg.assistant:not(.greeting) .meta .state")
    # The route said "connect": the visitor reads that the assistant is unavailable, not
    # that the reply "was interrupted".
    assert state.inner_text().startswith("The assistant is unavailable")
    # And the loader's config now says so for the next page view (the frame shows a banner).
    assert Client().get(config, HTTP_ORIGIN=shop.site.origin).json()["status"] == "offline"


def test_the_greeting_reads_in_its_own_direction_in_an_arabic_panel(page: Any, shop: Shop) -> None:
    shop.bot.default_locale = "ar"
    shop.bot.greeting = "Hello! Ask me anything."
    shop.bot.save()
    frame = open_widget(page, shop.url)
    assert frame.evaluate("document.documentElement.dir") == "rtl"
    bubble = frame.locator("#log .greeting .bubble")
    assert bubble.get_attribute("dir") == "auto"
    # The full stop stays at the end of the English sentence (its right edge, in LTR).
    assert (
        frame.evaluate(
            "getComputedStyle(document.querySelector('#log .greeting .bubble p')).direction"
        )
        == "ltr"
    )


def test_a_host_csp_that_blocks_the_widget_is_named_in_the_console(page: Any, shop: Shop) -> None:
    from chatbot.bots.snippets import site_origin

    platform = site_origin()
    policy = f"script-src 'unsafe-inline' {platform}; connect-src 'self'; frame-src {platform}"
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    shop.site.pages["/strict"] = shop.site.pages["/"].replace("<head>", "<head>" + meta, 1)
    with page.expect_console_message(lambda m: m.text.startswith("Parley:")) as message:
        page.goto(shop.site.url("/strict"))
    warning = message.value.text
    assert "Content-Security-Policy blocks connect-src" in warning
    assert "allowed origins" not in warning
    assert page.locator("parley-widget").count() == 0


def test_the_socket_and_an_upload_asking_together_share_one_session(page: Any, shop: Shop) -> None:
    from chatbot.conversations.models import Visitor

    from .test_widget_states import png_bytes

    operator_endpoint("vision", "http://127.0.0.1:9/v1", "llama", images=True)
    held: list[Any] = []  # the session requests, answered only once both could have asked
    page.route("**/widget/api/session", lambda route: held.append(route))
    frame = open_widget(page, shop.url)  # the socket's session request is now pending
    frame.set_input_files(
        "#file", files=[{"name": "bike.png", "mimeType": "image/png", "buffer": png_bytes()}]
    )
    frame.wait_for_selector("#previews li.uploading")
    frame.evaluate("() => new Promise((done) => setTimeout(done, 0))")  # the upload has asked
    assert len(held) == 1
    for route in held:
        route.continue_()
    frame.wait_for_selector("#previews li:not(.uploading) img")
    assert Visitor.objects.filter(bot=shop.bot).count() == 1
