"""Isolation-matrix entries for the model endpoint routes (see tests/isolation_routes.py)."""

from __future__ import annotations

from chatbot.llm.models import Kind, ModelEndpoint, Source
from tests.isolation_routes import IdRouteCase, World, register_id_route


@register_id_route("llm:endpoint_delete")
def endpoint_delete(world: World) -> IdRouteCase:
    endpoint = ModelEndpoint.objects.create(
        tenant=world.acme,
        name="Acme vLLM",
        kind=Kind.OPENAI,
        base_url="https://llm.acme.example/v1",
        model="llama-3.1-8b",
        source=Source.TENANT,
    )
    return IdRouteCase(
        kwargs={"endpoint_id": endpoint.pk},
        state=lambda: list(ModelEndpoint.objects.filter(tenant=world.acme).values()),
    )


@register_id_route("llm:endpoint_check")
def endpoint_check(world: World) -> IdRouteCase:
    # An unroutable address: alice's check fails fast, bob must not even reach it.
    endpoint = ModelEndpoint.objects.create(
        tenant=world.acme,
        name="Acme check",
        kind=Kind.OPENAI,
        base_url="http://127.0.0.1:9/v1",
        model="llama-3.1-8b",
        source=Source.TENANT,
    )
    return IdRouteCase(
        kwargs={"endpoint_id": endpoint.pk},
        state=lambda: list(ModelEndpoint.objects.filter(tenant=world.acme).values()),
    )
