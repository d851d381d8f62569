"""The service the rest of Parley calls: routes, status, stream_reply, embeddings, tenants'
own endpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from chatbot.bots.models import Bot
from chatbot.llm import actions, registry, routing, service
from chatbot.llm.models import BotRoute, ModelEndpoint, Source
from chatbot.llm.types import ChatMessage, ImagePart, Passage, Routed, TextPart
from chatbot.tenants.models import Tenant

from .conftest import collect, finish_of, in_loop, text_of, usage_of
from .wire import Reply, Request, WireServer, ollama_done, ollama_line, openai_chunk


def declared(*endpoints: dict[str, Any]) -> Any:
    return override_settings(LLM_ENDPOINTS_JSON=json.dumps(list(endpoints)), LLM_ENDPOINTS_FILE="")


LOCAL = {"name": "local", "kind": "ollama", "url": "http://127.0.0.1:11434", "model": "llama3.2"}
CLOUD = {
    "name": "groq",
    "kind": "openai",
    "url": "https://api.groq.com/openai/v1",
    "model": "llama-3.3-70b-versatile",
    "auth": "bearer",
    "api_key": "gsk-secret-value",
    "images": True,
}


def make_bot(tenant: Tenant, **kw: Any) -> Bot:
    return Bot.objects.create(tenant=tenant, name=kw.pop("name", "Helper"), **kw)


def own_endpoint(tenant: Tenant, name: str = "mine", **kw: Any) -> ModelEndpoint:
    values: dict[str, Any] = {
        "tenant": tenant,
        "name": name,
        "kind": "openai",
        "base_url": "https://llm.example.com/v1",
        "model": "llama",
        "source": Source.TENANT,
    }
    values.update(kw)
    return ModelEndpoint.objects.create(**values)


# --- Declared endpoints ------------------------------------------------------------------------


def test_declared_endpoints_become_rows_in_order_with_secrets_encrypted(db: None) -> None:
    with declared(LOCAL, CLOUD):
        rows = registry.operator_endpoints()
    assert [r.name for r in rows] == ["local", "groq"]
    groq = rows[1]
    assert groq.source == Source.CONFIG and groq.images and groq.auth == "bearer"
    raw = ModelEndpoint.objects.filter(pk=groq.pk).values_list("secret_encrypted", flat=True)[0]
    assert "gsk-secret-value" not in raw and raw
    assert groq.secret == "gsk-secret-value"
    assert groq.spec().api_key == "gsk-secret-value"


def test_an_endpoint_dropped_from_the_config_is_disabled_not_deleted(
    db: None, acme: Tenant
) -> None:
    with declared(LOCAL, CLOUD):
        registry.operator_endpoints()
    bot = make_bot(acme)
    service.set_bot_route(bot, [ModelEndpoint.objects.get(name="groq").pk])
    registry.reset()
    with declared(LOCAL):
        assert [r.name for r in registry.operator_endpoints()] == ["local"]
        groq = ModelEndpoint.objects.get(name="groq")
        assert not groq.enabled
        assert BotRoute.objects.filter(bot=bot, endpoint=groq).exists()
        # The bot's route points only at a disabled endpoint: it uses the default route.
        assert [e.name for e in service.bot_route(bot)] == ["local"]


def _one(**fields: Any) -> str:
    return json.dumps([{"name": "a", "kind": "openai", "url": "http://x", "model": "m", **fields}])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "LLM_ENDPOINTS: not valid JSON"),
        ('{"endpoints": {}}', 'expected a list or {"endpoints": [...]}'),
        (_one(kind="gpt"), "'kind' must be one of"),
        (_one(url="ftp://x"), "expected an http"),
        (_one(model=""), "'model' is required"),
        (_one(auth="bearer"), "needs 'api_key'"),
        (_one(colour=1), "unknown field 'colour'"),
        (_one(kind="bedrock", url=""), "'region' is required"),
        (_one(max_concurrency=0), "'max_concurrency'"),
        (_one(api_key_env="PARLEY_NOPE", auth="bearer"), "'PARLEY_NOPE', which is not set"),
        (_one(first_token_timeout="soon"), "'first_token_timeout' must be a number"),
        (json.dumps(json.loads(_one()) * 2), "used twice"),
    ],
)
def test_a_bad_declaration_fails_loudly_naming_the_problem(
    db: None, data: str, message: str
) -> None:
    with (
        override_settings(LLM_ENDPOINTS_JSON=data, LLM_ENDPOINTS_FILE=""),
        pytest.raises(ImproperlyConfigured) as caught,
    ):
        registry.operator_endpoints()
    assert message in str(caught.value)


def test_secrets_can_come_from_the_environment(
    db: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("PARLEY_TEST_GROQ_KEY", "from-env")
    config = tmp_path / "endpoints.json"
    config.write_text(
        json.dumps(
            {"endpoints": [{**CLOUD, "api_key": None, "api_key_env": "PARLEY_TEST_GROQ_KEY"}]}
        )
    )
    with override_settings(LLM_ENDPOINTS_FILE=str(config), LLM_ENDPOINTS_JSON=""):
        (groq,) = registry.operator_endpoints()
    assert groq.secret == "from-env"
    assert groq.spec().base_url == "https://api.groq.com/openai/v1"


def test_a_bare_openai_host_gets_v1(db: None) -> None:
    with declared({"name": "ls", "kind": "openai", "url": "http://127.0.0.1:1234", "model": "m"}):
        (row,) = registry.operator_endpoints()
    assert row.spec().base_url == "http://127.0.0.1:1234/v1"


# --- Routes, isolation, status -----------------------------------------------------------------


def test_endpoints_for_tenant_are_the_operators_then_its_own(
    db: None, acme: Tenant, bravo: Tenant
) -> None:
    with declared(LOCAL):
        mine = own_endpoint(acme)
        theirs = own_endpoint(bravo, name="bravo-llm")
        acme_names = [e.name for e in service.endpoints_for_tenant(acme)]
        bravo_names = [e.name for e in service.endpoints_for_tenant(bravo)]
    assert acme_names == ["local", mine.name]
    assert bravo_names == ["local", theirs.name]


def test_a_route_cannot_use_another_tenants_endpoint(db: None, acme: Tenant, bravo: Tenant) -> None:
    bot = make_bot(acme)
    theirs = own_endpoint(bravo, name="bravo-llm")
    with pytest.raises(ValueError, match="not available to this workspace"):
        service.set_bot_route(bot, [theirs.pk])
    with pytest.raises(ValueError, match="not available to this workspace"):
        service.set_bot_route(bot, [999999])
    assert not BotRoute.objects.filter(bot=bot).exists()


def test_set_bot_route_keeps_the_order_and_refuses_duplicates(db: None, acme: Tenant) -> None:
    with declared(LOCAL, CLOUD):
        registry.operator_endpoints()
        bot = make_bot(acme)
        mine = own_endpoint(acme)
        groq = ModelEndpoint.objects.get(name="groq")
        service.set_bot_route(bot, [mine.pk, groq.pk])
        assert [e.name for e in service.bot_route(bot)] == ["mine", "groq"]
        with pytest.raises(ValueError, match="listed twice"):
            service.set_bot_route(bot, [groq.pk, groq.pk])
        assert [e.name for e in service.bot_route(bot)] == ["mine", "groq"]
        service.set_bot_route(bot, [])
        assert [e.name for e in service.bot_route(bot)] == ["local", "groq"]


def test_status_and_images_follow_the_route(db: None, acme: Tenant) -> None:
    bot = make_bot(acme)
    assert service.bot_model_status(bot) == "offline"
    assert service.route_accepts_images(bot) is False
    with declared(LOCAL, CLOUD):
        registry.reset()  # the operator restarts Parley with endpoints declared
        assert service.bot_model_status(bot) == "ok"
        assert service.route_accepts_images(bot) is True
        service.set_bot_route(bot, [ModelEndpoint.objects.get(name="local").pk])
        assert service.route_accepts_images(bot) is False
        # Its only endpoint keeps failing: the breaker opens and the bot shows offline.
        spec = ModelEndpoint.objects.get(name="local").spec()
        for _ in range(spec.breaker_failures):
            routing.health_for(spec).breaker.failure()
        assert service.bot_model_status(bot) == "offline"


def test_status_is_offline_after_a_down_error_until_the_endpoint_answers_again(
    db: None, acme: Tenant
) -> None:
    """The breaker needs several failures; the widget's config says "offline" after one
    connect/overloaded error (what the next visitor would meet), and "ok" once it answers."""
    import time

    from chatbot.llm.types import StreamError

    bot = make_bot(acme)
    with declared(LOCAL):
        registry.reset()
        registry.operator_endpoints()
        health = routing.health_for(ModelEndpoint.objects.get(name="local").spec())
        now = time.time()
        for code in ("connect", "overloaded"):
            now += 1
            health.last_error, health.last_error_at = StreamError(code, "refused"), now
            assert service.bot_model_status(bot) == "offline"
            now += 1
            health.last_ok_at = now
            assert service.bot_model_status(bot) == "ok"
        # An error about the request itself says nothing about the model being down.
        health.last_error, health.last_error_at = StreamError("context", "too long"), now + 1
        assert service.bot_model_status(bot) == "ok"


def test_a_replys_route_is_read_once_then_follows_every_change(
    db: None, acme: Tenant, django_assert_num_queries: Any
) -> None:
    with declared(LOCAL, CLOUD):
        registry.reset()
        bot = make_bot(acme)
        assert [s.name for s in service.resolve_route(bot).specs] == ["local", "groq"]
        with django_assert_num_queries(0):  # the next replies of the bot read no route
            assert [s.name for s in service.resolve_route(bot).specs] == ["local", "groq"]
        service.set_bot_route(bot, [ModelEndpoint.objects.get(name="groq").pk])
        assert [s.name for s in service.resolve_route(bot).specs] == ["groq"]
        groq = ModelEndpoint.objects.get(name="groq")
        groq.model = "llama-4"
        groq.save()
        assert [s.model for s in service.resolve_route(bot).specs] == ["llama-4"]
        groq.delete()
        assert [s.name for s in service.resolve_route(bot).specs] == ["local"]


# --- stream_reply ------------------------------------------------------------------------------


async def _bot_routed_to(tenant_name: str, *urls: str, **kw: Any) -> Bot:
    def setup() -> Bot:
        tenant = Tenant.objects.create(name=tenant_name, slug=tenant_name.lower())
        bot = make_bot(tenant, system_prompt="You are Acme's helper.")
        ids = [
            ModelEndpoint.objects.create(
                tenant=None, name=f"{tenant_name}-{i}", kind="openai", base_url=url + "/v1",
                model="llama", source=Source.ADMIN, **kw,
            ).pk
            for i, url in enumerate(urls)
        ]  # fmt: skip
        service.set_bot_route(bot, ids)
        return bot

    return await sync_to_async(setup)()


async def echo_prompt(request: Request, reply: Reply) -> None:
    body = request.json()
    await reply.start(200, "text/event-stream")
    await reply.send(openai_chunk("ok"))
    await reply.send(openai_chunk(finish="stop"))
    usage = {"prompt_tokens": len(body["messages"]), "completion_tokens": 1}
    await reply.send(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n")
    await reply.end()


async def refuses(request: Request, reply: Reply) -> None:
    reply.drop()


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_stream_reply_offline_without_endpoints() -> None:
    def setup() -> Bot:
        return make_bot(Tenant.objects.create(name="Solo", slug="solo"))

    bot = await sync_to_async(setup)()
    events = await collect(service.stream_reply(bot, [ChatMessage.text("user", "hi")]))
    error = finish_of(events).error
    assert error is not None and error.code == "offline"
    assert "no model endpoint is configured" in error.message


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_stream_reply_walks_the_bots_route_and_cites_knowledge() -> None:
    async with WireServer(refuses) as dead, WireServer(echo_prompt) as alive:
        bot = await _bot_routed_to("Acme", dead.url, alive.url)
        passages = [
            Passage(id="c1", title="Returns", url="https://acme.test/returns", text="30 days."),
            Passage(id="c2", title="Shipping", url="", text="Free over $50."),
        ]
        history = [
            ChatMessage.text("user", "hello"),
            ChatMessage.text("assistant", "Hi! How can I help?"),
            ChatMessage.text("user", "Can I return shoes?"),
        ]
        events = await collect(
            service.stream_reply(bot, history, knowledge=passages, max_tokens=64)
        )
    assert isinstance(events[0], Routed) and events[0].endpoint == "Acme-1"
    assert text_of(events) == "ok" and finish_of(events).reason == "stop"
    assert usage_of(events).endpoint == "Acme-1" and usage_of(events).prompt_tokens == 4
    body = alive.requests[0].json()
    system = body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are Acme's helper.")
    assert "[1] Returns (https://acme.test/returns)\n30 days." in system["content"]
    assert "[2] Shipping\nFree over $50." in system["content"]
    assert [m["content"] for m in body["messages"][1:]] == [m.plain_text for m in history]
    assert body["max_tokens"] == 64


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_stream_reply_refuses_images_on_a_text_only_route() -> None:
    async with WireServer(echo_prompt) as alive:
        bot = await _bot_routed_to("Texty", alive.url)
        message = ChatMessage("user", (TextPart("what is this?"), ImagePart(b"\x89PNG")))
        events = await collect(service.stream_reply(bot, [message]))
    error = finish_of(events).error
    assert (
        error is not None and error.code == "unsupported" and "cannot read images" in error.message
    )
    assert alive.requests == []


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_old_images_are_described_not_sent_to_a_text_only_model() -> None:
    async with WireServer(echo_prompt) as alive:
        bot = await _bot_routed_to("Olds", alive.url)
        history = [
            ChatMessage("user", (TextPart("look"), ImagePart(b"\x89PNG"))),
            ChatMessage.text("assistant", "Nice."),
            ChatMessage.text("user", "thanks"),
        ]
        events = await collect(service.stream_reply(bot, history))
    assert finish_of(events).reason == "stop"
    first = alive.requests[0].json()["messages"][1]["content"]
    assert first == "look[an image was shared here]"


# --- Embeddings --------------------------------------------------------------------------------


async def ollama_embed(request: Request, reply: Reply) -> None:
    texts = request.json()["input"]
    await reply.whole(
        200, {"model": "nomic-embed-text", "embeddings": [[float(len(t)), 1.0] for t in texts]}
    )


async def openai_embed(request: Request, reply: Reply) -> None:
    texts = request.json()["input"]
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5]}
        for i, t in enumerate(texts)
    ]
    await reply.whole(200, {"object": "list", "data": list(reversed(data))})


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_embed_is_none_without_an_embeddings_endpoint() -> None:
    assert await service.embed(["hello"]) is None


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_embed_uses_ollama_api_embed() -> None:
    async with WireServer(ollama_embed) as server:
        await sync_to_async(ModelEndpoint.objects.create)(
            name="emb", kind="ollama", base_url=server.url, model="llama3.2",
            embeddings=True, embedding_model="nomic-embed-text", source=Source.ADMIN,
        )  # fmt: skip
        vectors = await service.embed(["a", "abc"])
    assert vectors == [[1.0, 1.0], [3.0, 1.0]]
    assert server.requests[0].path == "/api/embed"
    assert server.requests[0].json()["model"] == "nomic-embed-text"


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_embed_uses_openai_embeddings_in_index_order() -> None:
    async with WireServer(openai_embed) as server:
        endpoint = await sync_to_async(ModelEndpoint.objects.create)(
            name="emb2", kind="openai", base_url=server.url + "/v1", model="m", embeddings=True,
            source=Source.ADMIN,
        )  # fmt: skip
        vectors = await service.embed(["xy", "z"], endpoint)
    assert vectors == [[2.0, 0.5], [1.0, 0.5]]
    assert server.requests[0].path == "/v1/embeddings"


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_embed_failure_raises_a_clear_error() -> None:
    async def broken(request: Request, reply: Reply) -> None:
        await reply.whole(404, {"error": 'model "nomic" not found'})

    async with WireServer(broken) as server:
        endpoint = await sync_to_async(ModelEndpoint.objects.create)(
            name="emb3", kind="ollama", base_url=server.url, model="nomic", embeddings=True,
            source=Source.ADMIN,
        )  # fmt: skip
        with pytest.raises(service.EmbeddingError) as caught:
            await service.embed(["x"], endpoint)
    assert caught.value.error.code == "not_found"


# --- Tenants' own endpoints --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:11434",
        "http://169.254.169.254/latest",
        "http://10.0.0.5/v1",
        "http://[::1]:8080",
    ],
)
def test_a_tenant_endpoint_cannot_point_inside_the_platform(
    db: None, acme: Tenant, url: str
) -> None:
    with pytest.raises(actions.EndpointInvalid, match="This URL cannot be used"):
        actions.add_tenant_endpoint(
            acme, name="sneaky", kind="openai", base_url=url, model="m", api_key="k"
        )
    assert not ModelEndpoint.objects.filter(name="sneaky").exists()


def test_a_tenant_endpoint_key_is_encrypted_at_rest(
    db: None, acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    monkeypatch.setattr("chatbot.lib.outbound.check_url", checked.append)
    endpoint = actions.add_tenant_endpoint(
        acme, name="together", kind="openai", base_url="https://api.together.xyz/v1",
        model="meta-llama/Llama-3.3-70B-Instruct-Turbo", api_key="tgp_v1_secret",
    )  # fmt: skip
    assert checked == ["https://api.together.xyz/v1"]
    raw = ModelEndpoint.objects.filter(pk=endpoint.pk).values_list("secret_encrypted", flat=True)[0]
    assert "tgp_v1_secret" not in raw
    spec = ModelEndpoint.objects.get(pk=endpoint.pk).spec()
    assert spec.api_key == "tgp_v1_secret" and spec.guarded is True
    with pytest.raises(actions.EndpointInvalid, match="already exists"):
        actions.add_tenant_endpoint(
            acme, name="together", kind="openai", base_url="https://a.b/v1", model="m", api_key="k"
        )


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_a_tenant_endpoint_is_guarded_when_the_reply_streams() -> None:
    # Saved before its host started resolving inside (DNS rebinding): the guarded client
    # refuses at connection time, and no request reaches the internal server.
    async with WireServer(echo_prompt) as internal:

        def setup() -> Bot:
            tenant = Tenant.objects.create(name="Rebind", slug="rebind")
            endpoint = own_endpoint(tenant, base_url=internal.url + "/v1")
            bot = make_bot(tenant)
            service.set_bot_route(bot, [endpoint.pk])
            return bot

        bot = await sync_to_async(setup)()
        events = await collect(service.stream_reply(bot, [ChatMessage.text("user", "hi")]))
    error = finish_of(events).error
    assert error is not None and error.code == "connect"
    assert "refused to connect" in error.message and "loopback" in error.message
    assert internal.requests == [] and internal.connections == 0


def test_tenant_endpoints_cannot_be_bedrock(db: None, acme: Tenant) -> None:
    with pytest.raises(actions.EndpointInvalid, match="Ollama or OpenAI-compatible"):
        actions.add_tenant_endpoint(acme, name="b", kind="bedrock", base_url="https://x", model="m")


# --- Autodetection -----------------------------------------------------------------------------


async def fake_ollama(request: Request, reply: Reply) -> None:
    if request.path == "/api/tags":
        await reply.whole(
            200,
            {"models": [{"name": "nomic-embed-text:latest"}, {"name": "llama3.2-vision:latest"}]},
        )
    elif request.path == "/api/show":
        await reply.whole(200, {"capabilities": ["completion", "vision"]})
    else:
        await reply.start(200, "application/x-ndjson")
        await reply.send(ollama_line("Hi"))
        await reply.send(ollama_done())
        await reply.end()


@pytest.mark.django_db(transaction=True)
@in_loop
async def test_autodetection_adopts_a_local_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatbot.llm import detect

    async with WireServer(fake_ollama) as server:
        monkeypatch.setattr(detect, "OLLAMA_URL", server.url)
        monkeypatch.setattr(detect, "LLAMA_SERVER_URL", "http://127.0.0.1:9")  # nothing there
        with override_settings(LLM_AUTODETECT=True, LLM_ENDPOINTS_JSON="", LLM_ENDPOINTS_FILE=""):
            rows = await sync_to_async(registry.operator_endpoints)()
            (row,) = rows
            assert (row.name, row.kind, row.model) == (
                "ollama-local",
                "ollama",
                "llama3.2-vision:latest",
            )
            assert (
                row.images and row.embeddings and row.embedding_model == "nomic-embed-text:latest"
            )
            assert row.source == Source.AUTODETECT

            def bot() -> Bot:
                return make_bot(Tenant.objects.create(name="Auto", slug="auto"))

            events = await collect(
                service.stream_reply(await sync_to_async(bot)(), [ChatMessage.text("user", "hi")])
            )
    assert text_of(events) == "Hi"


def test_autodetection_finding_nothing_is_not_an_error(
    db: None, monkeypatch: pytest.MonkeyPatch, acme: Tenant
) -> None:
    from chatbot.llm import detect

    monkeypatch.setattr(detect, "OLLAMA_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(detect, "LLAMA_SERVER_URL", "http://127.0.0.1:9")
    with override_settings(LLM_AUTODETECT=True, LLM_ENDPOINTS_JSON="", LLM_ENDPOINTS_FILE=""):
        assert registry.operator_endpoints() == []
        assert service.bot_model_status(make_bot(acme)) == "offline"


async def fake_llama_server(request: Request, reply: Reply) -> None:
    if request.path == "/v1/models":
        await reply.whole(200, {"object": "list", "data": [{"id": "Llama-3.2-11B-Vision.gguf"}]})
    elif request.path == "/props":
        await reply.whole(
            200, {"default_generation_settings": {"n_ctx": 16384}, "modalities": {"vision": True}}
        )
    else:
        await reply.whole(404, {"error": {"message": "File Not Found"}})


@in_loop
async def test_detection_reads_a_llama_servers_model_window_and_vision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatbot.llm import detect

    async with WireServer(fake_llama_server) as server:
        monkeypatch.setattr(detect, "OLLAMA_URL", "http://127.0.0.1:9")
        monkeypatch.setattr(detect, "LLAMA_SERVER_URL", server.url)
        found = await detect.probe()
    (spec,) = found.specs
    assert (spec.kind, spec.base_url, spec.model) == (
        "openai",
        f"{server.url}/v1",
        "Llama-3.2-11B-Vision.gguf",
    )
    assert spec.context_window == 16384 and spec.images is True


@pytest.mark.llama
@in_loop
async def test_detection_explains_a_llama_server_that_wants_a_key(
    monkeypatch: pytest.MonkeyPatch, llama_server: Any
) -> None:
    from chatbot.llm import detect

    monkeypatch.setattr(detect, "OLLAMA_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(detect, "LLAMA_SERVER_URL", llama_server.url)
    found = await detect.probe()
    assert found.specs == ()
    assert any("wants an API key" in note for note in found.notes)
