"""CSRF over the whole route inventory: a cross-site POST carrying a member's cookie is refused
everywhere, except on the few routes that trust no cookie at all (listed here, each with why).
A new CSRF-exempt route that is not on the list fails the suite."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.test import Client

from chatbot.bots.models import Bot
from chatbot.tenants.models import AuditEvent, User
from tests.routes import Route, iter_routes

ClientFor = Callable[[User], Client]
EVIL = "https://evil.example"
SITE = "http://127.0.0.1:8000"

# Routes that take no cookie-authenticated write: bearer-token or signed-capability only.
CSRF_EXEMPT = {
    "widget:session": "widget sites send no cookies; a preview session checks CSRF itself",
    "widget:send": "visitor bearer token",
    "widget:events": "visitor bearer token",
    "widget:upload": "visitor bearer token",
    "metrics": "read-only GET; a POST gets the missing page's 404 (the route stays hidden)",
}
# The REST API (django-ninja): API keys in the Authorization header, cookies refused.
CSRF_EXEMPT_PREFIXES = ("api/v1/",)


def _exempt(route: Route) -> bool:
    return route.name in CSRF_EXEMPT or route.route.startswith(CSRF_EXEMPT_PREFIXES)


def csrf_urls() -> list[str]:
    """A URL per route; Django's admin (many unnamed patterns) is tried through a few of its own."""
    urls = [
        r.sample_url() for r in iter_routes() if not _exempt(r) and not r.route.startswith("admin/")
    ]
    return [*urls, "/admin/login/", "/admin/tenants/tenant/add/", "/admin/tenants/tenant/1/change/"]


def logged_in(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_every_csrf_exempt_view_is_on_the_list() -> None:
    exempt = {
        r.name or r.route
        for r in iter_routes()
        if getattr(r.callback, "csrf_exempt", False) and not _exempt(r)
    }
    assert exempt == set(), f"CSRF-exempt routes missing from tests/tenants/test_csrf.py: {exempt}"
    stale = set(CSRF_EXEMPT) - {r.name for r in iter_routes()}
    assert stale == set()


@pytest.mark.django_db
@pytest.mark.parametrize("url", csrf_urls())
def test_a_cross_site_post_with_the_members_cookie_is_refused(url: str, alice: User) -> None:
    client = logged_in(alice)
    events = AuditEvent.objects.count()
    for headers in ({}, {"HTTP_ORIGIN": EVIL}, {"HTTP_ORIGIN": SITE}):
        # No token (a forged form on another site): refused before the view runs.
        response = client.post(url, {"name": "x", "email": "x@x.test"}, **headers)
        assert response.status_code == 403, (url, headers, response.status_code)
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_the_same_post_with_the_token_goes_through(alice: User) -> None:
    client = logged_in(alice)
    token = client.get("/dashboard/keys/").cookies["csrftoken"].value
    response = client.post(
        "/dashboard/keys/", {"name": "CRM", "scope": "read"}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_a_preview_session_needs_the_csrf_token_as_well_as_the_managers_cookie(
    alice: User, acme_bot_for_csrf: Bot
) -> None:
    client = logged_in(alice)
    frame = client.get(f"/widget/frame/{acme_bot_for_csrf.public_key}?preview=1")
    assert frame.status_code == 200
    config = frame.content.decode().split('id="parley-config">', 1)[1].split("</script>", 1)[0]
    token = json.loads(config)["csrf"]
    assert token
    body = json.dumps({"bot": acme_bot_for_csrf.public_key, "origin": SITE})

    def session(**headers: str) -> int:
        return client.post(
            "/widget/api/session",
            body,
            content_type="application/json",
            HTTP_ORIGIN=SITE,
            **headers,
        ).status_code

    # Without the token the cookie is not trusted: no preview, and the site is not allowed.
    assert session() == 403
    assert session(HTTP_X_CSRFTOKEN="x" * 32) == 403
    assert session(HTTP_X_CSRFTOKEN=token) == 200


@pytest.fixture
def acme_bot_for_csrf(alice: User) -> Bot:
    from chatbot.tenants.models import Tenant

    return Bot.objects.create(
        tenant=Tenant.objects.get(name="Acme"),
        name="Preview",
        allowed_origins=["https://shop.test"],
    )
