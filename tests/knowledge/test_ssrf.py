"""URL ingestion never reaches private, loopback, link-local or metadata addresses.

The server these tests point at is real and listens on loopback; it counts requests, so
"refused" means it was never contacted. Only the positive tests (test_crawl.py) reach it, and
only through an explicit OUTBOUND_ALLOW_CIDRS.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from chatbot.bots.models import Bot
from chatbot.knowledge import actions, tasks
from chatbot.knowledge.models import Source, SourceKind, SourceStatus

from .conftest import WebSite

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8000/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.1.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "ftp://example.com/file",
        "javascript:alert(1)",
        "not a url",
    ],
)
def test_adding_a_private_or_odd_url_is_refused(acme_bot: Bot, url: str) -> None:
    with pytest.raises(actions.KnowledgeError, match="cannot be used"):
        actions.add_site(acme_bot, url=url)
    assert not Source.objects.exists()


def test_the_loopback_server_is_refused_without_explicit_configuration(
    acme_bot: Bot, website: WebSite
) -> None:
    website.page("/", "<p>internal admin panel</p>")
    with pytest.raises(actions.KnowledgeError, match="loopback"):
        actions.add_site(acme_bot, url=website.url + "/")
    assert website.requests == []


def test_the_task_refuses_a_private_source_even_if_it_got_into_the_database(
    acme_bot: Bot, website: WebSite
) -> None:
    # E.g. stored before the operator narrowed OUTBOUND_ALLOW_CIDRS.
    website.page("/", "<p>internal admin panel</p>")
    source = Source.objects.create(bot=acme_bot, kind=SourceKind.URL, title="x", url=website.url)
    assert tasks.sync_source.apply(args=[source.pk]).get() == SourceStatus.FAILED
    source.refresh_from_db()
    assert "loopback" in source.error
    assert "Only public web addresses" in source.error
    assert website.requests == []


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://127.0.0.2:{port}/",  # loopback, but outside the allowed 127.0.0.1/32
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.2]:{port}/",
        "file:///etc/passwd",
    ],
)
def test_a_redirect_to_a_private_address_is_refused(
    acme_bot: Bot, website: WebSite, run_on_commit: Callable[..., Any], target: str
) -> None:
    target = target.format(port=website.port)
    website.raw("/robots.txt", b"", "text/plain")
    website.page("/", '<p>Home</p><a href="/go">go</a>')
    website.redirect("/go", target)
    website.redirect("/start", target)
    with override_settings(OUTBOUND_ALLOW_CIDRS=["127.0.0.1/32"]):
        # A page that redirects inside: that page is refused, the rest of the site is kept.
        with run_on_commit():
            source = actions.add_site(acme_bot, url=website.url + "/")
        source.refresh_from_db()
        assert source.status == SourceStatus.READY
        assert any("/go" in p and "refused" in p for p in source.progress["problems"])
        assert source.documents.count() == 1

        # A start URL that redirects inside: the whole source fails, saying why.
        with run_on_commit():
            failing = actions.add_site(acme_bot, url=website.url + "/start")
        failing.refresh_from_db()
        assert failing.status == SourceStatus.FAILED
        assert "refused" in failing.error
    assert set(website.requests) <= {"/robots.txt", "/", "/go", "/start"}


def test_a_dns_answer_that_changes_after_the_check_is_refused(
    acme_bot: Bot, website: WebSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: public when the manager adds the URL, loopback when the worker fetches."""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["93.184.216.34"])

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "shop.rebind.test":
            address = next(answers, "127.0.0.1")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 80))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    website.page("/", "<p>internal</p>")
    source = actions.add_site(acme_bot, url=f"http://shop.rebind.test:{website.port}/")
    assert tasks.sync_source.apply(args=[source.pk]).get() == SourceStatus.FAILED
    source.refresh_from_db()
    assert "127.0.0.1" in source.error and "loopback" in source.error
    assert website.requests == []
