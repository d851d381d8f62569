"""The outbound client's SSRF guard, against a real HTTP server on loopback."""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from django.test import override_settings

from chatbot.lib import outbound
from chatbot.lib.outbound import BlockedURL, blocked_reason, check_url

LOOPBACK_ONLY = ["127.0.0.1/32"]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
            return
        body = f"hello from {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # AWS/GCP/Azure metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",  # AWS IPv6 metadata
        "::ffff:127.0.0.1",  # IPv4-mapped IPv6
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::",
    ],
)
def test_it_refuses_non_public_addresses(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_it_allows_public_addresses(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://example.com/", "ftp://example.com/x", "javascript:alert(1)"],
)
def test_it_refuses_other_schemes(url: str) -> None:
    with pytest.raises(BlockedURL, match="only http and https"):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://127.0.0.1/",
        "http://2130706433/",  # 127.0.0.1 written as a number
        "http://0x7f000001/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_check_url_refuses_hosts_that_resolve_inside(url: str) -> None:
    with pytest.raises(BlockedURL, match="refusing to connect"):
        check_url(url)


def test_the_guarded_client_refuses_loopback(loopback_server: str) -> None:
    with outbound.client() as http, pytest.raises(BlockedURL, match="loopback"):
        http.get(loopback_server + "/")


async def test_the_async_guarded_client_refuses_loopback(loopback_server: str) -> None:
    async with outbound.async_client() as http:
        with pytest.raises(BlockedURL, match="loopback"):
            await http.get(loopback_server + "/")


def test_the_operator_can_allow_a_named_range(loopback_server: str) -> None:
    with override_settings(OUTBOUND_ALLOW_CIDRS=LOOPBACK_ONLY), outbound.client() as http:
        assert http.get(loopback_server + "/").text.startswith("hello")


def test_a_redirect_to_a_blocked_address_is_refused(loopback_server: str) -> None:
    # Only 127.0.0.1 is allowed; the redirect points at another loopback address.
    port = loopback_server.rsplit(":", 1)[1]
    target = f"http://127.0.0.2:{port}/"
    with (
        override_settings(OUTBOUND_ALLOW_CIDRS=LOOPBACK_ONLY),
        outbound.client() as http,
        pytest.raises(BlockedURL, match=re.escape("127.0.0.2")),
    ):
        http.get(f"{loopback_server}/redirect?to={target}")


def test_a_redirect_to_metadata_is_refused(loopback_server: str) -> None:
    target = "http://169.254.169.254/latest/meta-data/"
    with (
        override_settings(OUTBOUND_ALLOW_CIDRS=LOOPBACK_ONLY),
        outbound.client() as http,
        pytest.raises(BlockedURL, match="link-local"),
    ):
        http.get(f"{loopback_server}/redirect?to={target}")


def test_a_redirect_to_another_scheme_is_refused(loopback_server: str) -> None:
    with (
        override_settings(OUTBOUND_ALLOW_CIDRS=LOOPBACK_ONLY),
        outbound.client() as http,
        pytest.raises(httpx.HTTPError) as caught,
    ):
        http.get(f"{loopback_server}/redirect?to=file:///etc/passwd")
    assert "file" in str(caught.value)


def _fake_resolver(answers: list[list[str]]) -> Any:
    """A getaddrinfo that gives each answer in turn (the last one repeats)."""
    calls: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(host)
        addresses = answers[min(len(calls), len(answers)) - 1]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    getaddrinfo.calls = calls  # type: ignore[attr-defined]
    return getaddrinfo


def test_dns_that_changes_between_check_and_use_is_refused(
    loopback_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = loopback_server.rsplit(":", 1)[1]
    resolver = _fake_resolver([["93.184.216.34"], ["127.0.0.1"]])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    url = f"http://rebind.example:{port}/"
    check_url(url)  # the first answer is public, so a check at entry time passes
    with outbound.client() as http, pytest.raises(BlockedURL, match=re.escape("127.0.0.1")):
        http.get(url)  # the answer at connection time is what counts


def test_one_private_address_among_public_ones_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _fake_resolver([["93.184.216.34", "10.0.0.7"]]))
    with pytest.raises(BlockedURL, match=re.escape("10.0.0.7")):
        check_url("http://mixed.example/")


def test_the_connection_goes_to_the_checked_address(
    loopback_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = loopback_server.rsplit(":", 1)[1]
    resolver = _fake_resolver([["127.0.0.1"]])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with override_settings(OUTBOUND_ALLOW_CIDRS=LOOPBACK_ONLY), outbound.client() as http:
        response = http.get(f"http://pinned.example:{port}/")
    assert response.text == f"hello from pinned.example:{port}"
    # Resolved once; the socket then connects to that literal address.
    assert resolver.calls.count("pinned.example") == 1


def test_proxy_variables_cannot_bypass_the_guard(
    loopback_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", loopback_server)
    monkeypatch.setenv("ALL_PROXY", loopback_server)
    with outbound.client() as http, pytest.raises(BlockedURL):
        http.get(loopback_server + "/")


def test_the_unguarded_client_reaches_operator_endpoints(loopback_server: str) -> None:
    with outbound.client(guarded=False) as http:
        assert http.get(loopback_server + "/").status_code == 200


def test_read_limited_refuses_oversized_bodies(loopback_server: str) -> None:
    with (
        override_settings(OUTBOUND_ALLOW_CIDRS=LOOPBACK_ONLY),
        outbound.client() as http,
        http.stream("GET", loopback_server + "/") as response,
        pytest.raises(outbound.ResponseTooLarge),
    ):
        outbound.read_limited(response, 5)


def test_read_limited_gives_up_on_a_dripping_body() -> None:
    """Each byte arrives well within the read timeout; only the overall deadline stops it."""
    from tests.knowledge.test_drip import DripHandler

    server = ThreadingHTTPServer(("127.0.0.1", 0), DripHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with (
            override_settings(OUTBOUND_ALLOW_CIDRS=LOOPBACK_ONLY),
            outbound.client() as http,
            http.stream("GET", f"http://127.0.0.1:{server.server_address[1]}/slow") as response,
            pytest.raises(outbound.ResponseTooSlow) as raised,
        ):
            outbound.read_limited(response, 1_000_000, deadline_seconds=0.5)
        assert raised.value.seconds == 0.5
    finally:
        server.shutdown()
        server.server_close()
