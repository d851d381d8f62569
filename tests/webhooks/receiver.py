"""A real HTTP receiver on loopback for webhook tests, scripted per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    # Each request takes the next scripted answer: an int status, ("stall", seconds), or
    # ("redirect", location); when the script is empty the answer is 200.
    script: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)


def serve_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.received.append(Received(dict(self.headers.items()), body))
            answer = receiver.script.pop(0) if receiver.script else 200
            if isinstance(answer, tuple) and answer[0] == "stall":
                time.sleep(answer[1])
                answer = 200
            if isinstance(answer, tuple) and answer[0] == "redirect":
                self.send_response(307)
                self.send_header("Location", answer[1])
                self.end_headers()
                return
            self.send_response(int(answer))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if answer == 200 else b"receiver says no")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
