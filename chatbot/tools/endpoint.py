"""Calling a tenant's HTTPS endpoint for an action, through the guarded outbound client.

The URL may name arguments in its path (`https://shop.example/orders/{order_id}`); the rest
travel as the query string (GET, DELETE) or as a JSON body. Headers come from the action's
encrypted store and never leave this module except in the request: the result the model and
the transcript get has every header value replaced by `[redacted]` wherever it appears (an
endpoint echoing its Authorization header does not leak it).
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from chatbot.lib import outbound
from chatbot.lib.crypto import decrypt_str, encrypt_str

from .models import MAX_TIMEOUT_SECONDS, Action

MAX_RESPONSE_BYTES = 256 * 1024
REDACTED = "[redacted]"

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def _client() -> httpx.AsyncClient:
    """One guarded client per event loop: its pool keeps connections to endpoints warm."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = outbound.async_client(guarded=True, follow_redirects=False)
        _clients[loop] = client
    return client


def headers_of(action: Action) -> dict[str, str]:
    raw = decrypt_str(action.headers_encrypted)
    if not raw:
        return {}
    value = json.loads(raw)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def store_headers(action: Action, headers: dict[str, str]) -> None:
    action.headers_encrypted = encrypt_str(json.dumps(headers)) if headers else ""


@dataclass
class EndpointResult:
    ok: bool
    status: int | None
    body: Any  # parsed JSON, or text
    error: str = ""
    duration_ms: int = 0
    request: dict[str, Any] = field(default_factory=dict)  # for the "test" page (masked)


def redact(value: Any, secrets: list[str]) -> Any:
    """`value` with every secret string replaced, however deep (JSON-shaped data)."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    if isinstance(value, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    return value


def build_request(action: Action, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The URL (path arguments filled in) and the arguments left for the query or body."""
    url = action.url
    rest = dict(arguments)
    for name in list(rest):
        placeholder = "{" + name + "}"
        if placeholder in url:
            url = url.replace(placeholder, quote(str(rest.pop(name)), safe=""))
    return url, rest


async def call(action: Action, arguments: dict[str, Any]) -> EndpointResult:
    """Call the endpoint; never raises for network or HTTP problems (they are the result)."""
    headers = headers_of(action)
    secrets = [v for v in headers.values() if len(v) >= 4]
    url, rest = build_request(action, arguments)
    masked = {name: REDACTED for name in headers}
    request_record: dict[str, Any] = {"method": action.method, "url": url, "headers": masked}
    kwargs: dict[str, Any] = {"headers": {"Accept": "application/json", **headers}}
    if action.method in ("GET", "DELETE"):
        kwargs["params"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
        request_record["query"] = kwargs["params"]
    else:
        kwargs["json"] = rest
        request_record["body"] = rest
    timeout = float(min(max(action.timeout_seconds, 1), MAX_TIMEOUT_SECONDS))
    started = time.monotonic()

    def done(ok: bool, status: int | None, body: Any, error: str = "") -> EndpointResult:
        return EndpointResult(
            ok,
            status,
            redact(body, secrets),
            redact(error, secrets)[:500],
            int((time.monotonic() - started) * 1000),
            request_record,
        )

    try:
        async with asyncio.timeout(timeout):
            request = _client().build_request(
                action.method, url, timeout=httpx.Timeout(timeout), **kwargs
            )
            response = await _client().send(request, stream=True)
            try:
                body = await _read_limited(response)
            finally:
                await response.aclose()
    except TimeoutError:
        return done(False, None, None, f"the endpoint did not answer within {timeout:g}s")
    except outbound.BlockedURL as exc:
        return done(False, None, None, f"refused: {exc}")
    except outbound.ResponseTooLarge as exc:
        return done(False, None, None, str(exc))
    except httpx.HTTPError as exc:
        return done(False, None, None, f"the endpoint could not be reached ({type(exc).__name__})")
    parsed = _parse(body, response.headers.get("content-type", ""))
    if response.status_code >= 400:
        return done(
            False,
            response.status_code,
            parsed,
            f"the endpoint answered HTTP {response.status_code}",
        )
    if 300 <= response.status_code < 400:
        return done(False, response.status_code, None, "the endpoint answered with a redirect")
    return done(True, response.status_code, parsed)


async def _read_limited(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > MAX_RESPONSE_BYTES:
            raise outbound.ResponseTooLarge(
                f"the endpoint's answer is larger than {MAX_RESPONSE_BYTES // 1024} KB"
            )
    return bytes(body)


def _parse(body: bytes, content_type: str) -> Any:
    text = body.decode("utf-8", "replace")
    if "json" in content_type or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text[:4000]
