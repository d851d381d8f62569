"""Fixture model servers on real loopback sockets, speaking exact wire formats.

The real llama-server covers the OpenAI protocol's happy paths; these cover what it cannot
show: Ollama's NDJSON (with a mid-stream error line), Bedrock's event-stream frames, other
engines' error and usage shapes, and faults (dying mid-stream, stalling, refusing).

A `WireServer` runs in the test's event loop. Each request is answered by a scenario: an async
function receiving a `Reply` it writes raw HTTP with (status, headers, chunked body pieces,
pauses, an abrupt close).
"""

from __future__ import annotations

import asyncio
import binascii
import json
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Reply:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.started = False

    async def start(self, status: int = 200, content_type: str = "application/json") -> None:
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        self.writer.write(head.encode())
        await self.writer.drain()
        self.started = True

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def end(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    async def whole(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.start(status, content_type)
        await self.send(data)
        await self.end()

    def drop(self) -> None:
        """Close the socket abruptly (a dying server)."""
        self.writer.transport.abort()


Scenario = Callable[[Request, Reply], Awaitable[None]]


@dataclass
class WireServer:
    scenario: Scenario
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    server: asyncio.Server | None = None
    port: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> WireServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        # Handlers still running (stalls) are cancelled with their connections.
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                reply = Reply(writer)
                watcher = asyncio.create_task(_watch_eof(reader, self.disconnected))
                try:
                    await self.scenario(request, reply)
                finally:
                    watcher.cancel()
                if writer.transport.is_closing():
                    return
                # Connection: close, always: one request per connection keeps counting simple.
                writer.close()
                return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.disconnected.set()
        finally:
            self._tasks.discard(task)
            writer.close()


async def _watch_eof(reader: asyncio.StreamReader, flag: asyncio.Event) -> None:
    # The client closing its side while we still stream is how cancellation shows up here.
    await reader.read(1)
    if reader.at_eof():
        flag.set()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method=method, path=path, headers=headers, body=body)


# --- Wire formats ---------------------------------------------------------------------------


def sse(chunk: Any) -> str:
    return f"data: {json.dumps(chunk)}\n\n"


def openai_chunk(text: str | None = None, finish: str | None = None, **extra: Any) -> str:
    delta = {"content": text} if text is not None else {}
    return sse(
        {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
    )


def ndjson(obj: Any) -> str:
    return json.dumps(obj) + "\n"


def ollama_line(text: str) -> str:
    return ndjson(
        {"model": "llama3.2", "message": {"role": "assistant", "content": text}, "done": False}
    )


def ollama_done(reason: str = "stop", prompt: int = 12, completion: int = 3) -> str:
    return ndjson(
        {
            "model": "llama3.2",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": reason,
            "prompt_eval_count": prompt,
            "eval_count": completion,
        }
    )


def event_frame(headers: dict[str, str], payload: Any) -> bytes:
    """One `application/vnd.amazon.eventstream` message: prelude, headers, payload, CRCs."""
    data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack("!B", len(raw_name)) + raw_name
        encoded += struct.pack("!BH", 7, len(raw_value)) + raw_value  # 7: string
    total = 12 + len(encoded) + len(data) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + encoded + data
    return message + struct.pack("!I", binascii.crc32(message))


def bedrock_event(event_type: str, payload: Any) -> bytes:
    return event_frame(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        payload,
    )


def bedrock_exception(kind: str, message: str) -> bytes:
    return event_frame(
        {
            ":exception-type": kind,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        {"message": message},
    )
