"""Faults: dying, stalling and refusing endpoints; failover, breakers, queues, cancellation."""

from __future__ import annotations

import asyncio

from chatbot.llm import routing
from chatbot.llm.routing import stream_route
from chatbot.llm.types import Finish, Routed, TextDelta
from tests.fixtures.servers import free_port

from .conftest import collect, finish_of, hello_request, in_loop, make_spec, text_of, usage_of
from .wire import Reply, Request, WireServer, openai_chunk


async def answers(request: Request, reply: Reply) -> None:
    await reply.start(200, "text/event-stream")
    await reply.send(openai_chunk("Backup"))
    await reply.send(
        openai_chunk(" here", finish="stop", usage={"prompt_tokens": 4, "completion_tokens": 2})
    )
    await reply.send("data: [DONE]\n\n")
    await reply.end()


async def dies_before_first_token(request: Request, reply: Reply) -> None:
    await reply.start(200, "text/event-stream")
    reply.drop()


async def dies_after_first_token(request: Request, reply: Reply) -> None:
    await reply.start(200, "text/event-stream")
    await reply.send(openai_chunk("Hel"))
    reply.drop()


async def stalls_before_first_token(request: Request, reply: Reply) -> None:
    await reply.start(200, "text/event-stream")
    await asyncio.sleep(3600)


async def stalls_after_first_token(request: Request, reply: Reply) -> None:
    await reply.start(200, "text/event-stream")
    await reply.send(openai_chunk("Hel"))
    await asyncio.sleep(3600)


async def streams_forever(request: Request, reply: Reply) -> None:
    await reply.start(200, "text/event-stream")
    while True:
        await reply.send(openai_chunk("la "))
        await asyncio.sleep(0.01)


def route(*specs):  # type: ignore[no-untyped-def]
    request = hello_request()
    return stream_route(list(specs), lambda _spec: request)


@in_loop
async def test_the_fallback_answers_when_the_primary_dies_before_the_first_token() -> None:
    async with WireServer(dies_before_first_token) as dead, WireServer(answers) as backup:
        primary, fallback = make_spec(dead.url), make_spec(backup.url)
        events = await collect(route(primary, fallback))
    assert events[0] == Routed(endpoint=fallback.name, model=fallback.model)
    assert text_of(events) == "Backup here" and finish_of(events).reason == "stop"
    assert usage_of(events).endpoint == fallback.name
    assert len(dead.requests) == 1


@in_loop
async def test_no_failover_after_the_first_token_the_reply_ends_with_a_clear_error() -> None:
    async with WireServer(dies_after_first_token) as dying, WireServer(answers) as backup:
        events = await collect(route(make_spec(dying.url), make_spec(backup.url)))
    assert text_of(events) == "Hel"
    error = finish_of(events).error
    assert error is not None and error.code == "upstream"
    assert "closed the connection in the middle of the reply" in error.message
    assert backup.requests == []  # the visitor already saw text: no second answer spliced in


@in_loop
async def test_a_refused_connection_fails_over_and_is_named() -> None:
    closed_port = free_port()
    refused = make_spec(f"http://127.0.0.1:{closed_port}")
    async with WireServer(answers) as backup:
        events = await collect(route(refused, make_spec(backup.url)))
    assert text_of(events) == "Backup here"
    health = routing.health_for(refused)
    assert health.last_error is not None and "connection refused" in health.last_error.message


@in_loop
async def test_all_endpoints_failing_gives_one_error_naming_each() -> None:
    refused = make_spec(f"http://127.0.0.1:{free_port()}", name="local")
    async with WireServer(dies_before_first_token) as dead:
        events = await collect(route(refused, make_spec(dead.url, name="cloud")))
    error = finish_of(events).error
    assert error is not None and error.retryable
    assert "local: connection refused" in error.message and "cloud:" in error.message
    assert not any(isinstance(e, Routed) for e in events)


@in_loop
async def test_a_stall_before_the_first_token_times_out_and_fails_over() -> None:
    async with WireServer(stalls_before_first_token) as stalled, WireServer(answers) as backup:
        slow = make_spec(stalled.url, first_token_timeout=0.3)
        events = await collect(route(slow, make_spec(backup.url)))
    assert text_of(events) == "Backup here"
    assert routing.health_for(slow).last_error.code == "timeout"  # type: ignore[union-attr]


@in_loop
async def test_a_stall_between_tokens_fires_the_idle_timeout() -> None:
    async with WireServer(stalls_after_first_token) as stalled:
        events = await collect(route(make_spec(stalled.url, idle_timeout=0.3)))
    assert text_of(events) == "Hel"
    error = finish_of(events).error
    assert error is not None and error.code == "timeout" and "no token for 0.3s" in error.message
    usage = usage_of(events)
    assert usage.ttft_ms is not None and usage.duration_ms is not None


@in_loop
async def test_a_slow_consumer_is_not_mistaken_for_a_stalled_server() -> None:
    async with WireServer(answers) as server:
        events = []
        async for event in route(make_spec(server.url, idle_timeout=0.1)):
            events.append(event)
            await asyncio.sleep(0.15)  # longer than the idle timeout, on our side
    assert finish_of(events).reason == "stop"


@in_loop
async def test_the_breaker_opens_after_repeated_failures_and_recovers() -> None:
    healthy = {"now": False}

    async def flaky(request: Request, reply: Reply) -> None:
        if healthy["now"]:
            await answers(request, reply)
        else:
            await reply.whole(503, {"error": {"message": "loading model"}})

    async with WireServer(flaky) as server, WireServer(answers) as backup:
        primary = make_spec(server.url, breaker_failures=2, breaker_cooldown=0.4)
        fallback = make_spec(backup.url)
        for _ in range(2):
            events = await collect(route(primary, fallback))
            assert text_of(events) == "Backup here"
        assert routing.health_for(primary).breaker.state == "open"
        # While open, the primary is not even tried.
        await collect(route(primary, fallback))
        assert len(server.requests) == 2
        # Alone on the route, the open breaker gives a clear, retryable error.
        events = await collect(route(primary))
        error = finish_of(events).error
        assert (
            error is not None
            and error.code == "overloaded"
            and "repeated failures" in error.message
        )
        assert "loading model" in error.message
        # After the cool-down one probe goes through; it succeeds and closes the breaker.
        healthy["now"] = True
        await asyncio.sleep(0.45)
        events = await collect(route(primary, fallback))
        assert events[0] == Routed(endpoint=primary.name, model=primary.model)
        assert routing.health_for(primary).breaker.state == "closed"
        assert len(server.requests) == 3


@in_loop
async def test_a_failed_half_open_probe_reopens_the_breaker() -> None:
    async def broken(request: Request, reply: Reply) -> None:
        await reply.whole(500, {"error": "boom"})

    async with WireServer(broken) as server:
        spec = make_spec(server.url, breaker_failures=1, breaker_cooldown=0.2)
        await collect(route(spec))
        assert routing.health_for(spec).breaker.state == "open"
        await asyncio.sleep(0.25)
        await collect(route(spec))
        assert routing.health_for(spec).breaker.state == "open"
        assert len(server.requests) == 2


@in_loop
async def test_request_errors_do_not_trip_the_breaker() -> None:
    async def too_long(request: Request, reply: Reply) -> None:
        await reply.whole(
            400,
            {
                "error": {
                    "message": "the request exceeds the available context size",
                    "type": "exceed_context_size_error",
                }
            },
        )

    async with WireServer(too_long) as server:
        spec = make_spec(server.url, breaker_failures=1)
        events = await collect(route(spec))
    assert finish_of(events).error.code == "context"  # type: ignore[union-attr]
    assert routing.health_for(spec).breaker.state == "closed"


@in_loop
async def test_the_concurrency_limit_queues_then_times_out() -> None:
    async with WireServer(stalls_after_first_token) as server, WireServer(answers) as backup:
        busy = make_spec(server.url, max_concurrency=1, queue_timeout=0.2, idle_timeout=30)
        first = route(busy)
        assert isinstance(await anext(first), Routed)  # holds the only slot
        events = await collect(route(busy))
        error = finish_of(events).error
        assert error is not None and error.code == "overloaded" and "all 1 streams" in error.message
        # With a fallback, the overflow goes there instead.
        events = await collect(route(busy, make_spec(backup.url)))
        assert text_of(events) == "Backup here"
        await first.aclose()
        assert server.connections == 1


@in_loop
async def test_cancelling_the_consumer_closes_the_upstream_request() -> None:
    async with WireServer(streams_forever) as server:
        spec = make_spec(server.url)
        seen: list[str] = []

        async def consume() -> None:
            async for event in route(spec):
                if isinstance(event, TextDelta):
                    seen.append(event.text)

        task = asyncio.create_task(consume())
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.wait_for(server.disconnected.wait(), timeout=5)
    assert routing.health_for(spec).in_flight == 0
    assert routing.health_for(spec).breaker.state == "closed"


@in_loop
async def test_closing_the_stream_early_closes_the_upstream_request() -> None:
    async with WireServer(streams_forever) as server:
        stream = route(make_spec(server.url))
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        await stream.aclose()
        await asyncio.wait_for(server.disconnected.wait(), timeout=5)


@in_loop
async def test_no_endpoint_means_offline() -> None:
    events = await collect(stream_route([], lambda spec: hello_request()))
    assert events == [events[-1]] and isinstance(events[-1], Finish)
    assert events[-1].error is not None and events[-1].error.code == "offline"


@in_loop
async def test_a_connection_dropped_before_any_answer_is_retried_on_the_same_endpoint() -> None:
    calls = {"n": 0}

    async def drops_once(request: Request, reply: Reply) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            reply.drop()  # like a keep-alive connection the server had just closed
        else:
            await answers(request, reply)

    async with WireServer(drops_once) as server:
        spec = make_spec(server.url)
        events = await collect(route(spec))
    assert events[0] == Routed(endpoint=spec.name, model=spec.model)
    assert text_of(events) == "Backup here" and len(server.requests) == 2


@in_loop
async def test_a_long_half_open_probe_closes_the_breaker_at_its_first_token() -> None:
    async with WireServer(streams_forever) as server:
        spec = make_spec(server.url, breaker_failures=1, breaker_cooldown=0.01)
        breaker = routing.health_for(spec).breaker
        breaker.failure()
        await asyncio.sleep(0.02)
        stream = route(spec)
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        # The probe is still streaming, yet other replies may use the endpoint again.
        assert breaker.state == "closed" and breaker.allow()
        await stream.aclose()


async def test_operator_endpoints_stream_over_aiohttp_and_tenant_ones_keep_the_guard() -> None:
    """The faults above run through the transport the operator's endpoints use (aiohttp under
    httpx's API); a tenant's endpoint keeps the SSRF guard's pinned-address transport."""
    from chatbot.lib.outbound import _GuardedAsyncTransport
    from chatbot.lib.streaming_transport import StreamingTransport

    operator = make_spec("http://127.0.0.1:9", guarded=False)
    tenant = make_spec("http://203.0.113.9", guarded=True)
    assert isinstance(routing.client_for(operator)._transport, StreamingTransport)
    assert isinstance(routing.client_for(tenant)._transport, _GuardedAsyncTransport)
    await routing.close_pools()


async def test_a_dropped_stream_and_a_refused_connection_keep_httpx_names() -> None:
    """aiohttp's errors reach the classifier as httpx's own: a stream cut after the head is
    a protocol error, a refused connection a ConnectError whose cause says "refused"."""
    import httpx

    from chatbot.lib.streaming_transport import StreamingTransport

    transport = StreamingTransport(httpx.Limits(max_connections=2))
    async with httpx.AsyncClient(transport=transport) as client:
        try:
            await client.get(f"http://127.0.0.1:{free_port()}/")
        except httpx.ConnectError as exc:
            assert isinstance(exc.__cause__, OSError) or "refused" in repr(exc.__cause__)
        else:
            raise AssertionError("a closed port answered")
        async with (
            WireServer(dies_after_first_token) as server,
            client.stream("POST", f"{server.url}/v1/chat/completions") as response,
        ):
            try:
                async for _ in response.aiter_bytes():
                    pass
            except httpx.RemoteProtocolError:
                pass
            else:
                raise AssertionError("a cut stream ended cleanly")
