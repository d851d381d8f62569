"""The widget as a guest on the host page: one global, no CSS in or out, phones, token refresh."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .helpers import Shop, open_widget, widget_frame

pytestmark = pytest.mark.browser

# A closed panel hides the frame, and hidden frames get no animation frames: poll on a timer
# (Playwright's default polling is requestAnimationFrame, which would never run again).
CLOSED = "() => !document.body.classList.contains('open')"


def test_the_loader_adds_one_global_and_one_element(page: Any, shop: Shop) -> None:
    shop.site.pages["/blank"] = "<!doctype html><title>blank</title><button>Buy</button>"
    page.goto(shop.site.url("/blank"))
    baseline = set(page.evaluate("Object.keys(window)"))
    page.goto(shop.url)
    page.locator("parley-widget").wait_for(state="attached")
    widget_frame(page)  # the idle prefetch ran too
    added = set(page.evaluate("Object.keys(window)")) - baseline
    assert added == {"Parley"}
    assert page.evaluate("document.body.lastElementChild.localName") == "parley-widget"
    assert page.evaluate("document.querySelectorAll('body > parley-widget').length") == 1
    # Its insides are in a closed shadow root: the host page's scripts cannot reach them.
    assert page.evaluate("document.querySelector('parley-widget').shadowRoot") is None


def computed(page: Any, css_class: str, prop: str) -> str:
    """A computed style inside the closed shadow root, read through the DevTools protocol."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]

        def find(node: dict[str, Any]) -> int | None:
            attributes = node.get("attributes") or []
            if dict(zip(attributes[::2], attributes[1::2], strict=True)).get("class") == css_class:
                return int(node["nodeId"])
            for child in [*(node.get("shadowRoots") or []), *(node.get("children") or [])]:
                found = find(child)
                if found is not None:
                    return found
            return None

        node_id = find(root)
        assert node_id is not None, css_class
        styles = cdp.send("CSS.getComputedStyleForNode", {"nodeId": node_id})["computedStyle"]
        return next(s["value"] for s in styles if s["name"] == prop)
    finally:
        cdp.detach()


STYLE_OF = "(b) => [...getComputedStyle(b)].map((p) => p + ':' + getComputedStyle(b)[p]).join(';')"


def test_no_css_leaks_in_or_out(page: Any, shop: Shop) -> None:
    from chatbot.bots.snippets import embed_snippet

    # The same host page without the widget, for comparison.
    shop.site.pages["/without"] = shop.site.pages["/"].replace(embed_snippet(shop.bot), "")
    page.goto(shop.site.url("/without"))
    alone = page.locator("button", has_text="Call us").evaluate(STYLE_OF)
    page.goto(shop.url)
    page.locator("parley-widget").wait_for(state="attached")
    widget_frame(page)
    # Out: the host's own elements look exactly the same with the widget on the page.
    assert page.locator("button", has_text="Call us").evaluate(STYLE_OF) == alone
    # In: the launcher keeps its own look despite the host's `button {...}` rule (yellow,
    # square, thick border).
    assert computed(page, "l", "background-color") == "rgb(79, 70, 229)"  # the bot's accent
    assert computed(page, "l", "border-top-width") == "0px"
    assert computed(page, "l", "border-top-left-radius") == "50%"


def test_panel_takes_the_whole_screen_on_a_phone(browser: Any, shop: Shop) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        frame = open_widget(page, shop.url)
        box = frame.frame_element().bounding_box()
        assert box == {"x": 0, "y": 0, "width": 375, "height": 740}
        # The launcher steps aside; the frame's own close button closes the panel.
        frame.click("#close-btn")
        frame.wait_for_function(CLOSED, polling=50)
        assert frame.frame_element().bounding_box() is None
    finally:
        context.close()


def test_session_token_is_refreshed_before_it_expires(page: Any, shop: Shop) -> None:
    sessions: list[str] = []
    sent: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: sessions.append(r.url) if r.url.endswith("/widget/api/session") else None,
    )
    page.on("websocket", lambda ws: ws.on("framesent", lambda p: sent.append(json.loads(p))))
    page.clock.install()
    # Playwright's own waiting runs on the page's timers, which the fake clock holds: every
    # wait in this test polls from here instead.
    page.goto(shop.url)
    page.evaluate("Parley('open')")
    frame = widget_frame(page)
    read = "() => JSON.parse(localStorage.getItem(localStorage.key(0)) || 'null')"
    for _ in range(200):
        stored = frame.evaluate(read)
        if stored and sent:
            break
        page.wait_for_timeout(50)
    assert len(sessions) == 1
    # 15-minute tokens: the frame asks for a new one about a minute before expiry...
    page.clock.run_for("14:05")
    for _ in range(100):
        refresh = [f for f in sent if f["type"] == "token.refresh"]
        if refresh:
            break
        page.wait_for_timeout(50)
    assert len(sessions) == 2
    renewed = frame.evaluate(read)
    # (Issued in the same real second, the JWT itself may be identical; its lifetime is new.)
    assert renewed["exp"] > stored["exp"] + 800_000
    # ...and hands it to the open socket, which stays open.
    assert [f["token"] for f in refresh] == [renewed["token"]]
