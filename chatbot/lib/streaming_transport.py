"""httpx over aiohttp, for the model streams of operator-declared endpoints.

A streamed reply arrives as one small chunk per token. httpx's own transport (httpcore, h11,
anyio) spends about 11 ms of CPU reading a 64-token reply when 50 stream at once; over
aiohttp's C parser the same read costs about 6 ms (bench/relay_e2e/README.md, "The upstream
client"), and that was the largest single cost of a reply after the database. So Parley keeps
httpx's API everywhere and, for these streams, swaps its transport for `httpx_aiohttp`'s (the
one the OpenAI Python library offers for the same reason).

What this module adds to it: failures named as httpx's own transport names them, so that
`chatbot.llm.adapters.base.classify_transport` tells a refused connection from a timeout or a
dropped stream exactly as before (the library maps, for one, every connection error to
`ConnectTimeout`); a URL whose path holds percent-escapes (Bedrock's model ids) goes through
httpx's own transport, since aiohttp would normalise the path under a SigV4 signature made
for the escaped one; and a pool whose event loop has closed can be let go without warnings.
Endpoints that tenants bring keep httpcore with the SSRF guard's pinned addresses
(`outbound._GuardedAsyncBackend`); aiohttp is only for the operator's own.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def _as_httpx(exc: BaseException, *, streaming: bool) -> httpx.TransportError | None:
    """httpx's own error for an aiohttp failure (None: not one we name)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS: the cause says
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        if streaming:
            return httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            )
        return httpx.RemoteProtocolError("Server disconnected without sending a response.")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(f"incomplete message body: {message}")
    if isinstance(exc, aiohttp.ClientOSError):
        return httpx.ReadError(message) if streaming else httpx.ConnectError(message)
    return None


def _reraise(exc: BaseException, *, streaming: bool) -> None:
    """Raise httpx's error for `exc` (an aiohttp error, or the library's mapping of one),
    chained to aiohttp's so that the underlying OSError stays readable."""
    original = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
    if original is not None:
        mapped = _as_httpx(original, streaming=streaming)
        if mapped is not None:
            raise mapped from original
    raise exc


class _Stream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self.inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                yield chunk
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            _reraise(exc, streaming=True)

    async def aclose(self) -> None:
        await self.inner.aclose()


class StreamingTransport(AiohttpTransport):
    """`httpx_aiohttp.AiohttpTransport` with httpx's own error names (see the module)."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self.escaped_paths = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if b"%" in request.url.raw_path:
            return await self.escaped_paths.handle_async_request(request)
        try:
            response = await super().handle_async_request(request)
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            _reraise(exc, streaming=False)
            raise  # unreachable: _reraise always raises
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Stream(response.stream)
        return response

    async def aclose(self) -> None:
        await super().aclose()
        await self.escaped_paths.aclose()

    def abandon(self) -> None:
        """Its event loop has closed: nothing can be sent or closed on it any more. Mark the
        session and its connector closed, so that collecting them logs no warning."""
        session = self.client
        if not isinstance(session, aiohttp.ClientSession) or session.closed:
            return
        connector = session.connector
        session.detach()
        if connector is not None:
            with warnings.catch_warnings():
                # On a closed loop, close() only marks the connector closed; what it returns
                # has nothing to wait for.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                connector.close()
