"""A served process (`manage.py serve`, uvicorn) survives a 100 MB frame and raw invalid UTF-8.

The in-process tests (test_consumer.py::TestBadFrames) stop at what channels hands the
consumer; here the bytes go over a real socket to a real server, written by hand (a
WebSocket client library would refuse to send invalid UTF-8): a text frame announcing
100 MB, then a text frame whose payload is not UTF-8. The process must stay up (the next
connection says hello and gets `ready`) and its memory must stay bounded (resident size read
from /proc, with a generous bound: it must not have buffered the 100 MB).

The child shares this run's PostgreSQL and Redis (like tests/inbox/test_scale_out.py), so it
belongs to the PostgreSQL + Redis run.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import sys
from pathlib import Path

import pytest

from chatbot.bots.models import Bot
from chatbot.tenants.models import Tenant
from tests.fixtures.servers import free_port
from tests.inbox.processes import child_env, process, wait_until_up
from tests.widget.conftest import SHOP, session_token

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

HUNDRED_MB = 100 * 1024 * 1024
EIGHT_MB = 8 * 1024 * 1024
# The process may grow a little while it serves (imports on first use, buffers); it must not
# have held the 100 MB frame.
RSS_GROWTH_BOUND = 60 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_raw_socket(port: int, path: str, origin: str) -> socket.socket:
    """A WebSocket handshake by hand; returns the socket after `101 Switching Protocols`."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def frame_header(opcode: int, length: int, mask: bytes) -> bytes:
    """A final client frame's header (clients must mask), for a payload of `length` bytes."""
    first = 0x80 | opcode
    if length < 126:
        return struct.pack("!BB", first, 0x80 | length) + mask
    if length < 2**16:
        return struct.pack("!BBH", first, 0x80 | 126, length) + mask
    return struct.pack("!BBQ", first, 0x80 | 127, length) + mask


def masked(payload: bytes, mask: bytes, offset: int = 0) -> bytes:
    return bytes(byte ^ mask[(offset + n) % 4] for n, byte in enumerate(payload))


def close_code(sock: socket.socket) -> int | None:
    """The close code the server sent, if it sent one before dropping the connection."""
    try:
        data = sock.recv(64)
    except OSError:
        return None
    if len(data) >= 4 and data[0] == 0x88:
        return int(struct.unpack("!H", data[2:4])[0])
    return None


def send_big_frame(sock: socket.socket, size: int) -> int:
    """Announce a text frame of `size` bytes and stream its payload until the server stops
    reading; returns how many payload bytes went out."""
    mask = os.urandom(4)
    sock.sendall(frame_header(0x1, size, mask))
    chunk = masked(b"x" * 65536, mask)  # 65536 is a multiple of 4: the mask lines up
    sent = 0
    try:
        while sent < size:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the server closed: what it should do
    return sent


def send_invalid_utf8(sock: socket.socket) -> None:
    mask = os.urandom(4)
    payload = b'{"type": "ping", "x": "\xff\xfe\xed\xa0\x80"}'
    sock.sendall(frame_header(0x1, len(payload), mask) + masked(payload, mask))


def say_hello(port: int, bot: Bot, token: str) -> dict[str, object]:
    from websockets.sync.client import connect

    with connect(
        f"ws://127.0.0.1:{port}/ws/widget/{bot.public_key}", origin=SHOP, open_timeout=10
    ) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": token}))
        ready = json.loads(ws.recv(timeout=10))
    assert isinstance(ready, dict)
    return ready


def test_a_served_process_survives_a_100_mb_frame_and_invalid_utf8(
    live_db: None, acme: Tenant
) -> None:
    bot = Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=[SHOP])
    token, _ = session_token(bot)
    port = free_port()
    serve = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with process(serve, child_env()) as (child, _log):
        wait_until_up(f"http://127.0.0.1:{port}", child)
        assert say_hello(port, bot, token)["type"] == "ready"  # warmed up
        before = rss_bytes(child.pid)
        path = f"/ws/widget/{bot.public_key}"

        big = open_raw_socket(port, path, SHOP)
        sent = send_big_frame(big, HUNDRED_MB)
        code = close_code(big)
        big.close()
        assert child.poll() is None
        assert sent < HUNDRED_MB, "the server read the whole 100 MB"
        assert code in (None, 1009), code  # "message too big", or the connection dropped

        # Far smaller, still refused unread: no socket may make the server buffer 8 MB
        # (uvicorn's own limit, 16 MiB, would have).
        eight = open_raw_socket(port, path, SHOP)
        assert send_big_frame(eight, EIGHT_MB) < EIGHT_MB
        eight.close()

        bad = open_raw_socket(port, path, SHOP)
        send_invalid_utf8(bad)
        assert close_code(bad) == 1007  # "invalid frame payload data"
        bad.close()

        after = rss_bytes(child.pid)
        print(
            f"parley: served process RSS {before / 2**20:.1f} MiB before, "
            f"{after / 2**20:.1f} MiB after a 100 MB frame ({sent / 2**20:.1f} MiB of it "
            f"sent before the server closed) and invalid UTF-8"
        )
        assert after - before < RSS_GROWTH_BOUND
        # Still serving: a new visitor connects and is greeted.
        assert child.poll() is None
        assert say_hello(port, bot, token)["type"] == "ready"
