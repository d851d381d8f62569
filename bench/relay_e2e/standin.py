"""An instant OpenAI-compatible model server: a fixed reply, one token every 20 ms.

Raw asyncio (uvloop when installed), HTTP/1.1 with keep-alive, no framework: the stand-in
must cost next to nothing, so that the CPU the benchmark sees is Parley's. It serves

- `POST /v1/chat/completions`: with `"stream": true`, server-sent events (chunked), one
  content chunk per token, then a chunk with `finish_reason: "stop"`, a usage chunk when
  `stream_options.include_usage` is asked for (as llama-server and vLLM do), and
  `data: [DONE]`; without it, one JSON completion;
- `GET /v1/models` and `GET /health`.

Every reply is unique and checkable: token 0 is `Reply<n>` (n counts requests), token i is
` t<i>`, so a reply's text splits into exactly `--tokens` words.

    python bench/relay_e2e/standin.py --port 8099 [--tokens 64] [--interval-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time

MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024


def reply_tokens(number: int, count: int) -> list[str]:
    return [f"Reply{number}", *(f" t{i}" for i in range(1, count))]


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def response_head(status: str, content_type: str, length: int | None = None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{framing}\r\n"
        "Cache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n"
    ).encode()


def json_response(status: str, body: object) -> bytes:
    data = json.dumps(body).encode()
    return response_head(status, "application/json", len(data)) + data


class StandIn:
    def __init__(self, tokens: int, interval: float) -> None:
        self.tokens = tokens
        self.interval = interval
        self.numbers = itertools.count(1)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self.one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection should end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if length > MAX_BODY:
            writer.write(json_response("413 Payload Too Large", {"error": "too large"}))
            return False
        body = await reader.readexactly(length) if length else b""
        path = path.split("?", 1)[0]
        if method == "GET" and path in ("/health", "/v1/health"):
            writer.write(json_response("200 OK", {"status": "ok"}))
        elif method == "GET" and path == "/v1/models":
            models = {"object": "list", "data": [{"id": "standin", "object": "model"}]}
            writer.write(json_response("200 OK", models))
        elif method == "POST" and path == "/v1/chat/completions":
            await self.completion(json.loads(body or b"{}"), writer)
        else:
            writer.write(json_response("404 Not Found", {"error": {"message": "not found"}}))
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    async def completion(self, request: dict[str, object], writer: asyncio.StreamWriter) -> None:
        number = next(self.numbers)
        wanted = request.get("max_tokens")
        count = min(self.tokens, wanted) if isinstance(wanted, int) and wanted > 0 else self.tokens
        tokens = reply_tokens(number, count)
        ident = f"chatcmpl-{number}"
        created = int(time.time())
        usage = {"prompt_tokens": 10, "completion_tokens": count, "total_tokens": 10 + count}
        if not request.get("stream"):
            await asyncio.sleep(self.interval * count)
            message = {"role": "assistant", "content": "".join(tokens)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            body = {"id": ident, "object": "chat.completion", "created": created,
                    "model": "standin", "choices": [choice], "usage": usage}  # fmt: skip
            writer.write(json_response("200 OK", body))
            return
        prefix = (
            b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":"standin",'
            b'"choices":[{"index":0,"delta":{"content":"'
        ) % (ident.encode(), created)
        suffix = b'"},"finish_reason":null}]}\n\n'
        writer.write(response_head("200 OK", "text/event-stream"))
        started = time.monotonic()
        for i, token in enumerate(tokens):
            # Deadlines from the start, not sleeps in a row: no drift under load.
            delay = started + (i + 1) * self.interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(chunked(prefix + token.encode() + suffix))
        tail = [
            {"id": ident, "object": "chat.completion.chunk", "created": created,
             "model": "standin", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]  # fmt: skip
        options = request.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            tail.append({"id": ident, "object": "chat.completion.chunk", "created": created,
                         "model": "standin", "choices": [], "usage": usage})  # fmt: skip
        data = b"".join(b"data: %s\n\n" % json.dumps(chunk).encode() for chunk in tail)
        writer.write(chunked(data + b"data: [DONE]\n\n") + b"0\r\n\r\n")


async def serve(host: str, port: int, tokens: int, interval: float) -> None:
    stand_in = StandIn(tokens, interval)
    server = await asyncio.start_server(stand_in.handle, host, port, limit=MAX_HEAD, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port, args.tokens, args.interval_ms / 1000))


if __name__ == "__main__":
    main()
