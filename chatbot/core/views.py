import hmac
import ipaddress
import os

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt

from . import metrics as metrics_registry

# Headers a reverse proxy adds. Their presence means the request did not come straight from a
# local scraper, whatever the peer address says (uvicorn rewrites it from X-Forwarded-For).
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "landing.html")


def demo(request: HttpRequest) -> HttpResponse:
    """`/demo`: the demo host page, which `manage.py serve --demo-port` serves on its own
    origin (set in PARLEY_DEMO_URL at start-up)."""
    url = os.environ.get("PARLEY_DEMO_URL")
    if not url:
        raise Http404("The demo host page runs with `make run` (serve --demo-port).")
    return redirect(url)


def metrics_allowed(request: HttpRequest) -> bool:
    """With METRICS_TOKEN: the bearer token (compared in constant time). Without: only a
    request made straight to this process from loopback, never one through a proxy."""
    if settings.METRICS_TOKEN:
        sent = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(sent, f"Bearer {settings.METRICS_TOKEN}".encode())
    if any(header in request.META for header in _PROXY_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False  # a Unix socket: no address to judge
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
        peer = peer.ipv4_mapped
    return peer.is_loopback


# Exempt from CSRF so that a refused POST gets the same 404 as a missing page, not a 403 that
# would give the route away.
@csrf_exempt
async def metrics(request: HttpRequest) -> HttpResponse:
    """`/metrics` in Prometheus' text format, for this process (chatbot/core/metrics.py).

    Async, so that a scrape never queues behind the thread that runs database calls."""
    if not metrics_allowed(request):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    return HttpResponse(
        metrics_registry.exposition(),
        content_type=metrics_registry.CONTENT_TYPE,
        headers={"Cache-Control": "no-store"},
    )
