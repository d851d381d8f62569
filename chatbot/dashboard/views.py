"""The dashboard shell's own pages: home, team, API keys, audit log, settings.

Views parse, authorise (decorators from chatbot.tenants.permissions) and call
chatbot.tenants.actions; every tenant-owned row is found through the tenant-scoped manager,
so a foreign id is a 404 exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

from allauth.core import ratelimit
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chatbot.billing.usage import tenant_usage
from chatbot.bots.models import Bot
from chatbot.installs.actions import tenant_has_sightings
from chatbot.knowledge.models import Source
from chatbot.tenants import actions
from chatbot.tenants.forms import ApiKeyForm, DeleteTenantForm, InviteForm, RoleForm
from chatbot.tenants.middleware import SESSION_KEY
from chatbot.tenants.models import ApiKey, AuditEvent, Invitation, Membership, Role
from chatbot.tenants.permissions import manager_required, member_required, owner_required

from .health import model_alerts
from .settings_sections import sections


def _url_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


@member_required
def home(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    membership = request.membership  # type: ignore[attr-defined]
    bots = list(Bot.objects.for_tenant(tenant).order_by("name")[:20])
    members = Membership.objects.for_tenant(tenant).count()
    # The plan's meters, for those who can act on them (the Usage page is theirs too).
    usage = (
        tenant_usage(tenant, bots=len(bots) if len(bots) < 20 else None, seats=members)
        if membership.can_manage
        else None
    )
    first_bot = reverse("bots:edit", kwargs={"bot_id": bots[0].pk}) if bots else None
    # Next steps for a new workspace, each ticked from what the workspace really has.
    steps = [
        {
            "done": bool(bots),
            "title": _("Create your first bot"),
            "text": _("Give it a name, a greeting and the websites it may appear on."),
            "url": reverse("bots:create"),
        },
        {
            "done": Source.objects.for_tenant(tenant).exists(),
            "title": _("Teach it about your business"),
            "text": _("Add pages, files or your sitemap so answers come from your own content."),
            "url": reverse("knowledge:list"),
        },
        {
            # The widget has opened on one of the tenant's sites (chatbot/installs).
            "done": tenant_has_sightings(tenant.pk),
            "title": _("Put it on your website"),
            "text": _("Copy one script tag into your site's pages."),
            "url": first_bot or reverse("bots:list"),
        },
        {
            "done": members > 1,
            "title": _("Invite your team"),
            "text": _("Agents answer conversations the bot hands over."),
            "url": reverse("dashboard:team"),
        },
    ]
    if not membership.can_manage:
        steps = []
    return render(
        request,
        "dashboard/home.html",
        {
            "tenant": tenant,
            "bots": bots,
            "steps": steps,
            "members": members,
            "inbox_url": _url_or_none("conversations:list"),
            "model_alerts": model_alerts(tenant, bots),
            "can_manage": membership.can_manage,
            "usage": usage,
        },
    )


# --- Team --------------------------------------------------------------------------------------


def _team_page(request: HttpRequest, invite_form: InviteForm, status: int = 200) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    membership = request.membership  # type: ignore[attr-defined]
    members = Membership.objects.for_tenant(tenant).select_related("user").order_by("created_at")
    invitations = (
        Invitation.objects.for_tenant(tenant)
        .filter(accepted_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at")
    )
    roles = Role.choices if membership.role == Role.OWNER else Role.choices[1:]
    return render(
        request,
        "dashboard/team.html",
        {
            "members": members,
            "invitations": invitations,
            "invite_form": invite_form,
            "roles": roles,
            "me": membership,
        },
        status=status,
    )


def _may_send_invitation(request: HttpRequest, email: str) -> bool:
    """Each invitation is an email to any address: limited per inviting member, per workspace
    and per invited address (ACCOUNT_RATE_LIMITS "invite", "invite_address")."""
    workspace = str(request.membership.tenant_id)  # type: ignore[attr-defined]
    # The address first: a refused re-invitation does not use up the member's allowance.
    return ratelimit.consume(
        request, action="invite_address", key=email.strip().lower()
    ) and ratelimit.consume(request, action="invite", key=workspace)


@manager_required
def team(request: HttpRequest) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    can_grant_owner = membership.role == Role.OWNER
    form = InviteForm(request.POST or None, can_grant_owner=can_grant_owner)
    if request.method == "POST":
        if form.is_valid() and not _may_send_invitation(request, form.cleaned_data["email"]):
            form.add_error(None, "Too many invitations for now; please try again later.")
            return _team_page(request, form, status=429)
        if form.is_valid():
            try:
                actions.invite_member(
                    membership, form.cleaned_data["email"], form.cleaned_data["role"]
                )
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request, f"Invitation sent to {form.cleaned_data['email']}. It lasts 7 days."
                )
                return redirect("dashboard:team")
        return _team_page(request, form, status=400)
    return _team_page(request, form)


@manager_required
@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    target = Membership.objects.get_for_tenant_or_404(tenant, pk=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: owner, admin or agent.")
        return redirect("dashboard:team")
    try:
        actions.change_role(request.membership, target, form.cleaned_data["role"])  # type: ignore[attr-defined]
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{target.user.email} is now {form.cleaned_data['role']}.")
    return redirect("dashboard:team")


@manager_required
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    target = Membership.objects.get_for_tenant_or_404(tenant, pk=membership_id)
    leaving = target.user_id == request.user.pk
    try:
        actions.remove_member(request.membership, target)  # type: ignore[attr-defined]
    except actions.ActionError as exc:
        messages.error(request, str(exc))
        return redirect("dashboard:team")
    if leaving:
        request.session.pop(SESSION_KEY, None)
        messages.success(request, f"You left {tenant.name}.")
        return redirect("dashboard:home")
    messages.success(request, f"{target.user.email} no longer has access to {tenant.name}.")
    return redirect("dashboard:team")


@manager_required
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    invitation = Invitation.objects.get_for_tenant_or_404(tenant, pk=invitation_id)
    try:
        actions.revoke_invitation(request.membership, invitation)  # type: ignore[attr-defined]
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The invitation to {invitation.email} no longer works.")
    return redirect("dashboard:team")


# --- API keys ----------------------------------------------------------------------------------


@manager_required
def keys(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    form = ApiKeyForm(request.POST or None)
    new_secret = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _key, new_secret = actions.create_api_key(
                    request.membership,  # type: ignore[attr-defined]
                    form.cleaned_data["name"],
                    form.cleaned_data["scope"],
                )
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
                status = 400
            else:
                form = ApiKeyForm()
        else:
            status = 400
    api_keys = (
        ApiKey.objects.for_tenant(tenant).select_related("created_by").order_by("-created_at")
    )
    response = render(
        request,
        "dashboard/keys.html",
        {"form": form, "api_keys": api_keys, "new_secret": new_secret},
        status=status,
    )
    if new_secret:
        # The secret is in this page only: keep it out of every cache.
        response["Cache-Control"] = "no-store"
    return response


@manager_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = ApiKey.objects.get_for_tenant_or_404(request.tenant, pk=key_id)  # type: ignore[attr-defined]
    try:
        actions.revoke_api_key(request.membership, key)  # type: ignore[attr-defined]
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{key.name} ({key.prefix}…) is revoked; it stops working now.")
    return redirect("dashboard:keys")


# --- Audit log ---------------------------------------------------------------------------------


@manager_required
def audit(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    events = AuditEvent.objects.for_tenant(tenant).select_related("actor")
    query = request.GET.get("q", "").strip()[:100]
    if query:
        events = events.filter(
            Q(action__icontains=query)
            | Q(target__icontains=query)
            | Q(actor_email__icontains=query)
        )
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "dashboard/audit.html", {"page": page, "query": query})


# --- Settings ----------------------------------------------------------------------------------


@manager_required
def settings_page(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    posted = request.POST.get("section") if request.method == "POST" else None
    forms: list[dict[str, Any]] = []
    status = 200
    for section in sections():
        data = request.POST if section.key == posted else None
        form = section.form_class(data, tenant=tenant, prefix=section.key)
        if data is not None:
            if form.is_valid():
                changed = form.save_section()
                actions.update_tenant_fields(tenant, request.user, section.key, changed)  # type: ignore[arg-type]
                messages.success(request, f"{section.title} saved.")
                return redirect("dashboard:settings")
            status = 400
        forms.append({"section": section, "form": form})
    return render(
        request,
        "dashboard/settings.html",
        {"forms": forms, "is_owner": request.membership.role == Role.OWNER},  # type: ignore[attr-defined]
        status=status,
    )


@owner_required
def delete_workspace(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    form = DeleteTenantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.delete_tenant(tenant, request.user, form.cleaned_data["confirmation"])  # type: ignore[arg-type]
        except actions.ActionError as exc:
            form.add_error("confirmation", str(exc))
        else:
            request.session.pop(SESSION_KEY, None)
            messages.success(request, f"{tenant.name} and all of its data are deleted.")
            return redirect("dashboard:home")
    return render(
        request,
        "dashboard/delete_workspace.html",
        {"form": form, "tenant": tenant},
        status=400 if form.errors else 200,
    )
