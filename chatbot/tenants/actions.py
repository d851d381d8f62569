"""Every write to tenants, members, invitations and API keys goes through here.

Views parse and authorise; these functions check the business rules (raising `ActionError`
with a message a person can act on), write, and record the audit event in the same
transaction.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from chatbot.core.emails import Email, send_branded
from chatbot.lib import revocation

from . import audit
from .models import (
    ApiKey,
    ApiScope,
    AuditEvent,
    Invitation,
    Membership,
    Role,
    Tenant,
    User,
    hash_secret,
)

INVITATION_LIFETIME = timedelta(days=7)
API_KEY_PREFIX = "prl_"
PREFIX_LENGTH = len(API_KEY_PREFIX) + 8


class ActionError(Exception):
    """A refused action; the message is shown to the person as is."""


# --- Tenants -----------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:40] or "workspace"
    slug = base
    while Tenant.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


@transaction.atomic
def create_tenant(name: str, owner: User) -> Tenant:
    """A new workspace with `owner` as its first owner."""
    name = name.strip()
    if not name:
        raise ActionError("Give the workspace a name.")
    tenant = Tenant.objects.create(name=name, slug=_unique_slug(name))
    Membership.objects.create(tenant=tenant, user=owner, role=Role.OWNER)
    audit.record(tenant, owner, "tenant.created", target=tenant.name)
    return tenant


@transaction.atomic
def delete_tenant(tenant: Tenant, actor: User, confirmation: str) -> None:
    """Delete the workspace and, through CASCADE, every row it owns."""
    if confirmation.strip() != tenant.name:
        raise ActionError(f"Type the workspace name exactly ({tenant.name}) to confirm.")
    tenant_id, tenant_name = tenant.pk, tenant.name
    tenant.delete()
    revocation.announce([revocation.tenant_group(tenant_id)], "tenant.deleted")
    # Recorded after the delete and without a tenant: this one line is all that remains.
    audit.record(None, actor, "tenant.deleted", target=tenant_name, tenant_id=tenant_id)


def update_tenant_fields(tenant: Tenant, actor: User, section: str, changed: list[str]) -> None:
    if changed:
        audit.record(tenant, actor, "settings.updated", target=section, fields=changed)


# --- Members and invitations -------------------------------------------------------------------


def _check_can_assign(actor: Membership, role: str) -> None:
    if role not in Role.values:
        raise ActionError("Choose a role: owner, admin or agent.")
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise ActionError("Only an owner can make someone an owner.")


def invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("tenants:invitation", args=[token])


@transaction.atomic
def invite_member(actor: Membership, email: str, role: str) -> tuple[Invitation, str]:
    """Create an invitation and email its link. Returns it with the one-time token."""
    tenant = actor.tenant
    email = email.strip().lower()
    _check_can_assign(actor, role)
    from chatbot.billing.actions import QuotaError, check_can_add_seat

    try:
        check_can_add_seat(tenant)
    except QuotaError as exc:
        raise ActionError(str(exc)) from None
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise ActionError(f"{email} is already a member of {tenant.name}.")
    # A new invitation replaces any earlier pending one for the same address.
    Invitation.objects.for_tenant(tenant).filter(
        email__iexact=email, accepted_at__isnull=True
    ).delete()
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=hash_secret(token),
        invited_by=actor.user,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    audit.record(tenant, actor.user, "member.invited", target=email, role=role)
    link = invitation_url(token)
    inviter = actor.user.display_name
    message = Email(
        subject=_("%(inviter)s invited you to %(tenant)s on Parley")
        % {"inviter": inviter, "tenant": tenant.name},
        heading=_("Join %(tenant)s on Parley") % {"tenant": tenant.name},
        paragraphs=[
            _("%(inviter)s (%(email)s) invited you to join the %(tenant)s workspace as %(role)s.")
            % {
                "inviter": inviter,
                "email": actor.user.email,
                "tenant": tenant.name,
                "role": Role(role).label.lower(),
            }
        ],
        action_label=_("Accept the invitation"),
        action_url=link,
        tenant_name=tenant.name,
        footer=[
            _("The link works for 7 days."),
            _("If you did not expect this email you can ignore it."),
        ],
    )
    transaction.on_commit(lambda: send_branded(message, [email]))
    return invitation, token


def find_invitation(token: str) -> Invitation | None:
    """The invitation behind a link's token, expired or not (None when unknown)."""
    if not token or len(token) > 100:
        return None
    return (
        Invitation.objects.select_related("tenant", "invited_by")
        .filter(token_hash=hash_secret(token))
        .first()
    )


def _verified_emails(user: User) -> set[str]:
    return {
        address.lower()
        for address in EmailAddress.objects.filter(user=user, verified=True).values_list(
            "email", flat=True
        )
    }


@transaction.atomic
def accept_invitation(invitation: Invitation, user: User) -> Membership:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise ActionError("This invitation has already been used.")
    if invitation.is_expired:
        raise ActionError("This invitation has expired. Ask for a new one.")
    if invitation.email.lower() not in _verified_emails(user):
        raise ActionError(
            f"This invitation is for {invitation.email}. Log in with that address "
            "(and verify it) to accept it."
        )
    membership = Membership.objects.filter(tenant=invitation.tenant, user=user).first()
    if membership is None:
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    tenant=invitation.tenant, user=user, role=invitation.role
                )
        except IntegrityError:  # accepted twice at the same moment
            membership = Membership.objects.get(tenant=invitation.tenant, user=user)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit.record(invitation.tenant, user, "member.joined", target=user.email, role=membership.role)
    return membership


@transaction.atomic
def revoke_invitation(actor: Membership, invitation: Invitation) -> None:
    if invitation.accepted_at is not None:
        raise ActionError("This invitation has already been accepted.")
    invitation.delete()
    audit.record(actor.tenant, actor.user, "invitation.revoked", target=invitation.email)


def _owners(tenant: Tenant) -> int:
    return Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).count()


@transaction.atomic
def change_role(actor: Membership, membership: Membership, role: str) -> Membership:
    _check_can_assign(actor, role)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == role:
        return membership
    if membership.role == Role.OWNER:
        if actor.role != Role.OWNER:
            raise ActionError("Only an owner can change another owner's role.")
        if _owners(actor.tenant) == 1:
            raise ActionError("A workspace needs an owner: make someone else owner first.")
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    revocation.announce([revocation.user_group(membership.user_id)], "member.role_changed")
    audit.record(
        actor.tenant,
        actor.user,
        "member.role_changed",
        target=membership.user.email,
        old=old,
        new=role,
    )
    return membership


@transaction.atomic
def remove_member(actor: Membership, membership: Membership) -> None:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == Role.OWNER:
        if actor.role != Role.OWNER:
            raise ActionError("Only an owner can remove an owner.")
        if _owners(actor.tenant) == 1:
            raise ActionError(
                "You are the only owner. Make someone else owner first, or delete the workspace."
            )
    email = membership.user.email
    membership.delete()
    revocation.announce([revocation.user_group(membership.user_id)], "member.removed")
    audit.record(actor.tenant, actor.user, "member.removed", target=email)


# --- API keys ----------------------------------------------------------------------------------


def _new_prefix() -> str:
    while True:
        prefix = API_KEY_PREFIX + secrets.token_hex(4)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            return prefix


@transaction.atomic
def create_api_key(actor: Membership, name: str, scope: str) -> tuple[ApiKey, str]:
    """A new key; the returned full secret is shown once and never stored."""
    name = name.strip()
    if not name:
        raise ActionError("Name the key after what will use it (e.g. “CRM sync”).")
    if scope not in ApiScope.values:
        raise ActionError("Choose a scope: read or read-write.")
    prefix = _new_prefix()
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        tenant=actor.tenant,
        name=name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scope=scope,
        created_by=actor.user,
    )
    audit.record(actor.tenant, actor.user, "key.created", target=f"{name} ({prefix})", scope=scope)
    return key, secret


@transaction.atomic
def revoke_api_key(actor: Membership, key: ApiKey) -> None:
    if key.revoked_at is not None:
        raise ActionError("This key is already revoked.")
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit.record(actor.tenant, actor.user, "key.revoked", target=f"{key.name} ({key.prefix})")


# How stale `last_used_at` may get: one write per key per minute, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate_api_key(secret: str) -> ApiKey | None:
    """The active key for a presented secret, or None. Constant-time on the hash."""
    # "prl_" + 8 hex characters, "_", then the secret part (which may itself hold "_").
    prefix = secret[:PREFIX_LENGTH]
    if (
        len(secret) > 200
        or not prefix.startswith(API_KEY_PREFIX)
        or secret[PREFIX_LENGTH : PREFIX_LENGTH + 1] != "_"
    ):
        return None
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
    if key is None or not secrets.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    if key.revoked_at is not None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def recent_events(tenant: Tenant, **filters: Any) -> Any:
    return AuditEvent.objects.for_tenant(tenant).filter(**filters).select_related("actor")


# --- Log-out -----------------------------------------------------------------------------------


def announce_log_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """`user_logged_out` receiver: the user's open dashboard sockets check their session
    again (the one logged out is gone, so its sockets close; other browsers stay)."""
    if user is not None and user.pk is not None:
        session = getattr(request, "session", None)
        revocation.announce(
            [revocation.user_group(user.pk)],
            "user.logged_out",
            ended_session=getattr(session, "session_key", None),
        )
