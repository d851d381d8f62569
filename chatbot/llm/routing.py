"""Walking a route: failover before the first token, breakers, timeouts, concurrency slots.

`stream_route(specs, build)` tries each endpoint in order. It fails over only while nothing has
been sent to the caller: once a token went out, a failure ends the reply with an error (the
caller keeps the partial text). Per endpoint it keeps, in this process:
- a circuit breaker: after `breaker_failures` failures in a row the endpoint is skipped for
  `breaker_cooldown` seconds, then one request probes it (half-open);
- a concurrency limit of `max_concurrency` streams with a queue timeout, and an httpx pool of
  the same size (one pool per event loop, since httpx connections belong to a loop);
- three timeouts: connect (httpx), first token and the gap between tokens (a deadline that is
  pushed forward with each event and suspended while the caller holds an event).
Cancelling the consuming task closes the upstream response, which closes its connection.

Metrics (chatbot/core/metrics.py) are recorded at the slot, the first token and the end of an
attempt, never per token.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field

import httpx

from chatbot.core import metrics
from chatbot.lib import outbound

from .adapters import LLMError, adapter_for
from .adapters.base import classify_transport
from .spec import EndpointSpec
from .types import ChatRequest, Event, Finish, Routed, StreamError, TextDelta, ToolCallDelta, Usage

log = logging.getLogger(__name__)

# Errors that say something about the endpoint's health; the others are about the request.
_BREAKER_CODES = frozenset({"connect", "timeout", "upstream", "auth", "not_found", "rate_limited"})


class Breaker:
    """A circuit breaker for one endpoint: closed -> open (cool-down) -> half-open probe."""

    def __init__(self, failures: int, cooldown: float) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False

    def allow(self) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open":
            if time.monotonic() - self.opened_at < self.cooldown:
                return False
            self.state = "half-open"
            self.probing = False
        if self.probing:  # one probe at a time
            return False
        self.probing = True
        return True

    def success(self) -> None:
        self.state = "closed"
        self.failures = 0
        self.probing = False

    def failure(self) -> None:
        self.failures += 1
        self.probing = False
        if self.state == "half-open" or self.failures >= self.threshold:
            self.state = "open"
            self.opened_at = time.monotonic()

    def release(self) -> None:
        """The probe ended without telling anything about the endpoint (e.g. a bad request)."""
        self.probing = False

    @property
    def is_open(self) -> bool:
        return self.state == "open" and time.monotonic() - self.opened_at < self.cooldown

    def retry_in(self) -> float:
        return max(0.0, self.cooldown - (time.monotonic() - self.opened_at))

    @property
    def current_state(self) -> str:
        """closed, half-open, or open; an open breaker whose cool-down has passed lets the
        next request probe, so it counts as half-open."""
        if self.state == "open" and not self.is_open:
            return "half-open"
        return self.state


@dataclass
class EndpointHealth:
    """What this process last saw of an endpoint, for the dashboard and `bot_model_status`."""

    breaker: Breaker
    name: str = ""
    in_flight: int = 0
    last_ok_at: float | None = None  # time.time()
    last_error: StreamError | None = None
    last_error_at: float | None = None
    last_ttft_ms: int | None = None


_health: dict[str, EndpointHealth] = {}


def health_for(spec: EndpointSpec) -> EndpointHealth:
    key = spec.key or spec.name
    health = _health.get(key)
    if health is None:
        health = _health[key] = EndpointHealth(
            Breaker(spec.breaker_failures, spec.breaker_cooldown), name=spec.label
        )
    return health


def breaker_states() -> list[tuple[str, str, str]]:
    """(key, endpoint name, breaker state) for every endpoint this process has tried, oldest
    first (for /metrics; it may run on another thread, so it copies before reading)."""
    return [(key, h.name, h.breaker.current_state) for key, h in list(_health.items())]


def reset_state() -> None:
    """Forget breakers and health (tests)."""
    _health.clear()


@dataclass
class _Runtime:
    client: httpx.AsyncClient
    slots: asyncio.Semaphore
    waiting: int = 0
    specs: set[str] = field(default_factory=set)


# Per event loop, per endpoint key. Weak on the loop so a finished loop takes its pools along.
_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Runtime]] = (
    weakref.WeakKeyDictionary()
)


_retiring: set[asyncio.Task[None]] = set()


def http_timeout(spec: EndpointSpec) -> httpx.Timeout:
    # The read timeout is a backstop; the first-token and idle deadlines below are the real ones.
    return httpx.Timeout(
        connect=spec.connect_timeout,
        read=max(spec.first_token_timeout, spec.idle_timeout) + 5.0,
        write=30.0,
        pool=spec.queue_timeout + 5.0,
    )


def client_for(spec: EndpointSpec) -> httpx.AsyncClient:
    return _runtime(spec).client


def runtime_key(spec: EndpointSpec) -> str:
    """What identifies an endpoint's state in a process (an edited endpoint gets a new key)."""
    return spec.key or f"adhoc:{spec.name}:{spec.base_url}:{spec.model}"


def _runtime(spec: EndpointSpec) -> _Runtime:
    loop = asyncio.get_running_loop()
    if loop not in _runtimes:
        _abandon_closed_loops()
    per_loop = _runtimes.setdefault(loop, {})
    key = runtime_key(spec)
    runtime = per_loop.get(key)
    if runtime is None:
        # An edited endpoint gets a new key ("op:3:<updated_at>"): retire the old pool.
        prefix = key.rsplit(":", 1)[0] + ":"
        for old_key in [k for k in per_loop if k.startswith(prefix) and k != key]:
            old = per_loop.pop(old_key)
            _retiring.add(task := loop.create_task(old.client.aclose()))
            task.add_done_callback(_retiring.discard)
        runtime = per_loop[key] = _Runtime(
            client=outbound.async_client(
                guarded=spec.guarded,
                streaming=True,
                timeout=http_timeout(spec),
                limits=httpx.Limits(
                    max_connections=spec.max_concurrency,
                    max_keepalive_connections=spec.max_concurrency,
                    keepalive_expiry=30.0,
                ),
            ),
            slots=asyncio.Semaphore(spec.max_concurrency),
        )
    return runtime


def _abandon_closed_loops() -> None:
    """Forget the pools of event loops that have closed (tests run one loop per test): their
    connections died with the loop. (Each pool refers to its loop, so the weak keys alone
    never let them go.)"""
    for loop in [loop for loop in _runtimes if loop.is_closed()]:
        for runtime in _runtimes.pop(loop).values():
            outbound.abandon(runtime.client)


atexit.register(_abandon_closed_loops)  # the last loop's pools, quietly


async def discard(spec: EndpointSpec) -> None:
    """Close and forget one endpoint's pool in this loop (a one-off check's)."""
    runtime = _runtimes.get(asyncio.get_running_loop(), {}).pop(spec.key, None)
    if runtime is not None:
        await runtime.client.aclose()


async def close_pools() -> None:
    """Close this loop's connection pools (shutdown, tests)."""
    loop = asyncio.get_running_loop()
    for runtime in _runtimes.pop(loop, {}).values():
        await runtime.client.aclose()


def _combine(errors: list[tuple[EndpointSpec, StreamError]]) -> StreamError:
    if len(errors) == 1:
        return errors[0][1]
    first = errors[0][1]
    detail = "; ".join(f"{spec.label}: {error.message}" for spec, error in errors)
    return StreamError(
        code=first.code,
        message=f"no endpoint of the route answered ({detail})",
        retryable=any(error.retryable for _, error in errors),
        status=first.status,
    )


Builder = Callable[[EndpointSpec], ChatRequest]


async def stream_route(
    specs: Sequence[EndpointSpec], build: Builder
) -> AsyncGenerator[Event, None]:
    """Stream a reply from the first endpoint of `specs` that answers.

    `build(spec)` makes the request for that endpoint (the prompt depends on its context window
    and on whether it takes images); it may raise LLMError to skip the endpoint. Never raises
    for upstream problems: the last event is always a `Finish`.
    """
    started = time.monotonic()
    if not specs:
        yield Finish(
            "error",
            StreamError(
                code="offline",
                message="no model endpoint is configured; the operator can connect one "
                "(see Connecting a model)",
            ),
        )
        return
    errors: list[tuple[EndpointSpec, StreamError]] = []
    for spec in specs:
        health = health_for(spec)
        if not health.breaker.allow():
            errors.append(
                (
                    spec,
                    StreamError(
                        code="overloaded",
                        message=f"{spec.label} is skipped after repeated failures "
                        f"(retrying in {health.breaker.retry_in():.0f}s)"
                        + (
                            f"; last error: {health.last_error.message}"
                            if health.last_error
                            else ""
                        ),
                        retryable=True,
                    ),
                )
            )
            continue
        for _try in range(2):
            outcome: list[StreamError | None] = []
            retry_same: list[bool] = []
            sent = False
            # aclosing: if our caller stops early, the attempt (and its upstream response)
            # closes now, not whenever the garbage collector gets to it.
            attempt = _attempt(spec, build, started, outcome, retry_same)
            async with contextlib.aclosing(attempt):
                async for event in attempt:
                    sent = sent or isinstance(event, Routed)
                    yield event
            error = outcome[0] if outcome else None
            if error is None or sent:
                return  # answered (or failed after sending: _attempt yielded the Finish)
            if not retry_same or not health.breaker.allow():
                break
        if error is not None:
            errors.append((spec, error))
    yield Finish("error", _combine(errors))


async def _attempt(
    spec: EndpointSpec,
    build: Builder,
    started: float,
    outcome: list[StreamError | None],
    retry_same: list[bool],
) -> AsyncGenerator[Event, None]:
    """One endpoint's try. Appends the error (or None) to `outcome`; yields only once the
    endpoint has produced its first token (or finished), so a failure before that lets the
    caller fail over cleanly."""
    health = health_for(spec)
    breaker = health.breaker
    try:
        request = build(spec)
    except LLMError as exc:
        breaker.release()
        outcome.append(exc.error)
        return
    runtime = _runtime(spec)
    loop = asyncio.get_running_loop()
    metric_label = metrics.endpoint_label(spec.key, spec.label)
    queued_at = time.monotonic()
    try:
        async with asyncio.timeout(spec.queue_timeout):
            await runtime.slots.acquire()
    except TimeoutError:
        if metric_label is not None:
            metrics.queue_waited(metric_label, time.monotonic() - queued_at)
        breaker.release()
        outcome.append(
            StreamError(
                code="overloaded",
                message=f"{spec.label} is busy: all {spec.max_concurrency} streams were in use "
                f"for {spec.queue_timeout:g}s",
                retryable=True,
            )
        )
        return
    if metric_label is not None:
        metrics.queue_waited(metric_label, time.monotonic() - queued_at)
    health.in_flight += 1
    sent = False
    ttft_ms: int | None = None
    usage = Usage(0, 0)
    error: StreamError | None = None
    deadline = _Deadline(loop)
    try:
        stream = adapter_for(spec.kind).stream(runtime.client, spec, request)
        try:
            async with contextlib.aclosing(stream):
                # The deadline covers the wait for the first token, then each gap between events;
                # it is suspended while the caller holds an event, so a slow consumer is never
                # mistaken for a stalled server.
                deadline.arm(spec.first_token_timeout)
                try:
                    async for event in stream:
                        deadline.suspend()
                        if isinstance(event, TextDelta | ToolCallDelta):
                            if not sent:
                                sent = True
                                # Streaming means healthy: close the breaker now rather than at
                                # the end, so a long half-open probe does not hold others back.
                                breaker.success()
                                ttft = time.monotonic() - started
                                ttft_ms = int(ttft * 1000)
                                health.last_ttft_ms = ttft_ms
                                if metric_label is not None:
                                    metrics.first_token(metric_label, ttft)
                                yield Routed(endpoint=spec.name, model=spec.model)
                            yield event
                        elif isinstance(event, Usage):
                            usage = event
                        elif isinstance(event, Finish):
                            if not sent:
                                sent = True  # an empty reply is still an answer
                                yield Routed(endpoint=spec.name, model=spec.model)
                            breaker.success()
                            health.last_ok_at = time.time()
                            outcome.append(None)
                            timed = _timed(usage, spec, started, ttft_ms)
                            if metric_label is not None:
                                metrics.reply_ended(
                                    metric_label, "complete", time.monotonic() - started
                                )
                            _log_reply(timed, event.reason)
                            yield timed
                            yield event
                            return
                        deadline.arm(spec.idle_timeout if sent else spec.first_token_timeout)
                finally:
                    deadline.suspend()
        except asyncio.CancelledError:
            if deadline.expired():  # ours: the server stalled
                raise TimeoutError from None
            raise
        error = StreamError(
            "upstream", f"{spec.label} ended the stream without finishing", retryable=True
        )
    except LLMError as exc:
        error = exc.error
        if exc.retry_same and not sent:
            retry_same.append(True)
    except TimeoutError:
        if sent:
            message = f"{spec.label} stalled: no token for {spec.idle_timeout:g}s"
        else:
            message = f"{spec.label} sent no token within {spec.first_token_timeout:g}s"
        error = StreamError("timeout", message, retryable=True)
    except httpx.HTTPError as exc:
        classified = classify_transport(exc, spec)
        error = classified.error
        if classified.retry_same and not sent:
            retry_same.append(True)
    except (asyncio.CancelledError, GeneratorExit):
        # The caller stopped (a takeover, a visitor who left): not the endpoint's doing, but
        # a reply that had begun ends incomplete.
        breaker.release()
        if sent and not outcome and metric_label is not None:  # outcome: it had finished
            metrics.reply_ended(metric_label, "incomplete", time.monotonic() - started)
        raise
    finally:
        deadline.close()
        health.in_flight -= 1
        runtime.slots.release()
    if error.code in _BREAKER_CODES:
        breaker.failure()
    else:
        breaker.release()
    health.last_error = error
    health.last_error_at = time.time()
    outcome.append(error)
    if metric_label is not None:
        metrics.reply_ended(
            metric_label, "incomplete" if sent else "failed", time.monotonic() - started
        )
    if sent:
        timed = _timed(usage, spec, started, ttft_ms)
        _log_reply(timed, f"error:{error.code}")
        yield timed
        yield Finish("error", error)
    else:
        log.warning("llm endpoint=%s failed before the first token: %s", spec.label, error.message)


class _Deadline:
    """A timeout whose deadline moves with every event for the price of one float store.

    `asyncio.timeout().reschedule()` re-arms a timer handle per call, which at thousands of
    tokens a second was a sixth of the relay's CPU. Here one timer wakes at the current
    deadline; if the deadline moved on meanwhile it sleeps again until then, otherwise it
    cancels the task, and `expired()` tells that cancellation from any other.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.cancelling = task.cancelling()
        self.at: float | None = None
        self.handle: asyncio.TimerHandle | None = None
        self.fired = False

    def arm(self, seconds: float) -> None:
        self.at = self.loop.time() + seconds
        if self.handle is None:
            self.handle = self.loop.call_at(self.at, self._check)

    def suspend(self) -> None:
        self.at = None

    def _check(self) -> None:
        self.handle = None
        if self.at is None:
            return  # suspended; the next arm() sets a timer again
        if self.loop.time() < self.at:
            self.handle = self.loop.call_at(self.at, self._check)
            return
        self.fired = True
        self.task.cancel()

    def expired(self) -> bool:
        """True if the CancelledError being handled is ours (and turns it into a timeout)."""
        return self.fired and self.task.uncancel() <= self.cancelling

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


def _log_reply(usage: Usage, reason: str) -> None:
    log.info(
        "llm reply endpoint=%s model=%s finish=%s prompt_tokens=%d completion_tokens=%d "
        "ttft_ms=%s duration_ms=%s",
        usage.endpoint,
        usage.model,
        reason,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.ttft_ms,
        usage.duration_ms,
    )


def _timed(usage: Usage, spec: EndpointSpec, started: float, ttft_ms: int | None) -> Usage:
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        ttft_ms=ttft_ms,
        duration_ms=int((time.monotonic() - started) * 1000),
        endpoint=spec.name,
        model=spec.model,
    )
