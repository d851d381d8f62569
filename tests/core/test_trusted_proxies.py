"""Behind a proxy, the client address (rate limits, logs) comes from TRUSTED_PROXIES only.

`manage.py serve` runs in a subprocess as in production, and requests reach it from
127.0.0.1 carrying X-Forwarded-For. Which address Parley saw is read from its own request
log line (`client=`, the REMOTE_ADDR that widget/views.py rate-limits on) and, for a
WebSocket, from the handshake line of the same scope (`scope["client"]`, which
widget/consumers.py rate-limits on).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.fixtures.serve import ServeProcess, served

# The served process always runs on the embedded defaults: one run of make test is enough.
pytestmark = pytest.mark.embedded

ROOT = Path(__file__).resolve().parents[2]
VISITOR = "203.0.113.7"
# What a visitor may write into the header themselves, before the proxy appends the address
# it saw: never to be believed.
SPOOFED = "198.51.100.9"


def manage(var_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    outside = ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if k not in outside}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "PARLEY_TESTING": "1", "PARLEY_VAR_DIR": str(var_dir), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("proxies")
    result = manage(path, "migrate", "-v0")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def behind_a_trusted_proxy(var_dir: Path) -> Iterator[ServeProcess]:
    """Served with 127.0.0.1 inside TRUSTED_PROXIES: the test client is the proxy."""
    with served(var_dir, TRUSTED_PROXIES="127.0.0.0/8, ::1") as server:
        yield server


@pytest.fixture(scope="module")
def reached_directly(var_dir: Path) -> Iterator[ServeProcess]:
    """Served trusting only a range 127.0.0.1 is not in: the test client is a visitor."""
    with served(var_dir, TRUSTED_PROXIES="10.0.0.0/8") as server:
        yield server


def address_in_request_log(server: ServeProcess, forwarded_for: str) -> str:
    request_id = uuid.uuid4().hex[:16]
    response = httpx.get(
        server.url + "/",
        headers={"X-Forwarded-For": forwarded_for, "X-Request-ID": request_id},
    )
    assert response.status_code == 200
    line = server.wait_for_line(lambda line: f"request_id={request_id}" in line)
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    return fields["client"]


def address_of_websocket(server: ServeProcess, forwarded_for: str) -> str:
    key = f"no-such-bot-{uuid.uuid4().hex[:8]}"
    url = server.url.replace("http://", "ws://") + f"/ws/widget/{key}"
    # Refused before accept (no such bot), after the scope's client was settled.
    with pytest.raises(InvalidStatus):
        connect(url, additional_headers={"X-Forwarded-For": forwarded_for}).close()
    line = server.wait_for_line(lambda line: f"WebSocket /ws/widget/{key}" in line)
    message = line.split('msg="', 1)[1]
    return message.split(" - ", 1)[0].rsplit(":", 1)[0]


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
    behind_a_trusted_proxy: ServeProcess,
) -> None:
    assert address_in_request_log(behind_a_trusted_proxy, VISITOR) == VISITOR


def test_what_a_visitor_prepends_is_not_believed(behind_a_trusted_proxy: ServeProcess) -> None:
    # The nearest address that is not a trusted proxy is the client.
    forwarded = f"{SPOOFED}, {VISITOR}"
    assert address_in_request_log(behind_a_trusted_proxy, forwarded) == VISITOR


def test_websockets_take_the_forwarded_address_too(behind_a_trusted_proxy: ServeProcess) -> None:
    assert address_of_websocket(behind_a_trusted_proxy, VISITOR) == VISITOR


def test_from_an_untrusted_peer_the_header_is_ignored(reached_directly: ServeProcess) -> None:
    assert address_in_request_log(reached_directly, VISITOR) == "127.0.0.1"
    assert address_of_websocket(reached_directly, VISITOR) == "127.0.0.1"


def test_a_bad_trusted_proxy_names_the_variable(var_dir: Path) -> None:
    result = manage(var_dir, "check", TRUSTED_PROXIES="10.0.0.0/8, proxy.internal")
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "parley: configuration error: TRUSTED_PROXIES: 'proxy.internal' is not"
    ), result.stderr
