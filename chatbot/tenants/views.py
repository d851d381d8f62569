"""Workspace-level pages outside the dashboard shell: invitations, switching, creating."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from chatbot.lib.ids import parse_id

from . import actions
from .forms import PENDING_INVITATION_KEY, WorkspaceForm
from .middleware import SESSION_KEY
from .models import Membership, User


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The page an invitation email links to. Public: it explains itself to anyone."""
    invite = actions.find_invitation(token)
    if invite is None:
        raise Http404("This invitation link is not valid.")
    error = ""
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            membership = actions.accept_invitation(invite, request.user)
        except actions.ActionError as exc:
            error = str(exc)
        else:
            request.session.pop(PENDING_INVITATION_KEY, None)
            request.session[SESSION_KEY] = membership.tenant_id
            messages.success(request, f"Welcome to {membership.tenant.name}.")
            return redirect("dashboard:home")
    elif not request.user.is_authenticated and invite.is_pending:
        # Remembered so that sign-up makes the workspace name optional and log-in comes back.
        request.session[PENDING_INVITATION_KEY] = token
    response = render(
        request,
        "tenants/invitation.html",
        {"invite": invite, "token": token, "error": error},
        status=400 if error else 200,
    )
    # The token is in this page's URL: never send it on as a Referer.
    response["Referrer-Policy"] = "no-referrer"
    return response


@login_required
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    """Make another of the user's workspaces the active one (the id comes in the body)."""
    tenant_id = parse_id(request.POST.get("tenant", ""))
    user = request.user
    membership = None
    if tenant_id is not None and isinstance(user, User):
        membership = Membership.objects.filter(user=user, tenant_id=tenant_id).first()
    if membership is None:
        raise Http404("No such workspace.")
    request.session[SESSION_KEY] = membership.tenant_id
    return redirect("dashboard:home")


@login_required
def create(request: HttpRequest) -> HttpResponse:
    """A new workspace for a logged-in user (owners of one may start another)."""
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        tenant = actions.create_tenant(form.cleaned_data["name"], request.user)  # type: ignore[arg-type]
        request.session[SESSION_KEY] = tenant.pk
        messages.success(request, f"{tenant.name} is ready.")
        return redirect("dashboard:home")
    return render(request, "tenants/create.html", {"form": form})
