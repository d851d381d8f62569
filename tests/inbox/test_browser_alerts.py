"""An agent's day with the model down, in a real Chromium: the alert and the Inbox count when
a visitor waits, the visitor seeing the agent's name and avatar, and the end of the chat."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from chatbot.profiles.actions import update_profile
from chatbot.tenants.models import User
from tests.fixtures.servers import LiveServer
from tests.inbox.test_browser import logged_in_page
from tests.widget.browser.conftest import host_sites, shop  # noqa: F401 (fixtures)
from tests.widget.browser.helpers import Shop, open_widget

pytestmark = pytest.mark.browser

# Headless Chromium shows no notification and plays no sound: record what the page asks for.
RECORD_ALERTS = """
window.parleyAlerts = [];
window.Notification = class {
  constructor(title) { window.parleyAlerts.push('notification: ' + title); }
  static get permission() { return 'granted'; }
  static requestPermission() { return Promise.resolve('granted'); }
  addEventListener() {}
};
window.AudioContext = class {
  constructor() { this.currentTime = 0; this.destination = {}; }
  createOscillator() {
    return { frequency: {}, connect() {}, stop() {},
             start() { window.parleyAlerts.push('tone'); } };
  }
  createGain() {
    return { gain: { setValueAtTime() {}, exponentialRampToValueAtTime() {} }, connect() {} };
  }
};
"""


def png(colour: str = "#2b8a3e") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), colour).save(out, "PNG")
    return out.getvalue()


def alerts(page: Any) -> list[str]:
    return list(page.evaluate("window.parleyAlerts"))


def nav_count(page: Any) -> str:
    return str(page.get_attribute("[data-nav-waiting]", "data-nav-waiting"))


def test_an_agent_is_alerted_and_the_visitor_sees_who_answers(
    browser: Any,
    page: Any,
    shop: Shop,  # noqa: F811
    asgi_server: LiveServer,
    charlie: User,
) -> None:
    update_profile(
        charlie,
        name="Charlie Brown",
        avatar=png(),
        remove_avatar=False,
        notify_browser=True,
        notify_sound=True,
    )
    agent = logged_in_page(browser, charlie, asgi_server)
    agent.add_init_script(RECORD_ALERTS)
    agent.goto(asgi_server.url + "/dashboard/")  # any dashboard page, not only the inbox
    agent.wait_for_selector("html[data-inbox-connected]")
    assert nav_count(agent) == "0" and agent.is_hidden("[data-nav-waiting]")

    # No model at all: the visitor is told, and asks for a person.
    frame = open_widget(page, shop.url)
    frame.wait_for_function("() => !document.getElementById('banner').hidden")
    frame.fill("#input", "Can I talk to a person?")
    frame.press("#input", "Enter")

    # The visitor is told at once (not left with "typing…"), and the banner goes.
    frame.wait_for_function(
        "() => document.getElementById('log').textContent.includes('We have asked someone')"
        " && !document.querySelector('#log .typing') && document.getElementById('banner').hidden",
        polling=100,
    )
    agent.wait_for_function("() => window.parleyAlerts.length >= 2", polling=100)
    assert alerts(agent) == ["tone", "notification: A visitor is waiting for a person."]
    agent.wait_for_function(
        "() => document.querySelector('[data-nav-waiting]').dataset.navWaiting === '1'",
        polling=100,
    )
    assert agent.is_visible("[data-nav-waiting]")

    agent.click("a[href='/conversations/']")
    agent.click("tr.status-waiting a")
    agent.wait_for_selector("html[data-inbox-connected]")
    agent.click("#takeover")
    agent.wait_for_selector("#status-line[data-status='agent']")
    agent.fill("#reply-text", "Hello, I can help.")
    agent.click("#reply-form button[type=submit]")

    # The visitor sees a person by name and face; the "assistant unavailable" banner is gone.
    frame.wait_for_function(
        "() => document.getElementById('log').textContent.includes('I can help')", polling=100
    )
    assert "Charlie Brown joined the conversation." in frame.inner_text("#log")
    assert frame.inner_text("#log .msg.agent .author") == "Charlie Brown"
    face = frame.locator("#log .msg.agent .author img.face")
    assert face.evaluate("(img) => img.complete && img.naturalWidth") == 128
    assert frame.is_hidden("#banner")
    agent.wait_for_function(
        "() => document.querySelector('[data-nav-waiting]').dataset.navWaiting === '0'",
        polling=100,
    )

    # The visitor writes in Charlie's conversation: Charlie is alerted.
    agent.wait_for_selector("html[data-inbox-connected]")
    agent.evaluate("window.parleyAlerts = []")
    frame.fill("#input", "My order never arrived")
    frame.press("#input", "Enter")
    agent.wait_for_function("() => window.parleyAlerts.length >= 2", polling=100)
    assert "notification: A visitor wrote in your conversation." in alerts(agent)

    # Closed: said once in the log, and the composer gives way to "New conversation".
    agent.click("#close")
    frame.wait_for_function("() => document.getElementById('composer-row').hidden", polling=100)
    log = frame.inner_text("#log")
    assert log.count("closed") == 1 and "This conversation was closed." in log
    assert frame.is_hidden("#input")
    frame.click("#composer-note button")
    frame.wait_for_function(
        "() => !document.getElementById('composer-row').hidden"
        " && !document.querySelector('#log .msg.agent')",
        polling=100,
    )
    agent.context.close()
