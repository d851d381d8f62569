"""Website and sitemap sources against a real HTTP server on loopback.

The SSRF guard refuses loopback unless the operator allows it: these tests allow exactly
127.0.0.1 (OUTBOUND_ALLOW_CIDRS) to reach their own server; test_ssrf.py shows the refusals.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from chatbot.bots.models import Bot
from chatbot.knowledge import actions, tasks
from chatbot.knowledge.models import Document, Source, SourceKind, SourceStatus
from chatbot.knowledge.retrieval import retrieve

from .conftest import WebSite
from .documents import make_pdf

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_allow_loopback")]


@pytest.fixture
def _allow_loopback() -> Any:
    with override_settings(OUTBOUND_ALLOW_CIDRS=["127.0.0.1/32"]):
        yield


def _page(title: str, body: str, links: list[str] = ()) -> str:  # type: ignore[assignment]
    anchors = "".join(f'<a href="{href}">more</a> ' for href in links)
    return (
        f"<html><head><title>{title}</title></head>"
        f"<body><main><p>{body}</p>{anchors}</main></body></html>"
    )


def _site(website: WebSite) -> None:
    website.page(
        "/",
        _page(
            "Home", "Welcome to Lumen Bikes.", ["/repairs", "/about", "https://elsewhere.example/x"]
        ),
    )
    website.page(
        "/repairs",
        _page("Repairs", "We fix punctures in 20 minutes.", ["/repairs/prices", "/logo.png"]),
    )
    website.page("/repairs/prices", _page("Prices", "A puncture repair costs 12 euros.", ["/deep"]))
    website.page("/deep", _page("Deep", "Too deep to reach."))
    website.page("/about", _page("About", "Family run since 1987.", ["/private/notes"]))
    website.page("/private/notes", _page("Private", "The safe code is 1234."))
    website.raw("/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain")


def _add(bot: Bot, run_on_commit: Callable[..., Any], url: str, **kwargs: Any) -> Source:
    with run_on_commit():
        source = actions.add_site(bot, url=url, **kwargs)
    source.refresh_from_db()
    return source


def test_it_crawls_the_site_within_depth_and_honours_robots(
    acme_bot: Bot, website: WebSite, run_on_commit: Callable[..., Any]
) -> None:
    _site(website)
    source = _add(acme_bot, run_on_commit, website.url + "/", max_depth=2)
    assert source.status == SourceStatus.READY, source.error
    urls = set(Document.objects.filter(source=source).values_list("url", flat=True))
    base = website.url
    assert urls == {f"{base}/", f"{base}/repairs", f"{base}/about", f"{base}/repairs/prices"}
    assert website.hits("/deep") == 0  # depth 3
    assert website.hits("/private/notes") == 0  # robots.txt
    assert website.hits("/logo.png") == 0  # not a document
    assert any("robots.txt" in problem for problem in source.progress["problems"])

    # Both pages speak of puncture repairs; "cost" is what only the prices page answers.
    [best, *_] = retrieve(acme_bot, "How much does a puncture repair cost?")
    assert best.title == "Prices"
    assert best.url == f"{base}/repairs/prices"


def test_it_stops_at_the_page_limit(
    acme_bot: Bot, website: WebSite, run_on_commit: Callable[..., Any]
) -> None:
    _site(website)
    source = _add(acme_bot, run_on_commit, website.url + "/", max_depth=5, max_pages=2)
    assert Document.objects.filter(source=source).count() == 2
    assert sum(website.hits(p) for p in ("/", "/repairs", "/about", "/repairs/prices")) == 2


def test_a_resync_of_an_unchanged_site_rewrites_nothing_and_drops_vanished_pages(
    acme_bot: Bot, website: WebSite, run_on_commit: Callable[..., Any]
) -> None:
    _site(website)
    source = _add(acme_bot, run_on_commit, website.url + "/", max_depth=2)
    before = dict(Document.objects.filter(source=source).values_list("url", "fetched_at"))

    website.page("/", _page("Home", "Welcome to Lumen Bikes.", ["/repairs"]))  # /about unlinked
    website.page("/repairs/prices", _page("Prices", "A puncture repair costs 15 euros."))
    assert tasks.sync_source.apply(args=[source.pk]).get() == SourceStatus.READY
    source.refresh_from_db()
    after = dict(Document.objects.filter(source=source).values_list("url", "fetched_at"))
    base = website.url
    assert f"{base}/about" not in after
    assert after[f"{base}/repairs"] == before[f"{base}/repairs"]  # untouched
    assert after[f"{base}/repairs/prices"] != before[f"{base}/repairs/prices"]
    assert source.progress["unchanged"] == 1 and source.progress["updated"] == 2
    assert "15 euros" in retrieve(acme_bot, "puncture repair price")[0].text


def test_it_skips_noindex_pages_and_reads_linked_pdfs(
    acme_bot: Bot, website: WebSite, run_on_commit: Callable[..., Any]
) -> None:
    website.page("/", _page("Home", "Start here.", ["/hidden", "/manual.pdf"]))
    website.page(
        "/hidden",
        '<html><head><meta name="robots" content="noindex"></head><body>Secret sale</body></html>',
    )
    website.raw(
        "/manual.pdf", make_pdf([["Inflate tyres to 4 bar."]], title="Manual"), "application/pdf"
    )
    source = _add(acme_bot, run_on_commit, website.url + "/")
    titles = set(Document.objects.filter(source=source).values_list("title", flat=True))
    assert titles == {"Home", "Manual"}
    assert retrieve(acme_bot, "secret sale") == []


def test_a_sitemap_lists_the_pages_to_read(
    acme_bot: Bot, website: WebSite, run_on_commit: Callable[..., Any]
) -> None:
    _site(website)
    base = website.url
    urlset = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{base}/repairs</loc></url><url><loc>{base}/about</loc></url>"
        "<url><loc>https://elsewhere.example/page</loc></url></urlset>"
    )
    website.raw("/sitemap-pages.xml.gz", gzip.compress(urlset.encode()), "application/gzip")
    website.raw(
        "/sitemap.xml",
        (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{base}/sitemap-pages.xml.gz</loc></sitemap></sitemapindex>"
        ).encode(),
        "application/xml",
    )
    source = _add(acme_bot, run_on_commit, base + "/sitemap.xml", kind=SourceKind.SITEMAP)
    assert source.status == SourceStatus.READY, source.error
    urls = set(Document.objects.filter(source=source).values_list("url", flat=True))
    assert urls == {f"{base}/repairs", f"{base}/about"}


def test_a_site_that_answers_errors_fails_with_the_reason(
    acme_bot: Bot, website: WebSite, run_on_commit: Callable[..., Any]
) -> None:
    website.raw("/", b"oops", "text/plain", status=503)
    source = _add(acme_bot, run_on_commit, website.url + "/")
    assert source.status == SourceStatus.FAILED
    assert "503" in source.error


def test_robots_txt_that_errors_keeps_the_crawler_out(
    acme_bot: Bot, website: WebSite, run_on_commit: Callable[..., Any]
) -> None:
    _site(website)
    website.raw("/robots.txt", b"down", "text/plain", status=500)
    source = _add(acme_bot, run_on_commit, website.url + "/")
    assert source.status == SourceStatus.FAILED
    assert "robots.txt" in source.error
    assert website.hits("/") == 0


def test_scheduled_resync_queues_only_due_sources(
    acme_bot: Bot, website: WebSite, run_on_commit: Callable[..., Any]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    _site(website)
    due = _add(acme_bot, run_on_commit, website.url + "/", max_depth=0, sync_interval=24)
    fresh = _add(acme_bot, run_on_commit, website.url + "/about", max_depth=0, sync_interval=24)
    manual = _add(acme_bot, run_on_commit, website.url + "/repairs", max_depth=0, sync_interval=0)
    Source.objects.filter(pk=due.pk).update(last_synced=timezone.now() - timedelta(hours=25))
    Source.objects.filter(pk=manual.pk).update(last_synced=timezone.now() - timedelta(days=30))
    hits_before = website.hits("/")
    assert tasks.resync_due_sources.apply().get() == 1
    assert website.hits("/") == hits_before + 1
    assert Source.objects.get(pk=due.pk).last_synced > timezone.now() - timedelta(minutes=1)
    assert fresh.pk != due.pk
