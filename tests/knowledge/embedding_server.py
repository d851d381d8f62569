"""A small embedding server on a real loopback socket, speaking OpenAI's `/v1/embeddings`.

The tiny llama model cannot embed meaningfully, so this stands in for an embedding model: a
vector is a bag of hashed word stems, with a few words mapped to shared concepts (so
"postage" lands near "shipping", as a real embedding model would put them). It counts
requests and texts, and can be told to fail.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIMENSIONS = 64
CONCEPTS = {
    "postage": "shipping",
    "ship": "shipping",
    "shipping": "shipping",
    "delivery": "shipping",
    "deliver": "shipping",
    "parcel": "shipping",
    "charity": "donate",
    "donate": "donate",
    "give": "donate",
}
STOP = {"is", "the", "a", "an", "do", "you", "to", "of", "and", "in", "on", "for", "it", "are"}


def embed_one(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in STOP:
            continue
        stem = word.rstrip("s") if len(word) > 3 else word
        concept = CONCEPTS.get(word) or CONCEPTS.get(stem) or stem
        digest = hashlib.blake2b(concept.encode(), digest_size=2).digest()
        vector[int.from_bytes(digest) % DIMENSIONS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


@dataclass
class EmbeddingServer:
    url: str = ""
    requests: int = 0
    texts: list[str] = field(default_factory=list)
    fail_with: int | None = None


@contextmanager
def embedding_server() -> Iterator[EmbeddingServer]:
    state = EmbeddingServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            state.requests += 1
            if self.path != "/v1/embeddings" or state.fail_with:
                self._send(state.fail_with or 404, {"error": {"message": "unavailable"}})
                return
            texts = payload["input"]
            texts = [texts] if isinstance(texts, str) else texts
            state.texts.extend(texts)
            data = [
                {"object": "embedding", "index": i, "embedding": embed_one(t)}
                for i, t in enumerate(texts)
            ]
            self._send(200, {"object": "list", "model": payload.get("model"), "data": data})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
