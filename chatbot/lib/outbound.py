"""The one outbound HTTP client: every request to the outside world goes through here.

Two flavours:
- `guarded=True` (URLs that tenants or visitors can influence: ingestion, tenant-brought model
  endpoints, webhooks): only http(s); the host is resolved once, *every* address must be a
  public one (or inside an operator-allowed range from OUTBOUND_ALLOW_CIDRS), and the socket
  connects to the address that was checked. That pins the answer, so a DNS record that changes
  between check and use (rebinding) cannot steer the request inside. Redirects go through the
  same transport, so each hop is checked again.
- `guarded=False` for endpoints the operator declared (a model server on loopback is normal).

Both ignore proxy environment variables, which would otherwise bypass the guard.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)
MAX_REDIRECTS = 5
USER_AGENT = "Parley/0.1 (+https://github.com/parley-chat)"


class BlockedURL(httpx.TransportError):
    """The guard refused the URL; the message says why, for the user who entered it."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for cidr in settings.OUTBOUND_ALLOW_CIDRS:
        networks.append(ipaddress.ip_network(cidr, strict=False))
    return networks


def blocked_reason(address: IPAddress) -> str | None:
    """Why an address may not be contacted, or None when it may."""
    # ::ffff:10.0.0.1 and friends are the IPv4 address in disguise: judge that address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for network in _allowed_networks():
        if address.version == network.version and address in network:
            return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_private:
        return "a private network address"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


def _check_scheme_and_host(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": an unclosed [
        raise BlockedURL("the URL is malformed") from None
    if parts.scheme not in ("http", "https"):
        raise BlockedURL(f"only http and https URLs can be fetched, not {parts.scheme or 'none'}:")
    if not parts.hostname:
        raise BlockedURL("the URL names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BlockedURL("the URL has an invalid port") from None
    return parts.hostname, port


def _vet(host: str, infos: Iterable[Any]) -> list[str]:
    addresses: list[str] = []
    for info in infos:
        raw = info[4][0]
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        reason = blocked_reason(address)
        if reason:
            raise BlockedURL(f"{host} resolves to {address}, {reason}; refusing to connect")
        if raw not in addresses:
            addresses.append(raw)
    if not addresses:
        raise BlockedURL(f"{host} does not resolve to any address")
    return addresses


def resolve_and_check(host: str, port: int) -> list[str]:
    """Resolve `host` and return its addresses if every one of them may be contacted."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedURL(f"{host} could not be resolved ({exc.strerror})") from None
    return _vet(host, infos)


def check_url(url: str) -> None:
    """Raise BlockedURL unless the URL is http(s) and its host resolves to allowed addresses.

    Use it to validate a URL when a user enters it; the guarded client checks again at
    connection time (the answer may have changed since).
    """
    host, port = _check_scheme_and_host(url)
    resolve_and_check(host, port)


class _GuardedSyncBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in resolve_and_check(host, port):
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise BlockedURL(f"{host} could not be resolved ({exc.strerror})") from None
        last_error: Exception | None = None
        for address in _vet(host, infos):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _pool_options(limits: httpx.Limits, verify: bool | ssl.SSLContext) -> dict[str, Any]:
    context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
    return {
        "ssl_context": context,
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, limits: httpx.Limits, verify: bool | ssl.SSLContext = True) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            network_backend=_GuardedSyncBackend(), **_pool_options(limits, verify)
        )


class _GuardedAsyncTransport(httpx.AsyncHTTPTransport):
    def __init__(self, limits: httpx.Limits, verify: bool | ssl.SSLContext = True) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=_GuardedAsyncBackend(), **_pool_options(limits, verify)
        )


def _refuse_bad_schemes(request: httpx.Request) -> None:
    # Redirects to file:, gopher: etc. never reach a transport, but say so clearly.
    if request.url.scheme not in ("http", "https"):
        raise BlockedURL(f"only http and https URLs can be fetched, not {request.url.scheme}:")


async def _refuse_bad_schemes_async(request: httpx.Request) -> None:
    _refuse_bad_schemes(request)


def _client_options(
    timeout: httpx.Timeout, follow_redirects: bool, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """What the sync and async clients share: no proxies from the environment, a redirect
    limit, our User-Agent."""
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    return {
        "timeout": timeout,
        "follow_redirects": follow_redirects,
        "max_redirects": MAX_REDIRECTS,
        "trust_env": False,
        "headers": headers,
        **kwargs,
    }


def client(
    *,
    guarded: bool = True,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    limits: httpx.Limits = DEFAULT_LIMITS,
    follow_redirects: bool = True,
    verify: bool | ssl.SSLContext = True,
    **kwargs: Any,
) -> httpx.Client:
    transport = (
        _GuardedTransport(limits, verify)
        if guarded
        else httpx.HTTPTransport(limits=limits, trust_env=False, verify=verify)
    )
    return httpx.Client(
        transport=transport,
        event_hooks={"request": [_refuse_bad_schemes]},
        **_client_options(timeout, follow_redirects, kwargs),
    )


def async_client(
    *,
    guarded: bool = True,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    limits: httpx.Limits = DEFAULT_LIMITS,
    follow_redirects: bool = True,
    verify: bool | ssl.SSLContext = True,
    streaming: bool = False,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """`streaming`: for an unguarded client that reads many small chunks (model streams),
    aiohttp's parser under httpx's API (`chatbot.lib.streaming_transport`)."""
    transport: httpx.AsyncBaseTransport
    if guarded:
        transport = _GuardedAsyncTransport(limits, verify)
    elif streaming and verify is True:
        from .streaming_transport import StreamingTransport

        transport = StreamingTransport(limits)
    else:
        transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False, verify=verify)
    return httpx.AsyncClient(
        transport=transport,
        event_hooks={"request": [_refuse_bad_schemes_async]},
        **_client_options(timeout, follow_redirects, kwargs),
    )


def abandon(client: httpx.AsyncClient) -> None:
    """Let go of a client whose event loop has closed without warnings (its connections died
    with the loop; only the streaming transport has anything to mark)."""
    transport = getattr(client, "_transport", None)
    abandon_transport = getattr(transport, "abandon", None)
    if abandon_transport is not None:
        abandon_transport()


class ResponseTooLarge(httpx.HTTPError):
    pass


class ResponseTooSlow(httpx.TimeoutException):
    """The body did not finish before the overall deadline (a server dripping bytes)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the response did not finish within {seconds:g} s")
        self.seconds = seconds


def read_limited(
    response: httpx.Response, max_bytes: int, *, deadline_seconds: float | None = None
) -> bytes:
    """Read a streamed response body, refusing more than `max_bytes` (sync clients).

    The client's read timeout bounds the wait for each chunk only: a server sending one byte
    every few seconds never trips it. `deadline_seconds` bounds the whole body, checked after
    every chunk, so such a server holds the caller at most this long plus one read timeout.
    """
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"the response is {int(declared)} bytes; the limit is {max_bytes}")
    give_up_at = None if deadline_seconds is None else time.monotonic() + deadline_seconds
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise ResponseTooLarge(f"the response is larger than the limit of {max_bytes} bytes")
        if give_up_at is not None and time.monotonic() >= give_up_at:
            raise ResponseTooSlow(deadline_seconds or 0.0)
    return bytes(body)
