"""What the rest of Parley calls: stream a bot's reply, read and set its route, embed text.

`stream_reply` never raises for upstream problems; its last event is always a `Finish`, with
`reason="error"` and a `StreamError` when the model could not answer (code "offline" when no
endpoint is configured or reachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from chatbot.lib.db import db_async

from . import detect, fairshare, registry
from .adapters.base import LLMError, classify_transport, error_text, fail
from .adapters.openai import auth_headers
from .models import BotRoute, ModelEndpoint, Source
from .prompt import build_request
from .routing import client_for, health_for, runtime_key, stream_route
from .spec import EndpointSpec
from .types import (
    DOWN_CODES,
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    Passage,
    StreamError,
    ToolSpec,
)

if TYPE_CHECKING:
    from chatbot.bots.models import Bot
    from chatbot.tenants.models import Tenant

log = logging.getLogger(__name__)


def _plan_allows(tenant: Tenant) -> Callable[[ModelEndpoint], bool]:
    """The tenant's plan may restrict the operator's endpoints; its own are always allowed.
    Reads `tenant.billing.plan` (no query when the caller selected them with the tenant)."""
    account = getattr(tenant, "billing", None)
    plan = account.plan if account is not None else None
    if plan is None or not plan.allowed_endpoints:
        return lambda endpoint: True
    return lambda endpoint: endpoint.tenant_id is not None or plan.allows_endpoint(endpoint.name)


def endpoints_for_tenant(tenant: Tenant) -> list[ModelEndpoint]:
    """The endpoints a tenant's bots may route to: the operator's, then the tenant's own."""
    registry.ensure_ready()
    rows = ModelEndpoint.objects.filter(
        Q(tenant__isnull=True, enabled=True) | Q(tenant=tenant, enabled=True)
    ).select_related("tenant")
    allowed = _plan_allows(tenant)
    return sorted(
        (row for row in rows if allowed(row)),
        key=lambda e: (e.tenant_id is not None, e.position, e.pk),
    )


def set_bot_route(bot: Bot, endpoint_ids: list[int]) -> None:
    """Primary first, then the fallbacks. An empty list means the operator's default route."""
    allowed = {endpoint.pk: endpoint for endpoint in endpoints_for_tenant(bot.tenant)}
    seen: set[int] = set()
    for endpoint_id in endpoint_ids:
        if endpoint_id not in allowed:
            raise ValueError(f"model endpoint {endpoint_id} is not available to this workspace")
        if endpoint_id in seen:
            raise ValueError(f"model endpoint {allowed[endpoint_id].name!r} is listed twice")
        seen.add(endpoint_id)
    registry.forget_routes()
    transaction.on_commit(registry.forget_routes)  # bulk_create sends no signal
    with transaction.atomic():
        BotRoute.objects.filter(bot=bot).delete()
        BotRoute.objects.bulk_create(
            BotRoute(bot=bot, endpoint_id=endpoint_id, position=position)
            for position, endpoint_id in enumerate(endpoint_ids)
        )


def bot_route(bot: Bot) -> list[ModelEndpoint]:
    """The endpoints the bot's replies try, in order (the operator's default when unset)."""
    steps = list(BotRoute.objects.filter(bot=bot).select_related("endpoint").order_by("position"))
    allowed = _plan_allows(bot.tenant)
    chosen = [
        step.endpoint
        for step in steps
        if step.endpoint.enabled
        and step.endpoint.tenant_id in (None, bot.tenant_id)
        and allowed(step.endpoint)
    ]
    if chosen:
        registry.ensure_ready()
        return chosen
    return [endpoint for endpoint in registry.operator_endpoints() if allowed(endpoint)]


def route_accepts_images(bot: Bot) -> bool:
    return any(endpoint.images for endpoint in bot_route(bot))


def _reachable(endpoint: ModelEndpoint) -> bool:
    if endpoint.source == Source.AUTODETECT:
        found = detect.cached()
        if found is not None and endpoint.name not in {s.name for s in found.specs}:
            return False
    health = health_for(endpoint.spec(strict=False))
    if health.breaker.is_open:
        return False
    # Its last attempt failed with a "down" error and nothing has succeeded since: the next
    # visitor would meet the same error, so say so before they write (the breaker needs
    # several failures to open).
    error = health.last_error
    return not (
        error is not None
        and error.code in DOWN_CODES
        and (health.last_error_at or 0) > (health.last_ok_at or 0)
    )


def bot_model_status(bot: Bot) -> Literal["ok", "offline"]:
    """ "offline" when no endpoint is configured, or every one is known to be down (its
    breaker is open, or its last attempt in this process failed with a DOWN_CODES error)."""
    return "ok" if any(_reachable(e) for e in bot_route(bot)) else "offline"


@dataclass(frozen=True, slots=True)
class Route:
    """A bot's route as a reply uses it: the endpoints' specs in order, and whether any of
    them reads images."""

    specs: tuple[EndpointSpec, ...]
    accepts_images: bool


# Routes read by replies are kept per bot for a few seconds (registry.route_cache): reading
# one costs two queries and a decryption per endpoint, on every reply.
ROUTE_CACHE_SECONDS = 5.0


def resolve_route(bot: Bot) -> Route:
    """The bot's route as a reply uses it (sync: the reply's database trip calls it)."""
    cached = registry.route_cache.get(bot.pk)
    now = time.monotonic()
    if cached is not None and now - cached[0] < ROUTE_CACHE_SECONDS:
        return cached[1]
    route = _read_route(bot)
    registry.route_cache[bot.pk] = (now, route)
    return route


def _read_route(bot: Bot) -> Route:
    endpoints = bot_route(bot)
    specs = []
    for endpoint in endpoints:
        problem = endpoint.secret_problem()
        if problem:
            log.error("llm: endpoint %s skipped: %s", endpoint.name, problem)
            continue
        specs.append(endpoint.spec())
    return Route(tuple(specs), any(endpoint.images for endpoint in endpoints))


async def stream_reply(
    bot: Bot,
    history: Sequence[ChatMessage],
    *,
    knowledge: Sequence[Passage] = (),
    max_tokens: int | None = None,
    route: Route | None = None,
    tools: tuple[ToolSpec, ...] = (),
    system_note: str = "",
) -> AsyncGenerator[Event, None]:
    """Stream the bot's reply to `history` (oldest first, ending with the visitor's message).

    Yields Routed, TextDelta..., Usage, Finish. Cancelling the consuming task (or closing this
    generator) closes the upstream request. A caller that already read the route (in its own
    database trip) passes it; otherwise it is read here. `tools` are the functions the model
    may call (it then ends with Finish("tool") after ToolCallDeltas); `system_note` is appended
    to the bot's system prompt (the tool loop's rules).
    """
    try:
        if route is None:
            route = await db_async(resolve_route)(bot)
        specs = list(route.specs)
    except Exception:
        log.exception("llm: cannot load the route of bot %s", getattr(bot, "pk", None))
        yield Finish(
            "error",
            StreamError("upstream", "the assistant's model settings could not be loaded"),
        )
        return
    system = bot.system_prompt or ""
    if system_note:
        system = f"{system}\n\n{system_note}" if system else system_note

    def build(spec: EndpointSpec) -> ChatRequest:
        return build_request(
            spec,
            system=system,
            history=history,
            knowledge=knowledge,
            max_tokens=max_tokens,
            tools=tools,
        )

    finished = False
    # The primary endpoint's streams are what tenants share (a fallback's queue is its own).
    if specs:
        gate = fairshare.share(runtime_key(specs[0]), specs[0].max_concurrency)
    else:  # no endpoint: the route ends at once with its own error
        gate = fairshare.share("", settings.MODEL_CALLS_PER_PROCESS)
    tenant = bot.tenant_id
    try:
        async with asyncio.timeout(settings.MODEL_QUEUE_TIMEOUT):
            await gate.acquire(tenant)
    except (TimeoutError, fairshare.QueueFull):
        yield Finish(
            "error",
            StreamError("overloaded", "this workspace has too many replies waiting for the model"),
        )
        return
    try:
        async with contextlib.aclosing(stream_route(specs, build)) as events:
            async for event in events:
                finished = isinstance(event, Finish)
                yield event
    except Exception:
        # A bug of ours must not leave the visitor waiting: end the reply with an error.
        log.exception("llm: the reply of bot %s failed", getattr(bot, "pk", None))
        if not finished:
            yield Finish("error", StreamError("upstream", "the assistant failed unexpectedly"))
    finally:
        gate.release(tenant)


# --- Embeddings -------------------------------------------------------------------------------


class EmbeddingError(LLMError):
    """The embeddings endpoint failed (the caller may retry later)."""


def _embedding_endpoint() -> ModelEndpoint | None:
    for endpoint in registry.operator_endpoints():
        if endpoint.embeddings:
            return endpoint
    return None


def embedding_endpoint() -> ModelEndpoint | None:
    """The operator endpoint that makes embeddings, if one offers them (sync: reads the
    registry)."""
    return _embedding_endpoint()


async def embed(
    texts: list[str], endpoint: ModelEndpoint | EndpointSpec | None = None
) -> list[list[float]] | None:
    """Vectors for `texts` (same order), or None when no endpoint offers embeddings.

    Uses Ollama's `/api/embed` or OpenAI-style `/v1/embeddings` on an endpoint flagged
    `embeddings`. Raises EmbeddingError when the endpoint fails.
    """
    if endpoint is None:
        endpoint = await db_async(_embedding_endpoint)()
        if endpoint is None:
            return None
    spec = endpoint.spec() if isinstance(endpoint, ModelEndpoint) else endpoint
    if not texts:
        return []
    model = spec.embedding_model or spec.model
    client = client_for(spec)
    try:
        if spec.kind == "ollama":
            response = await client.post(
                f"{spec.base_url}/api/embed",
                json={"model": model, "input": texts},
                headers=auth_headers(spec),
            )
        elif spec.kind == "openai":
            response = await client.post(
                f"{spec.base_url}/embeddings",
                json={"model": model, "input": texts},
                headers=auth_headers(spec),
            )
        else:
            raise EmbeddingError(
                StreamError(
                    "unsupported", f"{spec.label}: embeddings are not supported for {spec.kind}"
                )
            )
    except httpx.HTTPError as exc:
        raise EmbeddingError(classify_transport(exc, spec).error) from None
    if response.status_code >= 400:
        from .adapters.base import classify_status

        raise EmbeddingError(
            classify_status(response.status_code, error_text(response.content), spec).error
        )
    try:
        data = response.json()
        if spec.kind == "ollama":
            vectors = data["embeddings"]
        else:
            vectors = [item["embedding"] for item in sorted(data["data"], key=lambda d: d["index"])]
        result = [[float(x) for x in vector] for vector in vectors]
    except (ValueError, KeyError, TypeError):
        raise EmbeddingError(
            fail("upstream", f"{spec.label} answered embeddings in an unexpected shape").error
        ) from None
    if len(result) != len(texts):
        raise EmbeddingError(
            fail(
                "upstream", f"{spec.label} returned {len(result)} vectors for {len(texts)} texts"
            ).error
        )
    return result
