"""The host-page JS API beyond open/close: events (ready, unread, handoff, error, message),
off, show/hide, prefill, shutdown (forget the visitor) and a one-time warning for unknown
commands (docs/widget-protocol.md, section 1)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Shop, open_widget, widget_frame

pytestmark = pytest.mark.browser


def test_the_host_api_events_and_commands(page: Any, shop: Shop) -> None:
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    events: list[Any] = []
    page.expose_function("recordParley", lambda kind, detail: events.append((kind, detail)))
    page.add_init_script(
        "window.Parley = window.Parley || "
        "function () { (Parley.q = Parley.q || []).push(arguments) };"
        "for (const k of ['ready', 'unread', 'handoff', 'error', 'message', 'open']) "
        "Parley('on', k, (d) => window.recordParley(k, d || null));"
    )
    frame = open_widget(page, shop.url)
    assert ("ready", None) in events

    page.evaluate("Parley('nonsense'); Parley('nonsense')")
    assert sum("unknown command nonsense" in w for w in warnings) == 1

    page.evaluate("Parley('prefill', 'I would like a repair quote')")
    frame.wait_for_function(
        "(text) => document.getElementById('input').value === text",
        arg="I would like a repair quote",
        polling=50,
    )

    page.evaluate("Parley('hide')")
    assert page.evaluate("document.querySelector('parley-widget').style.display") == "none"
    page.evaluate("Parley('show')")
    assert page.evaluate("document.querySelector('parley-widget').style.display") == ""

    # Asking for a person fires `handoff` once the conversation waits for the team. (The
    # bot has no model here: its first reply fails, which must fire no `message` event.)
    send = (
        "(text) => { document.getElementById('input').value = text;"
        "document.getElementById('composer').requestSubmit() }"
    )
    frame.evaluate(send, "Hello")
    key = "parley:" + shop.bot.public_key
    # The ack names the new conversation (stored by the frame): now it follows its status.
    frame.wait_for_function(
        "(key) => (localStorage.getItem(key) || '').includes('\"c_')", arg=key, polling=50
    )
    frame.evaluate(send, "Can I talk to a person please?")
    for _ in range(100):
        if any(kind == "handoff" for kind, _ in events):
            break
        page.wait_for_timeout(50)
    assert any(kind == "handoff" for kind, _ in events)
    assert "conversation" in (frame.evaluate(f"localStorage.getItem('{key}')") or "")

    # update: a single-page app moved; agents see the new address.
    from chatbot.conversations.models import Visitor

    page.evaluate("Parley('update', {url: location.origin + '/cart?step=2'})")
    for _ in range(100):
        if Visitor.objects.filter(page_url=shop.site.url("/cart?step=2")).exists():
            break
        page.wait_for_timeout(50)
    assert Visitor.objects.filter(page_url=shop.site.url("/cart?step=2")).exists()

    # off: the handler stops hearing about it.
    opened_before = sum(kind == "open" for kind, _ in events)
    page.evaluate("Parley('off', 'open'); Parley('close'); Parley('open')")
    assert sum(kind == "open" for kind, _ in events) == opened_before

    # shutdown: the visitor is forgotten; a fresh frame says ready again.
    readies = sum(kind == "ready" for kind, _ in events)
    page.evaluate("Parley('shutdown')")
    for _ in range(100):
        if sum(kind == "ready" for kind, _ in events) > readies:
            break
        page.wait_for_timeout(50)
    assert sum(kind == "ready" for kind, _ in events) > readies
    fresh = widget_frame(page)
    stored = fresh.evaluate(f"localStorage.getItem('{key}')") or ""
    assert "conversation" not in stored or '"conversation":null' in stored
    assert not [d for kind, d in events if kind == "message" and not (d or {}).get("text")]
