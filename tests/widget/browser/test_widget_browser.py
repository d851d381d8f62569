"""The widget in a real headless Chromium, on a host page served from another origin.

The platform runs in `asgi_server` (uvicorn, HTTP + WebSocket); the host page is a tiny HTTP
server on another port embedding the bot with the snippet tenants copy; replies come from the
real llama.cpp server (tiny model: "Hello from a tiny llama!") or, for the XSS corpus, from a
scripted OpenAI-compatible server on a real socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.servers import LiveServer

from .helpers import (
    HostSite,
    ScriptedModel,
    Shop,
    embed_page,
    frame_resources,
    launcher_badge,
    open_widget,
    operator_endpoint,
    time_to_usable_composer,
    wait_for_reply,
    widget_frame,
)

pytestmark = pytest.mark.browser

TINY_REPLY = "Hello from a tiny llama!"

# A closed panel hides the frame, and hidden frames get no animation frames: poll on a timer
# (Playwright's default polling is requestAnimationFrame, which would never run again).
CLOSED = "() => !document.body.classList.contains('open')"


@pytest.fixture
def llama_route(live_db: None, llama_server: Any) -> Any:
    return operator_endpoint(
        "tiny llama", llama_server.url, llama_server.model, key=llama_server.key
    )


def socket_frames(page: Any) -> list[dict[str, Any]]:
    """Every frame the widget's WebSocket receives (Playwright sees the frame's sockets)."""
    import json

    received: list[dict[str, Any]] = []

    def on_socket(socket: Any) -> None:
        socket.on("framereceived", lambda payload: received.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return received


@pytest.mark.llama
def test_visitor_sends_and_sees_the_reply_stream_in_then_finds_it_after_reload(
    page: Any, shop: Shop, llama_route: Any
) -> None:
    received = socket_frames(page)
    frame = open_widget(page, shop.url)
    assert "Ask me about" in frame.inner_text("#log .greeting")
    # The greeting's markdown is rendered, not shown raw.
    assert frame.inner_text("#log .greeting strong") == "repairs"

    frame.fill("#input", "Hello, are you there?")
    frame.press("#input", "Enter")
    wait_for_reply(frame, TINY_REPLY)

    kinds = [f["type"] for f in received]
    assert "ack" in kinds and "delta" in kinds, kinds
    streamed = "".join(f["text"] for f in received if f["type"] == "delta")
    assert streamed == TINY_REPLY
    statuses = [
        f["message"]["status"]
        for f in received
        if f["type"] == "message" and f["message"]["role"] == "assistant"
    ]
    assert statuses[-1] == "complete"
    # The reply is spoken to screen readers through the polite live region.
    frame.wait_for_function(
        "(t) => document.getElementById('live').textContent.includes(t)", arg=TINY_REPLY
    )
    # Feedback on the reply.
    frame.click("#log .msg.assistant:not(.greeting) .feedback button[aria-label='Helpful']")
    frame.wait_for_selector(".feedback button[aria-label='Helpful'][aria-pressed='true']")

    page.reload()
    frame = open_widget(page, shop.url)
    frame.wait_for_function(
        "(t) => document.getElementById('log').textContent.includes(t)", arg=TINY_REPLY
    )
    texts = frame.eval_on_selector_all(
        "#log .msg:not(.greeting) .bubble", "(nodes) => nodes.map((n) => n.textContent)"
    )
    assert texts == ["Hello, are you there?", TINY_REPLY]
    # The feedback was stored, not just drawn.
    assert frame.get_attribute(".feedback button[aria-label='Helpful']", "aria-pressed") == "true"
    # The session token never appears in a URL the page loaded.
    token = frame.evaluate(
        "() => JSON.parse(localStorage.getItem('parley:' + "
        "JSON.parse(document.getElementById('parley-config').textContent).bot.key)).token"
    )
    assert token
    assert all(token not in f.url for f in page.frames)


@pytest.mark.llama
def test_unread_count_shows_on_the_launcher_when_a_reply_arrives_while_closed(
    page: Any, shop: Shop, llama_route: Any
) -> None:
    events: list[Any] = []
    page.expose_function("recordParley", lambda kind, detail: events.append((kind, detail)))
    frame = open_widget(page, shop.url)
    page.evaluate(
        "for (const k of ['open', 'close', 'message']) "
        "Parley('on', k, (d) => window.recordParley(k, d || null))"
    )
    page.evaluate("Parley('close')")
    frame.wait_for_function(CLOSED, polling=50)
    assert launcher_badge(page) == ""
    # A message goes out from the (hidden) panel, so the reply arrives while it is closed.
    frame.evaluate(
        "document.getElementById('input').value = 'Ping';"
        "document.getElementById('composer').requestSubmit()"
    )
    wait_for_reply(frame, TINY_REPLY)
    for _ in range(50):  # the badge follows the reply by one postMessage
        if launcher_badge(page) == "1":
            break
        page.wait_for_timeout(50)
    assert launcher_badge(page) == "1"
    assert ("message", {"role": "assistant", "text": TINY_REPLY}) in events
    page.evaluate("Parley('open')")
    assert launcher_badge(page) == ""
    assert [kind for kind, _ in events if kind != "message"] == ["close", "open"]


XSS_REPLY = "\n\n".join(
    [
        "Here you go: <script>window.__xss = 'script'</script>",
        '<img src="x" onerror="window.__xss = \'img\'">',
        '<svg onload="window.__xss = \'svg\'"><circle r="5"/></svg>',
        "[click me](javascript:window.__xss='js-link')",
        "[data link](data:text/html,<script>parent.__xss='data'</script>)",
        "[vb](vbscript:msgbox(1)) and [rel](/relative/path)",
        "![tracker]({pixel})",
        "<a href=\"javascript:window.__xss='raw-a'\">raw anchor</a>",
        "**bold <iframe src=\"javascript:parent.__xss='iframe'\"></iframe>**",
        "<details open ontoggle=\"window.__xss='details'\">x</details>",
        '[safe docs](https://example.com/docs "Docs") and `<b>not bold</b>`',
        "```html\n<script>window.__xss='code'</script>\n```",
        "- item <style>body{display:none}</style>\n- [x](JaVaScRiPt:alert(1))",
    ]
)


@pytest.fixture
def scripted_model(live_db: None) -> Any:
    model = ScriptedModel("")
    model.reply = XSS_REPLY.replace("{pixel}", model.url + "/pixel.png")
    operator_endpoint("scripted", model.url + "/v1", "scripted")
    yield model
    model.close()


def test_xss_payloads_in_model_output_stay_inert(
    page: Any, shop: Shop, scripted_model: ScriptedModel
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    frame = open_widget(page, shop.url)
    frame.fill("#input", "Show me something dangerous")
    frame.press("#input", "Enter")
    wait_for_reply(frame, "safe docs")
    reply = "#log .msg.assistant:not(.greeting) .bubble"

    assert frame.evaluate("window.__xss") is None
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    # No element from the payload exists: only the allowlisted ones.
    tags = set(frame.eval_on_selector_all(reply + " *", "(ns) => ns.map((n) => n.localName)"))
    assert tags <= {"p", "strong", "em", "code", "pre", "ul", "ol", "li", "a", "br", "span", "del"}
    attributes = frame.eval_on_selector_all(
        reply + " *", "(ns) => ns.flatMap((n) => [...n.attributes].map((a) => a.name))"
    )
    assert not [a for a in attributes if a.startswith("on") or a in ("src", "style", "srcdoc")]
    # Links: only http(s), opened safely.
    links = frame.eval_on_selector_all(
        reply + " a", "(ns) => ns.map((a) => [a.href, a.rel, a.target, a.textContent])"
    )
    assert links == [["https://example.com/docs", "noopener noreferrer", "_blank", "safe docs"]]
    # The payloads are shown as text, so the visitor sees what the model said.
    text = frame.inner_text(reply)
    assert "<script>window.__xss = 'script'</script>" in text
    assert "click me" in text and "[tracker]" in text
    # The markdown image pointing elsewhere never loaded.
    assert [r for r in scripted_model.requests if r.startswith("GET")] == []
    # And the page is still there (the <style> did not hide anything).
    assert frame.is_visible("#input")


def test_a_host_page_on_an_origin_that_is_not_allowed_gets_no_widget(
    page: Any, shop: Shop, asgi_server: LiveServer, host_sites: Callable[[], HostSite]
) -> None:
    elsewhere = host_sites()
    elsewhere.pages["/"] = embed_page(shop.bot, asgi_server.url)
    # A page that tries to frame the chat directly.
    elsewhere.pages["/framed"] = (
        f'<!doctype html><iframe id="f" src="{asgi_server.url}/widget/frame/{shop.bot.public_key}'
        f'#origin={elsewhere.origin}"></iframe>'
    )
    # The config endpoint refuses the origin (no CORS grant), so the loader draws nothing and
    # says why in the console.
    with page.expect_console_message(lambda m: "not available on" in m.text) as message:
        page.goto(elsewhere.url("/"))
    assert elsewhere.origin in message.value.text
    page.wait_for_timeout(300)
    assert page.locator("parley-widget").count() == 0
    assert [f for f in page.frames if "/widget/frame/" in f.url] == []

    page.goto(elsewhere.url("/framed"))
    page.wait_for_timeout(500)
    # frame-ancestors refuses it: the frame holds the browser's error page, not the chat.
    for frame in page.frames[1:]:
        assert frame.locator("#input").count() == 0

    # The same bot on the allowed origin works, in the same browser.
    frame = open_widget(page, shop.url)
    assert frame.is_visible("#input")


def test_keyboard_only_visitor_can_open_chat_rate_and_close(
    page: Any, shop: Shop, scripted_model: ScriptedModel
) -> None:
    scripted_model.reply = "Sure: **we repair** e-bikes."
    page.goto(shop.url)
    page.locator("parley-widget").wait_for(state="attached")
    # Tab through the host page until the launcher has focus.
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.localName") == "parley-widget":
            break
    else:
        raise AssertionError("the launcher is not reachable with Tab")
    page.keyboard.press("Enter")
    frame = widget_frame(page)
    frame.wait_for_function("() => document.activeElement.id === 'input'")
    page.keyboard.type("Do you repair e-bikes?")
    page.keyboard.press("Enter")
    wait_for_reply(frame, "we repair")
    # Shift+Tab from the composer: "Talk to a person", then the reply's last button.
    page.keyboard.press("Shift+Tab")
    assert frame.evaluate("document.activeElement.textContent") == "Talk to a person"
    page.keyboard.press("Shift+Tab")
    assert frame.evaluate("document.activeElement.getAttribute('aria-label')") == "Not helpful"
    page.keyboard.press("Enter")
    frame.wait_for_selector(".feedback button[aria-label='Not helpful'][aria-pressed='true']")
    # Focus stays on the button that was redrawn.
    assert frame.evaluate("document.activeElement.getAttribute('aria-label')") == "Not helpful"
    # Escape closes the panel and gives focus back to the launcher.
    page.keyboard.press("Escape")
    frame.wait_for_function(CLOSED, polling=50)
    page.wait_for_function("() => document.activeElement.localName === 'parley-widget'")
    # Enter on the launcher opens it again with the composer focused.
    page.keyboard.press("Enter")
    frame.wait_for_function("() => document.activeElement.id === 'input'")
    page.keyboard.type("Thanks")
    assert frame.input_value("#input") == "Thanks"


def test_widget_speaks_the_host_locale_right_to_left_for_arabic(page: Any, shop: Shop) -> None:
    frame = open_widget(page, shop.url)
    assert frame.get_attribute("#input", "placeholder") == "Write a message…"
    page.evaluate("Parley('setLocale', 'ar')")
    frame.wait_for_function("() => document.documentElement.dir === 'rtl'")
    assert frame.get_attribute("#input", "placeholder") == "اكتب رسالة…"
    assert frame.get_attribute("#close-btn", "aria-label") == "إغلاق المحادثة"
    page.evaluate("Parley('setLocale', 'de')")
    frame.wait_for_function("() => document.documentElement.lang === 'de'")
    assert frame.get_attribute("#input", "placeholder") == "Nachricht schreiben…"
    assert frame.evaluate("document.documentElement.dir") == "ltr"


def frame_on_host_page(page: Any, url: str) -> None:
    """Frame `url` in the host page (in its light DOM, beside the widget) and wait for it."""
    page.evaluate(
        """(url) => new Promise((resolve) => {
            const child = document.createElement('iframe');
            child.src = url;
            child.addEventListener('load', resolve);
            document.body.appendChild(child);
        })""",
        url,
    )


def test_frame_and_loader_ignore_messages_from_other_windows_and_origins(
    page: Any, shop: Shop, host_sites: Callable[[], HostSite]
) -> None:
    frame = open_widget(page, shop.url)
    attacker = host_sites()
    # Another origin, framed by the host page: it can reach the chat's window and post to it.
    attacker.pages["/"] = (
        "<!doctype html><script>"
        "const chat = parent.frames[0];"
        "chat.postMessage({parley: 1, type: 'close'}, '*');"
        "chat.postMessage({parley: 1, type: 'locale', code: 'ar'}, '*');"
        "parent.postMessage({parley: 1, type: 'unread', count: 5}, '*');"
        "parent.postMessage({parley: 1, type: 'close'}, '*');"
        "</script>"
    )
    frame_on_host_page(page, attacker.url("/"))
    # The host page's own origin, but another window (a same-origin child frame).
    page.evaluate(
        """() => {
            const child = document.createElement('iframe');
            document.body.appendChild(child);
            child.contentWindow.parent.frames[0].postMessage({parley: 1, type: 'close'}, '*');
        }"""
    )
    page.wait_for_timeout(300)
    assert frame.evaluate("document.body.classList.contains('open')")
    assert frame.evaluate("document.documentElement.lang") == "en"
    assert launcher_badge(page) == ""
    # The real parent still works.
    page.evaluate("Parley('close')")
    frame.wait_for_function(CLOSED, polling=50)


def test_the_chat_frame_ignores_messages_a_foreign_origin_really_posts_to_it(
    page: Any, shop: Shop, host_sites: Callable[[], HostSite]
) -> None:
    # No foreign window finds the frame on its own (closed shadow root: not in parent.frames,
    # not by name; a popup of its URL is cut off by Cross-Origin-Opener-Policy). Suppose it
    # got a reference anyway: here the chat frame says hello to a foreign page framed by the
    # host, which answers through event.source, i.e. really posts to the chat frame.
    frame = open_widget(page, shop.url)
    attacker = host_sites()
    attacker.pages["/"] = (
        "<!doctype html><script>"
        "addEventListener('message', (event) => {"
        "  if (event.data !== 'hello') return;"
        "  for (const m of [{parley: 1, type: 'close'}, {parley: 1, type: 'locale', code: 'ar'},"
        "                   {parley: 1, type: 'init', locale: 'de', open: false}])"
        "    event.source.postMessage(m, '*');"
        "});"
        "</script>"
    )
    frame_on_host_page(page, attacker.url("/"))
    frame.evaluate(
        """(foreign) => {
            window.seen = 0;
            addEventListener('message', (event) => { if (event.origin === foreign) seen++; });
            const all = parent.frames;
            for (let i = 0; i < all.length; i++) all[i].postMessage('hello', '*');
        }""",
        attacker.origin,
    )
    frame.wait_for_function("() => window.seen === 3", timeout=5000, polling=50)  # delivered...
    page.wait_for_timeout(200)
    # ...and ignored: still open, still in English.
    assert frame.evaluate("document.body.classList.contains('open')")
    assert frame.evaluate("document.documentElement.lang") == "en"
    page.evaluate("Parley('close')")  # the real parent still works
    frame.wait_for_function(CLOSED, polling=50)


def test_time_from_click_to_usable_composer_and_bytes_the_frame_loads(
    browser: Any, shop: Shop, asgi_server: LiveServer
) -> None:
    import gzip
    import statistics

    import httpx

    from bench.widget_size.sizes import FRAME_BUDGET

    medians = {}
    for label, prefetched in (("no prefetch", False), ("prefetched on idle", True)):
        samples = []
        for _ in range(3):
            context = browser.new_context()
            samples.append(
                time_to_usable_composer(context.new_page(), shop.url, prefetched=prefetched)
            )
            context.close()
        medians[label] = statistics.median(samples)
    print(
        "\nclick on the launcher -> usable composer (Chromium, median of 3): "
        + ", ".join(f"{label} {ms:.0f} ms" for label, ms in medians.items())
    )
    assert all(ms > 0 for ms in medians.values())

    # What the frame loads when opened: its page, one stylesheet, two scripts; nothing else.
    context = browser.new_context()
    page = context.new_page()
    frame = open_widget(page, shop.url)
    loaded = frame_resources(frame)
    context.close()
    assert sorted(path.rsplit("/", 1)[-1] for path in loaded) == [
        "frame.css",
        "frame.js",
        "i18n.js",
    ]
    frame_url = f"{asgi_server.url}/widget/frame/{shop.bot.public_key}"
    bodies = [httpx.get(frame_url).content] + [
        httpx.get(asgi_server.url + p).content for p in loaded
    ]
    total = sum(len(gzip.compress(body, 9)) for body in bodies)
    print(f"frame on open: {total} bytes gzip (budget {FRAME_BUDGET})")
    assert total <= FRAME_BUDGET


def test_a_delta_lost_on_the_way_is_fetched_and_the_reply_shows_whole(
    page: Any, shop: Shop, scripted_model: ScriptedModel
) -> None:
    """Between processes an event can be lost (a Redis restart): here the socket drops one
    delta on its way to the frame, which sees the gap, asks with `reply.fetch` and shows the
    whole reply, emoji included (offsets count code points)."""
    import json
    import time

    scripted_model.reply = "Bikes 🚲 and e-bikes 🚴 are repaired while you wait, every day. " * 3
    scripted_model.chunk = 6
    sent_by_frame: list[dict[str, Any]] = []
    held: list[str] = []
    state = {"dropped": None, "fetched": False}

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "delta" and frame["offset"] > 0 and state["dropped"] is None:
                state["dropped"] = frame  # lost on its way
                return
            final = frame.get("type") == "message" and frame["message"]["status"] == "complete"
            if final and frame["message"]["role"] == "assistant" and not state["fetched"]:
                held.append(str(message))  # the end waits until the gap was fetched
                return
            ws.send(message)
            if frame.get("type") == "delta" and state["fetched"]:
                for late in held:
                    ws.send(late)
                held.clear()

        def to_server(message: str | bytes) -> None:
            frame = json.loads(message)
            sent_by_frame.append(frame)
            if frame.get("type") == "reply.fetch":
                state["fetched"] = True
            server.send(message)

        server.on_message(to_page)
        ws.on_message(to_server)

    page.context.route_web_socket("**/ws/widget/**", route)
    frame = open_widget(page, shop.url)
    frame.fill("#input", "Do you repair bikes?")
    frame.press("#input", "Enter")
    deadline = time.monotonic() + 30
    while not state["fetched"] and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    fetches = [f for f in sent_by_frame if f.get("type") == "reply.fetch"]
    dropped = state["dropped"]
    assert dropped is not None and len(fetches) == 1, (dropped, sent_by_frame)
    assert fetches[0] == {"type": "reply.fetch", "seq": dropped["seq"], "offset": dropped["offset"]}
    wait_for_reply(frame, scripted_model.reply.strip()[-40:])
    shown = frame.inner_text("#log .msg.assistant:not(.greeting) .bubble")
    assert shown.strip() == scripted_model.reply.strip()
