"""The dashboard's role decorator for knowledge pages.

Temporary bridge: the tenants app's `manager_required` is used once it is installed; until
then an equivalent local check (log-in required, owners and admins only) stands in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseForbidden

try:
    from chatbot.tenants.permissions import manager_required
except ImportError:

    def manager_required(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = getattr(request, "membership", None)
            if membership is None or not membership.can_manage:
                return HttpResponseForbidden("Only owners and admins manage knowledge.")
            return view(request, *args, **kwargs)

        return wrapper


__all__ = ["manager_required"]
