"""The llm routes that take an id, for the cross-tenant matrix."""

from __future__ import annotations

from chatbot.llm.models import ModelEndpoint, Source
from tests.isolation_routes import IdRouteCase, World, register_id_route


@register_id_route("llm:endpoint_delete")
def endpoint_delete(world: World) -> IdRouteCase:
    endpoint = ModelEndpoint.objects.create(
        tenant=world.acme,
        name="acme-own",
        kind="openai",
        base_url="https://llm.acme.example/v1",
        model="llama",
        source=Source.TENANT,
    )
    return IdRouteCase(
        kwargs={"endpoint_id": endpoint.pk},
        state=lambda: list(ModelEndpoint.objects.filter(pk=endpoint.pk).values()),
    )
