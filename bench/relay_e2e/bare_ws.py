"""The socket baseline: a bare ASGI app under uvicorn that answers `hello` with `ready`.

Served exactly as `manage.py serve` serves Parley (uvicorn's defaults for the loop, HTTP and
WebSocket implementations, `proxy_headers`, no lifespan), so the difference in CPU and memory
per socket is what Parley's stack adds. `GET /healthz` answers 200 for readiness polling.

    python bench/relay_e2e/bare_ws.py --port 8098
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

READY = json.dumps(
    {"type": "ready", "conversation": None, "visitor": {"id": "v_bare"}, "last_seq": 0},
    separators=(",", ":"),
)


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                frame = json.loads(message.get("text") or "")
            except ValueError:
                continue
            if isinstance(frame, dict) and frame.get("type") == "hello":
                await send({"type": "websocket.send", "text": READY})
    elif scope["type"] == "http":
        await receive()
        await send(
            {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"text/plain")]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": b"ok"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(
        app, host=args.host, port=args.port, lifespan="off", log_config=None, proxy_headers=True
    )


if __name__ == "__main__":
    main()
