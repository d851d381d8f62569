"""A visitor's frame, reduced to the wire protocol (docs/widget-protocol.md), for benchmarks.

It asks for a session token over HTTP, opens `/ws/widget/<key>` with the page's Origin, says
`hello`, sends messages and rebuilds every streamed reply from its deltas the way a careful
client must:

- `{"type": "delta", "seq", "offset", "text"}` is applied when `offset` equals the length it
  has; only its tail when it overlaps; ignored when already seen;
- `offset` beyond what it has is a gap: it asks `{"type": "reply.fetch", "seq", "offset"}`
  for the missing text (answered with a `delta` from that offset, or the final `message`)
  unless the server answered `unknown_type` to that frame once, then the gap just stays;
- when the final `message` (status complete) arrives, the rebuilt text must equal its text,
  or the stream is counted damaged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

OPEN_TIMEOUT_SECONDS = 180.0


@dataclass
class Tally:
    """Stream accounting over every socket of a phase."""

    replies: int = 0  # final `message`s with status complete, per socket watching
    not_complete: int = 0  # final `message`s with another status (incomplete, failed)
    gaps_seen: int = 0
    gaps_recovered: int = 0
    damaged: int = 0
    # Of the damaged: every character did arrive, some after a later delta (out of order),
    # as opposed to text that never arrived at all.
    reordered: int = 0
    damaged_examples: list[str] = field(default_factory=list)
    fetch_supported: bool | None = None  # None until the server shows one way or the other
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        self.replies += other.replies
        self.not_complete += other.not_complete
        self.gaps_seen += other.gaps_seen
        self.gaps_recovered += other.gaps_recovered
        self.damaged += other.damaged
        self.reordered += other.reordered
        self.damaged_examples += other.damaged_examples[: 3 - len(self.damaged_examples)]
        for code, n in other.errors.items():
            self.errors[code] = self.errors.get(code, 0) + n
        if other.fetch_supported is not None:
            self.fetch_supported = other.fetch_supported


@dataclass
class ReplyText:
    text: str = ""
    gap: bool = False  # behind: a delta started past what we have
    fetching: bool = False  # a reply.fetch is out for the gap
    held: list[tuple[int, str]] = field(default_factory=list)  # deltas past a gap, kept
    # only to tell text that came out of order from text that never came


@dataclass
class Outcome:
    """One message.send as the sending socket saw it."""

    ttft: float  # seconds, send -> first delta (nan when none came)
    done: float  # seconds, send -> final message
    seq: int
    text: str
    status: str


async def session_token(
    client: httpx.AsyncClient, base: str, bot_key: str, origin: str, resume: str | None = None
) -> tuple[str, str]:
    """`POST /widget/api/session` as the frame does, from the host page's origin: a session
    token and the resume secret that brings the same visitor back."""
    body = {"bot": bot_key, "origin": origin}
    if resume is not None:
        body["resume"] = resume
    response = await client.post(
        f"{base}/widget/api/session", json=body, headers={"Origin": origin}
    )
    response.raise_for_status()
    answer = response.json()
    return str(answer["token"]), str(answer["resume"])


class WidgetSocket:
    def __init__(self, connection: ClientConnection, tally: Tally) -> None:
        self.connection = connection
        self.tally = tally
        self.replies: dict[int, ReplyText] = {}
        self.conversation: str | None = None
        self.finals: list[tuple[int, str]] = []  # (seq, text) of complete replies seen
        self.live = False  # past the replay that follows hello
        self._ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pong: asyncio.Future[None] | None = None
        self._sent_at = 0.0
        self._first_delta_at: float | None = None
        self._waiting: asyncio.Future[tuple[float, int, str, str]] | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls,
        ws_base: str,
        bot_key: str,
        origin: str,
        token: str,
        tally: Tally,
        *,
        conversation: str | None = None,
        sync: bool = False,
    ) -> WidgetSocket:
        """Connect and say hello; with `sync`, also wait until the replay that follows
        `ready` is over (a `ping` answered), so that replies finished before it count as
        history, not as streams this socket watched."""
        connection = await connect(
            f"{ws_base}/ws/widget/{bot_key}",
            origin=origin,  # type: ignore[arg-type]
            open_timeout=OPEN_TIMEOUT_SECONDS,
            ping_interval=None,  # an idle visitor's tab sends nothing; uvicorn pings it
            max_queue=None,
        )
        socket = cls(connection, tally)
        hello: dict[str, Any] = {"type": "hello", "token": token}
        if conversation is not None:
            hello["conversation"] = conversation
            hello["resume_after_seq"] = 0
        await socket.send(hello)
        await asyncio.wait_for(asyncio.shield(socket._ready), OPEN_TIMEOUT_SECONDS)
        if sync:
            await socket.sync()
        socket.live = True
        return socket

    async def sync(self) -> None:
        """Wait until the server has handled every frame sent so far (frames of one socket
        are handled in order)."""
        self._pong = asyncio.get_running_loop().create_future()
        await self.send({"type": "ping"})
        await asyncio.wait_for(asyncio.shield(self._pong), OPEN_TIMEOUT_SECONDS)

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame, separators=(",", ":")))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.connection.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader

    async def new_conversation(self) -> str:
        self._ready = asyncio.get_running_loop().create_future()
        await self.send({"type": "conversation.new"})
        await asyncio.wait_for(asyncio.shield(self._ready), OPEN_TIMEOUT_SECONDS)
        assert self.conversation is not None
        return self.conversation

    async def send_message(self, text: str, timeout: float = 300.0) -> Outcome:
        """Send one message and wait for the final reply to it."""
        loop = asyncio.get_running_loop()
        self._waiting = loop.create_future()
        self._first_delta_at = None
        self._sent_at = time.perf_counter()
        await self.send({"type": "message.send", "client_id": uuid.uuid4().hex, "text": text})
        ended, seq, final_text, status = await asyncio.wait_for(self._waiting, timeout)
        first = self._first_delta_at
        return Outcome(
            ttft=(first - self._sent_at) if first is not None else float("nan"),
            done=ended - self._sent_at,
            seq=seq,
            text=final_text,
            status=status,
        )

    # --- Frames from the server ---------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                self._dispatch(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            error = ConnectionError("the socket closed")
            for future in (self._ready, self._waiting, self._pong):
                if future is not None and not future.done():
                    future.set_exception(error)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "delta":
            if self._waiting is not None and self._first_delta_at is None:
                self._first_delta_at = time.perf_counter()
            self._delta(frame["seq"], frame["offset"], frame["text"])
        elif kind == "message":
            self._message(frame["message"])
        elif kind == "ready":
            conversation = frame.get("conversation")
            self.conversation = conversation["id"] if conversation else None
            if not self._ready.done():
                self._ready.set_result(frame)
        elif kind == "pong":
            if self._pong is not None and not self._pong.done():
                self._pong.set_result(None)
        elif kind == "ack":
            self.conversation = frame.get("conversation") or self.conversation
        elif kind == "error":
            code = str(frame.get("code"))
            if code == "unknown_type" and "reply.fetch" in str(frame.get("message")):
                self.tally.fetch_supported = False
                return
            self.tally.errors[code] = self.tally.errors.get(code, 0) + 1
            if not self._ready.done():
                self._ready.set_exception(RuntimeError(f"hello refused: {frame}"))
            if self._waiting is not None and not self._waiting.done() and frame.get("client_id"):
                self._waiting.set_exception(RuntimeError(f"send refused: {frame}"))

    def _delta(self, seq: int, offset: int, text: str) -> None:
        reply = self.replies.setdefault(seq, ReplyText())
        have = len(reply.text)
        end = offset + len(text)
        if end <= have:
            return  # all of it seen already
        if offset > have:
            reply.held.append((offset, text))
            if not reply.gap:
                reply.gap = True
                self.tally.gaps_seen += 1
                self._fetch(seq, reply)
            return
        reply.text += text[have - offset :]
        self._filled(reply)

    def _fetch(self, seq: int, reply: ReplyText) -> None:
        if self.tally.fetch_supported is False:
            return
        reply.fetching = True
        frame = {"type": "reply.fetch", "seq": seq, "offset": len(reply.text)}
        task = asyncio.create_task(self.send(frame))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def _filled(self, reply: ReplyText) -> None:
        if reply.gap:
            reply.gap = False
            if reply.fetching:
                reply.fetching = False
                self.tally.gaps_recovered += 1
                self.tally.fetch_supported = True

    def _message(self, message: dict[str, Any]) -> None:
        if message.get("role") != "assistant":
            return
        seq = int(message["seq"])
        text = message.get("text") or ""
        status = message.get("status")
        reply = self.replies.setdefault(seq, ReplyText())
        if status == "streaming":
            if len(text) > len(reply.text):  # a snapshot newer than what we have
                reply.text = text
                self._filled(reply)
            return
        if status == "complete":
            self.finals.append((seq, text))
        if not self.live:
            self.replies.pop(seq, None)
            return  # history replayed after hello, not a stream this socket watched
        # The final message: what the visitor was shown must be all of it, as stored.
        if status == "complete":
            self.tally.replies += 1
            if reply.text != text:
                self.tally.damaged += 1
                late = _apply_in_order(reply.text, reply.held)
                if late == text:
                    self.tally.reordered += 1
                if len(self.tally.damaged_examples) < 3:
                    self.tally.damaged_examples.append(
                        f"seq {seq}: rebuilt {len(reply.text)} of {len(text)} chars, "
                        f"first difference at {_first_difference(reply.text, text)}, "
                        f"deltas after the gap at {[o for o, _ in reply.held]}"
                        + (" (all text came, out of order)" if late == text else "")
                    )
        else:
            self.tally.not_complete += 1
        del self.replies[seq]
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result((time.perf_counter(), seq, text, str(status)))


def _apply_in_order(text: str, deltas: list[tuple[int, str]]) -> str:
    """`text` with the held deltas applied in offset order (diagnosis only)."""
    for offset, piece in sorted(deltas):
        if offset <= len(text) < offset + len(piece):
            text += piece[len(text) - offset :]
    return text


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


async def stored_replies(
    ws_base: str, bot_key: str, origin: str, token: str, conversation: str
) -> dict[int, str]:
    """The conversation's complete assistant messages as stored, through a fresh `hello`."""
    tally = Tally()
    socket = await WidgetSocket.open(
        ws_base, bot_key, origin, token, tally, conversation=conversation, sync=True
    )
    await socket.close()
    return dict(socket.finals)
