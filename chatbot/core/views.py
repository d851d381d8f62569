import os

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "landing.html")


def demo(request: HttpRequest) -> HttpResponse:
    """`/demo`: the demo host page, which `manage.py serve --demo-port` serves on its own
    origin (set in PARLEY_DEMO_URL at start-up)."""
    url = os.environ.get("PARLEY_DEMO_URL")
    if not url:
        raise Http404("The demo host page runs with `make run` (serve --demo-port).")
    return redirect(url)
