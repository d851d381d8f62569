"""The team (members, invitations) and usage in the REST API. Team changes need an owner's or
an admin's key and go through chatbot.tenants.actions, like the Team page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from django.db.models import Count, Q, Sum
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema, Status

from chatbot.api.auth import require_manager, require_write
from chatbot.api.errors import ApiError
from chatbot.api.schemas import Limit, Text, decode_or_404, page_by_pk, with_errors
from chatbot.lib import ids

from . import actions
from .models import Invitation, Membership

router = Router(tags=["team"])


class MemberOut(Schema):
    id: str
    email: str
    name: str
    role: str
    joined_at: datetime


class MemberPage(Schema):
    data: list[MemberOut]
    next_cursor: str | None


class RoleIn(Schema):
    role: Literal["owner", "admin", "agent"]


class InvitationIn(Schema):
    email: Text
    role: Literal["owner", "admin", "agent"] = "agent"


class InvitationOut(Schema):
    id: str
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    accepted: bool


class InvitationPage(Schema):
    data: list[InvitationOut]
    next_cursor: str | None


class UsageOut(Schema):
    since: datetime
    days: int
    conversations: int
    visitor_messages: int
    replies: int
    tokens_in: int
    tokens_out: int


def _tenant(request: HttpRequest) -> Any:
    return request.tenant  # type: ignore[attr-defined]


def _acting(request: HttpRequest) -> Membership:
    key = request.auth  # type: ignore[attr-defined]
    return Membership.objects.select_related("tenant", "user").get(
        tenant=_tenant(request), user_id=key.created_by_id
    )


def member_out(membership: Membership) -> dict[str, Any]:
    return {
        "id": ids.encode("usr", membership.user_id),
        "email": membership.user.email,
        "name": membership.user.name,
        "role": membership.role,
        "joined_at": membership.created_at,
    }


def _member(request: HttpRequest, member_id: str) -> Membership:
    pk = decode_or_404("usr", member_id, "member")
    found = (
        Membership.objects.for_tenant(_tenant(request))
        .select_related("user")
        .filter(user_id=pk)
        .first()
    )
    if found is None:
        raise ApiError(404, "No such member.")
    return found


def _refused(exc: actions.ActionError) -> ApiError:
    return ApiError(409, str(exc), "refused")


@router.get(
    "/members", response=with_errors(MemberPage), url_name="members", summary="List members"
)
def list_members(request: HttpRequest, cursor: Text | None = None, limit: Limit = 25) -> Any:
    rows, next_cursor = page_by_pk(
        Membership.objects.for_tenant(_tenant(request)).select_related("user"),
        cursor,
        limit,
        "mbr",
    )
    return {"data": [member_out(m) for m in rows], "next_cursor": next_cursor}


@router.patch(
    "/members/{member_id}",
    response=with_errors(MemberOut),
    url_name="member",
    summary="Change a member's role (owners and admins; only owners make owners)",
)
def change_role(request: HttpRequest, member_id: str, payload: RoleIn) -> Any:
    target = _member(request, member_id)
    require_write(request)
    require_manager(request)
    try:
        changed = actions.change_role(_acting(request), target, payload.role)
    except actions.ActionError as exc:
        raise _refused(exc) from None
    changed.user = target.user
    return member_out(changed)


@router.delete(
    "/members/{member_id}",
    response=with_errors(None, 204),
    url_name="member",
    summary="Remove a member from the workspace",
)
def remove_member(request: HttpRequest, member_id: str) -> Any:
    target = _member(request, member_id)
    require_write(request)
    require_manager(request)
    try:
        actions.remove_member(_acting(request), target)
    except actions.ActionError as exc:
        raise _refused(exc) from None
    return Status(204, None)


def invitation_out(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": ids.encode("inv", invitation.pk),
        "email": invitation.email,
        "role": invitation.role,
        "created_at": invitation.created_at,
        "expires_at": invitation.expires_at,
        "accepted": invitation.accepted_at is not None,
    }


@router.get(
    "/invitations",
    response=with_errors(InvitationPage),
    url_name="invitations",
    summary="List invitations (owners and admins)",
)
def list_invitations(request: HttpRequest, cursor: Text | None = None, limit: Limit = 25) -> Any:
    require_manager(request)
    rows, next_cursor = page_by_pk(
        Invitation.objects.for_tenant(_tenant(request)), cursor, limit, "inv"
    )
    return {"data": [invitation_out(i) for i in rows], "next_cursor": next_cursor}


@router.post(
    "/invitations",
    response=with_errors(InvitationOut, 201),
    url_name="invitations",
    summary="Invite someone by email (the link is emailed to them, never returned)",
)
def invite(request: HttpRequest, payload: InvitationIn) -> Any:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    require_write(request)
    require_manager(request)
    try:
        validate_email(payload.email.strip())
    except ValidationError:
        raise ApiError(422, "email: enter a valid email address.", "invalid") from None
    try:
        invitation, _token = actions.invite_member(_acting(request), payload.email, payload.role)
    except actions.ActionError as exc:
        raise _refused(exc) from None
    return Status(201, invitation_out(invitation))


@router.delete(
    "/invitations/{invitation_id}",
    response=with_errors(None, 204),
    url_name="invitation",
    summary="Revoke a pending invitation",
)
def revoke_invitation(request: HttpRequest, invitation_id: str) -> Any:
    pk = decode_or_404("inv", invitation_id, "invitation")
    invitation = Invitation.objects.for_tenant(_tenant(request)).filter(pk=pk).first()
    if invitation is None:
        raise ApiError(404, "No such invitation.")
    require_write(request)
    require_manager(request)
    try:
        actions.revoke_invitation(_acting(request), invitation)
    except actions.ActionError as exc:
        raise _refused(exc) from None
    return Status(204, None)


@router.get(
    "/usage",
    response=with_errors(UsageOut),
    url_name="usage",
    summary="Conversations, messages and model tokens over the last `days` days",
    tags=["usage"],
)
def usage(request: HttpRequest, days: int = 30) -> Any:
    from chatbot.conversations.models import Conversation, Message

    if not 1 <= days <= 366:
        raise ApiError(422, "days: between 1 and 366.", "invalid")
    since = timezone.now() - timedelta(days=days)
    tenant = _tenant(request)
    messages = Message.objects.for_tenant(tenant).filter(created_at__gte=since)
    totals = messages.aggregate(
        visitor_messages=Count("pk", filter=Q(role="visitor")),
        replies=Count("pk", filter=Q(role="assistant")),
        tokens_in=Sum("tokens_in"),
        tokens_out=Sum("tokens_out"),
    )
    conversations = Conversation.objects.for_tenant(tenant).filter(created_at__gte=since).count()
    return {
        "since": since,
        "days": days,
        "conversations": conversations,
        "visitor_messages": totals["visitor_messages"] or 0,
        "replies": totals["replies"] or 0,
        "tokens_in": totals["tokens_in"] or 0,
        "tokens_out": totals["tokens_out"] or 0,
    }
