"""Helpers for the widget's browser tests (also used by bench/widget_size).

A host site is a tiny threaded HTTP server on its own loopback port, so the host page's
origin (http://127.0.0.1:<host port>) differs from the platform's, exactly as on a real
customer's site.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.template.loader import render_to_string

from chatbot.bots.models import Bot


@dataclass
class HostSite:
    """A web site on its own origin that serves the pages a test gives it."""

    server: ThreadingHTTPServer
    pages: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str = "/") -> str:
        return self.origin + path


class _HostHandler(BaseHTTPRequestHandler):
    server: Any

    def do_GET(self) -> None:
        site: HostSite = self.server.site
        site.requests.append(self.path)
        body = site.pages.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_site() -> HostSite:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostHandler)
    site = HostSite(server)
    server.site = site  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return site


def embed_page(bot: Bot, platform_url: str, company: str = "Acme Bikes") -> str:
    """The demo host page with exactly the snippet the bot's page shows tenants (the snippet
    points at settings.SITE_URL, which must be the platform's address)."""
    from chatbot.bots.snippets import embed_snippet

    return render_to_string(
        "widget/demo_host.html",
        {
            "snippet": embed_snippet(bot),
            "company": company,
            "bot_name": bot.name,
            "platform": platform_url,
        },
    )


@dataclass
class Shop:
    """Acme's web site with the widget embedded, and the bot behind it."""

    site: HostSite
    bot: Bot
    url: str


def operator_endpoint(name: str, url: str, model: str, key: str = "", images: bool = False) -> Any:
    """An operator-declared OpenAI-compatible endpoint: the default route of every bot."""
    from chatbot.llm.models import ModelEndpoint

    endpoint = ModelEndpoint(
        tenant=None,
        name=name,
        kind="openai",
        base_url=url,
        model=model,
        auth="bearer" if key else "none",
        images=images,
        first_token_timeout=20,
        idle_timeout=20,
    )
    if key:
        endpoint.set_secret(key)
    endpoint.save()
    return endpoint


# --- A model server that says exactly what a test needs (the XSS corpus) --------------------


class ScriptedModel:
    """An OpenAI-compatible streaming server on a real loopback socket whose reply is a fixed
    text, cut into chunks. A tiny real model cannot be made to produce an XSS payload."""

    def __init__(self, reply: str, chunk: int = 24) -> None:
        self.reply = reply
        self.chunk = chunk
        self.requests: list[str] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # Anything fetched here (a markdown image, a tracking pixel) is a leak.
                model.requests.append("GET " + self.path)
                self.send_error(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                model.requests.append("POST " + self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                pieces = [
                    model.reply[i : i + model.chunk]
                    for i in range(0, len(model.reply), model.chunk)
                ]
                for piece in pieces:
                    self._event({"content": piece}, None)
                    time.sleep(0.01)
                self._event({}, "stop")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, delta: dict[str, str], finish: str | None) -> None:
                chunk = {
                    "id": "chatcmpl-scripted",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": "scripted",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Driving the widget ---------------------------------------------------------------------


def widget_frame(page: Any, timeout: float = 15.0) -> Any:
    """The chat frame inside the host page, once it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "/widget/frame/" in frame.url:
                return frame
        page.wait_for_timeout(50)
    raise AssertionError("the widget's frame never appeared")


def click_launcher(page: Any) -> None:
    """The launcher lives in a closed shadow root: click where the visitor would."""
    page.locator("parley-widget").wait_for(state="attached")
    viewport = page.viewport_size
    page.mouse.click(viewport["width"] - 48, viewport["height"] - 48)


def open_widget(page: Any, url: str | None) -> Any:
    """Go to the host page (unless `url` is None: stay) and open the chat with the host API."""
    if url is not None:
        page.goto(url)
    page.locator("parley-widget").wait_for(state="attached")
    page.evaluate("Parley('open')")
    frame = widget_frame(page)
    frame.wait_for_function("() => document.activeElement && document.activeElement.id === 'input'")
    return frame


def wait_for_reply(frame: Any, containing: str, timeout: float = 30_000) -> None:
    frame.wait_for_function(
        """(text) => [...document.querySelectorAll('#log .msg.assistant:not(.greeting)')]
              .some((m) => m.textContent.includes(text)
                    && !m.querySelector('[aria-busy="true"]'))""",
        arg=containing,
        timeout=timeout,
        # Not 'raf': a frame inside a closed (display: none) panel gets no animation frames.
        polling=100,
    )


def launcher_badge(page: Any) -> str | None:
    """The unread badge's text ("" when hidden). The launcher is in a closed shadow root, which
    only the DevTools protocol can read."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]
    finally:
        cdp.detach()

    def walk(node: dict[str, Any]) -> str | None:
        attributes = node.get("attributes") or []
        pairs = dict(zip(attributes[::2], attributes[1::2], strict=True))
        if node.get("localName") == "span" and pairs.get("class") == "b":
            if "hidden" in pairs:
                return ""
            return "".join(c.get("nodeValue", "") for c in node.get("children") or [])
        for child in [*(node.get("shadowRoots") or []), *(node.get("children") or [])]:
            found = walk(child)
            if found is not None:
                return found
        return None

    return walk(root)


def time_to_usable_composer(page: Any, url: str, *, prefetched: bool) -> float:
    """Milliseconds from the visitor's click on the launcher to a focused composer in the frame.

    The host page notes the click (its pointerdown) and the frame marks the moment its
    composer takes focus (`parley-composer-usable`); both clocks are read as absolute times
    (timeOrigin + now). `prefetched=False` turns the idle prefetch off (the frame then starts
    loading when the pointer reaches the launcher, a moment before the click); True waits for
    the idle prefetch to finish first. Use a fresh page for each measurement.
    """
    if not prefetched:
        page.add_init_script("window.requestIdleCallback = () => 0;")
    page.goto(url)
    page.locator("parley-widget").wait_for(state="attached")
    if prefetched:
        widget_frame(page).wait_for_load_state("load")
        page.wait_for_timeout(200)  # the frame's ready/init handshake
    page.evaluate(
        "document.addEventListener('pointerdown', () => {"
        " window.parleyClickAt = performance.timeOrigin + performance.now(); },"
        " {capture: true, once: true})"
    )
    click_launcher(page)
    frame = widget_frame(page)
    frame.wait_for_function(
        "() => performance.getEntriesByName('parley-composer-usable').length > 0"
        " && document.activeElement.id === 'input'"
    )
    usable = frame.evaluate(
        "performance.timeOrigin + performance.getEntriesByName('parley-composer-usable')[0]"
        ".startTime"
    )
    return float(usable - page.evaluate("window.parleyClickAt"))


def frame_resources(frame: Any) -> list[str]:
    """Paths of everything the frame page loaded (API calls aside)."""
    return list(
        frame.evaluate(
            "performance.getEntriesByType('resource')"
            ".filter((e) => !['fetch', 'xmlhttprequest'].includes(e.initiatorType))"
            ".map((e) => new URL(e.name).pathname)"
        )
    )
