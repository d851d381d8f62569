"""Isolation-matrix entries for the webhook routes (tests/isolation_routes.py)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from chatbot.webhooks.models import Delivery, Endpoint
from tests.isolation_routes import IdRouteCase, World, register_id_route


def _endpoint(world: World) -> Endpoint:
    return Endpoint.objects.create(
        tenant=world.acme, url="https://hooks.acme.test/in", events=["message.created"], secret=""
    )


def _state(world: World) -> Any:
    return lambda: [
        list(Endpoint.objects.filter(tenant=world.acme).values()),
        list(Delivery.objects.filter(endpoint__tenant=world.acme).values()),
    ]


def _case(world: World, methods: tuple[str, ...], **data: Any) -> IdRouteCase:
    endpoint = _endpoint(world)
    return IdRouteCase(
        kwargs={"webhook_id": endpoint.public_id}, state=_state(world), data=data, methods=methods
    )


@register_id_route("api:v1:webhook")
def webhook(world: World) -> IdRouteCase:
    return _case(world, ("get", "patch", "delete"), url="https://evil.example/x")


@register_id_route("api:v1:webhook_rotate_secret")
def webhook_rotate(world: World) -> IdRouteCase:
    return _case(world, ("post",))


@register_id_route("api:v1:webhook_deliveries")
def webhook_deliveries(world: World) -> IdRouteCase:
    return _case(world, ("get",))


@register_id_route("api:v1:webhook_delivery_send_again")
def webhook_send_again(world: World) -> IdRouteCase:
    endpoint = _endpoint(world)
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        event_id="evt_x",
        event_type="message.created",
        payload={},
        status="failed",
        next_attempt_at=timezone.now(),
    )
    return IdRouteCase(
        kwargs={"webhook_id": endpoint.public_id, "delivery_id": delivery.public_id},
        state=_state(world),
        methods=("post",),
    )


# --- Dashboard pages --------------------------------------------------------------------------


def _page_case(world: World) -> IdRouteCase:
    endpoint = _endpoint(world)
    return IdRouteCase(kwargs={"webhook_id": endpoint.public_id}, state=_state(world))


for _name in ("webhooks:detail", "webhooks:toggle", "webhooks:rotate", "webhooks:delete"):
    register_id_route(_name)(_page_case)


@register_id_route("webhooks:send_again")
def page_send_again(world: World) -> IdRouteCase:
    return webhook_send_again(world)
