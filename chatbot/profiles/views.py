"""The profile page (/accounts/profile/) and the public avatar images."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from chatbot.conversations.images import ImageRejected

from . import actions
from .forms import ProfileForm
from .models import Profile

MAX_AVATAR_UPLOAD = 10 * 1024 * 1024


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    current = actions.profile_for(user)  # type: ignore[arg-type]
    form = ProfileForm(
        request.POST or None,
        request.FILES or None,
        instance=current,
        initial={"name": user.name},  # type: ignore[union-attr]
    )
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("avatar_file")
        try:
            if upload is not None and upload.size > MAX_AVATAR_UPLOAD:
                raise ImageRejected("too_large", _("Pictures are at most 10 MB."))
            saved = actions.update_profile(
                user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                avatar=upload.read() if upload is not None else None,
                remove_avatar=form.cleaned_data["remove_avatar"],
                language=form.cleaned_data["language"],
                notify_browser=form.cleaned_data["notify_browser"],
                notify_sound=form.cleaned_data["notify_sound"],
            )
        except ImageRejected as exc:
            form.add_error("avatar_file", exc.message)
        else:
            translation.activate(saved.language or translation.get_language_from_request(request))
            messages.success(request, _("Your profile is saved."))
            return redirect("profiles:profile")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "profiles/profile.html",
        {"form": form, "avatar": actions.avatar_url(user.pk)},
        status=status,
    )


@require_GET
def avatar(request: HttpRequest, avatar_id: str) -> HttpResponse:
    """A member's avatar, public (visitors' frames show it); the id changes on every upload."""
    data = (
        Profile.objects.filter(avatar_id=avatar_id)
        .exclude(avatar_id="")
        .values_list("avatar", flat=True)
        .first()
    )
    if not data:
        raise Http404("No such avatar.")
    response = HttpResponse(bytes(data), content_type="image/png")
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    # The widget's frame (platform origin) and dashboard pages load it.
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
