"""Isolation-matrix entries for the team and API-key routes (see tests/isolation_routes.py)."""

from __future__ import annotations

from chatbot.tenants import actions
from chatbot.tenants.models import ApiKey, Invitation, Membership, Role
from tests.isolation_routes import IdRouteCase, World, register_id_route


def _owner(world: World) -> Membership:
    return Membership.objects.get(tenant=world.acme, user=world.alice)


def _charlie(world: World) -> Membership:
    return Membership.objects.get(tenant=world.acme, user=world.charlie)


@register_id_route("dashboard:member_role")
def member_role(world: World) -> IdRouteCase:
    target = _charlie(world)
    return IdRouteCase(
        kwargs={"membership_id": target.pk},
        state=lambda: list(Membership.objects.filter(tenant=world.acme).values()),
        data={"role": Role.OWNER},
    )


@register_id_route("dashboard:member_remove")
def member_remove(world: World) -> IdRouteCase:
    target = _charlie(world)
    return IdRouteCase(
        kwargs={"membership_id": target.pk},
        state=lambda: list(Membership.objects.filter(tenant=world.acme).values()),
    )


@register_id_route("dashboard:invitation_revoke")
def invitation_revoke(world: World) -> IdRouteCase:
    invitation, _token = actions.invite_member(_owner(world), "dave@acme.test", Role.AGENT)
    return IdRouteCase(
        kwargs={"invitation_id": invitation.pk},
        state=lambda: list(Invitation.objects.filter(tenant=world.acme).values()),
    )


@register_id_route("dashboard:key_revoke")
def key_revoke(world: World) -> IdRouteCase:
    key, _secret = actions.create_api_key(_owner(world), "Acme CRM", "read_write")
    return IdRouteCase(
        kwargs={"key_id": key.pk},
        state=lambda: list(ApiKey.objects.filter(tenant=world.acme).values()),
    )
