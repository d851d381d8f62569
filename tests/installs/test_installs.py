"""Installation help: where the widget was seen, "check my site", the guides."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import markupsafe
import pytest
from django.test import override_settings

from chatbot.bots.actions import create_bot
from chatbot.bots.models import Bot
from chatbot.bots.snippets import embed_snippet
from chatbot.installs import actions
from chatbot.installs.models import WidgetSighting
from chatbot.tenants.models import Tenant, User

pytestmark = pytest.mark.django_db
PLATFORM = "https://parley.example"


@dataclass
class Site:
    """A host site whose pages carry the headers a test gives them."""

    server: ThreadingHTTPServer
    pages: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def site() -> Iterator[Site]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, headers = holder.pages.get(self.path, ("", {}))
            if not body:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder = Site(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with override_settings(OUTBOUND_ALLOW_CIDRS=["127.0.0.0/8"], SITE_URL=PLATFORM):
        yield holder
    server.shutdown()
    server.server_close()


@pytest.fixture
def shop_bot(acme: Tenant, alice: User, site: Site) -> Bot:
    return create_bot(acme, alice, name="Shop helper", allowed_origins=[site.origin])


def page_with(snippet: str, head: str = "") -> str:
    return f"<!doctype html><html><head>{head}</head><body><h1>Shop</h1>{snippet}</body></html>"


def titles(report: actions.SiteReport) -> list[str]:
    return [problem.title for problem in report.problems]


def test_a_page_with_the_snippet_and_no_policy_is_fine(site: Site, shop_bot: Bot) -> None:
    site.pages["/"] = (page_with(embed_snippet(shop_bot)), {})
    report = actions.check_site(shop_bot, site.origin + "/")
    assert report.ok, report
    assert report.snippet_found and report.origin_allowed


def test_a_missing_snippet_and_a_site_not_allowed_are_explained(
    site: Site, acme: Tenant, alice: User
) -> None:
    bot = create_bot(acme, alice, name="Elsewhere", allowed_origins=["https://shop.example"])
    site.pages["/"] = (page_with(""), {})
    report = actions.check_site(bot, site.origin + "/")
    assert titles(report) == [
        "This site is not in the bot's allowed sites",
        "The snippet is not in this page",
    ]
    assert report.problems[0].fix == [site.origin]


def test_a_blocking_csp_header_gets_the_exact_lines_to_add(site: Site, shop_bot: Bot) -> None:
    policy = "default-src 'self'; script-src 'self' https://cdn.example; img-src *"
    site.pages["/"] = (page_with(embed_snippet(shop_bot)), {"Content-Security-Policy": policy})
    report = actions.check_site(shop_bot, site.origin + "/")
    [problem] = report.problems
    assert problem.title == "The page's Content-Security-Policy blocks the widget"
    digest = actions.inline_hash(shop_bot)
    assert problem.fix == [
        f"script-src 'self' https://cdn.example {PLATFORM} {digest};",
        f"connect-src 'self' {PLATFORM};",
        f"frame-src 'self' {PLATFORM};",
    ]
    # With those lines the same page passes.
    fixed = "default-src 'self'; " + " ".join(problem.fix)
    site.pages["/fixed"] = (page_with(embed_snippet(shop_bot)), {"Content-Security-Policy": fixed})
    assert actions.check_site(shop_bot, site.origin + "/fixed").ok


def test_a_csp_meta_tag_counts_too_and_broad_sources_pass(site: Site, shop_bot: Bot) -> None:
    meta = '<meta http-equiv="Content-Security-Policy" content="frame-src \'none\'">'
    site.pages["/meta"] = (page_with(embed_snippet(shop_bot), meta), {})
    [problem] = actions.check_site(shop_bot, site.origin + "/meta").problems
    assert problem.fix == [f"frame-src {PLATFORM};"]
    broad = "script-src https: 'unsafe-inline'; connect-src *.example; frame-src *"
    site.pages["/broad"] = (page_with(embed_snippet(shop_bot)), {"Content-Security-Policy": broad})
    assert actions.check_site(shop_bot, site.origin + "/broad").ok


def test_unreachable_and_private_addresses_are_reported_not_raised(shop_bot: Bot) -> None:
    with override_settings(OUTBOUND_ALLOW_CIDRS=[]):
        report = actions.check_site(shop_bot, "http://127.0.0.1:9/")
    assert "private or local address" in report.error
    assert "not a web address" in actions.check_site(shop_bot, "http://").error


@pytest.mark.parametrize(
    ("sources", "allowed"),
    [
        (["'self'"], False),
        (["*"], True),
        (["https:"], True),
        (["http:"], True),  # an http: source also allows https
        (["parley.example"], True),
        (["*.example"], True),
        (["https://parley.example:443"], True),
        (["https://parley.example:8443"], False),
        (["http://parley.example"], True),
        (["https://other.example"], False),
        (["'none'"], False),
    ],
)
def test_csp_source_matching(sources: list[str], allowed: bool) -> None:
    assert actions.source_allows(sources, "https://parley.example/") is allowed


def test_the_loaders_config_request_records_where_the_widget_runs(
    client: Any, client_for: Any, alice: User, shop_bot: Bot, site: Site
) -> None:
    url = f"/widget/config/{shop_bot.public_key}"
    response = client.get(url, {"page": "/pricing"}, HTTP_ORIGIN=site.origin)
    assert response.status_code == 200
    sighting = WidgetSighting.objects.get(bot=shop_bot)
    assert (sighting.origin, sighting.page_url) == (site.origin, site.origin + "/pricing")
    # A foreign origin is refused and not recorded; a query string is never kept.
    client.get(url, HTTP_ORIGIN="https://evil.example")
    assert WidgetSighting.objects.count() == 1
    assert actions.page_without_query(site.origin + "/a?token=x", site.origin) == (
        site.origin + "/a"
    )
    assert actions.page_without_query("https://evil.example/a", site.origin) == ""

    page = client_for(alice).get(f"/bots/{shop_bot.pk}/").content.decode()
    assert "Where the widget has been seen" in page and site.origin + "/pricing" in page
    assert "Check my site" in page


def test_sightings_are_written_at_most_once_a_minute(shop_bot: Bot, site: Site) -> None:
    from django.core.cache import cache

    cache.clear()
    actions.record_sighting(shop_bot, site.origin, site.origin + "/a")
    actions.record_sighting(shop_bot, site.origin, site.origin + "/b")
    assert WidgetSighting.objects.get().page_url == site.origin + "/a"
    cache.clear()  # a minute later
    actions.record_sighting(shop_bot, site.origin, site.origin + "/b")
    assert WidgetSighting.objects.get().page_url == site.origin + "/b"


def test_the_check_and_guide_pages(client_for: Any, alice: User, shop_bot: Bot, site: Site) -> None:
    site.pages["/"] = (page_with(""), {"Content-Security-Policy": "script-src 'self'"})
    client = client_for(alice)
    page = client.get(f"/installs/{shop_bot.pk}/check").content.decode()
    assert "not seen yet" in page
    page = client.post(f"/installs/{shop_bot.pk}/check", {"url": site.origin + "/"}).content
    text = page.decode()
    assert "The snippet is not in this page" in text
    assert f"script-src &#39;self&#39; {PLATFORM} " in text
    guides = client.get(f"/installs/{shop_bot.pk}/guides").content.decode()
    for heading in ("Plain HTML", "WordPress", "Shopify", "Google Tag Manager", "Single-page"):
        assert heading in guides
    assert "Parley(&#39;init&#39;" in guides
    assert str(markupsafe.escape(actions.inline_hash(shop_bot))) in guides


def test_agents_do_not_get_the_install_pages(client_for: Any, charlie: User, shop_bot: Bot) -> None:
    assert client_for(charlie).get(f"/installs/{shop_bot.pk}/guides").status_code == 403
