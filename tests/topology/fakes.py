"""Servers on real loopback sockets that the deployment talks to: a model that answers slowly
(speaking OpenAI's streaming wire format exactly), and a web site whose pages are slow to
arrive (for ingestion that is still running when its worker is killed)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.llm.wire import openai_chunk

# The stand-in's two answers. A visitor message containing SLOW_WORD gets the long one, a
# word every SLOW_PACE seconds (a reply long enough to kill something in the middle of it).
SLOW_WORD = "slowly"
SLOW_PACE = 0.15
SLOW_REPLY = " ".join(f"part{i:02d}" for i in range(1, 41))
QUICK_REPLY = "Quick answer from the stand-in."


@dataclass
class Call:
    """One streaming request the stand-in answered."""

    peer_port: int  # the requesting process's local port: which process asked
    slow: bool
    words_sent: int = 0
    finished: bool = False
    dropped: bool = False  # the requesting side went away mid-stream


@dataclass
class SlowModel:
    server: ThreadingHTTPServer
    calls: list[Call] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


def start_slow_model() -> SlowModel:
    model: SlowModel

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            slow = SLOW_WORD in _last_user_text(body)
            call = Call(peer_port=self.client_address[1], slow=slow)
            model.calls.append(call)
            words = (SLOW_REPLY if slow else QUICK_REPLY).split(" ")
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                for index, word in enumerate(words):
                    piece = word if index == 0 else " " + word
                    self.wfile.write(openai_chunk(piece, model="stand-in").encode())
                    self.wfile.flush()
                    call.words_sent += 1
                    if slow:
                        time.sleep(SLOW_PACE)
                usage = {"prompt_tokens": 20, "completion_tokens": len(words)}
                self.wfile.write(openai_chunk(finish="stop", usage=usage).encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                call.finished = True
            except (BrokenPipeError, ConnectionResetError):
                call.dropped = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    model = SlowModel(server)
    threading.Thread(target=server.serve_forever, name="slow-model", daemon=True).start()
    return model


# --- A slow web site --------------------------------------------------------------------------

SITE_PAGES = 4  # besides the home page


def page_text(number: int) -> str:
    """A page's own text: long enough for a chunk, different on every page."""
    topic = ["repairs", "rentals", "opening hours", "delivery", "warranty"][number % 5]
    return " ".join(
        f"Page {number} explains our {topic} in sentence {i}, with details that matter."
        for i in range(1, 25)
    )


@dataclass
class SlowSite:
    server: ThreadingHTTPServer
    delay: float
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_slow_site(delay: float) -> SlowSite:
    """A home page linking SITE_PAGES pages; every page waits `delay` seconds before its body."""
    site: SlowSite

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            site.requests.append(path)
            if path == "/":
                links = "".join(
                    f'<li><a href="/page-{n}">Page {n}</a></li>' for n in range(1, SITE_PAGES + 1)
                )
                html = f"<h1>Acme Bikes</h1><p>{page_text(0)}</p><ul>{links}</ul>"
            elif path.startswith("/page-") and path[6:].isdigit():
                number = int(path[6:])
                html = f"<h1>Page {number}</h1><p>{page_text(number)}</p>"
            else:
                self.send_error(404)
                return
            document = f"<!doctype html><html><head><title>{path}</title></head><body>{html}"
            data = (document + "</body></html>").encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.flush()
                time.sleep(site.delay)
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site = SlowSite(server, delay)
    threading.Thread(target=server.serve_forever, name="slow-site", daemon=True).start()
    return site
