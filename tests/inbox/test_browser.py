"""The inbox in a real Chromium: the takeover flow with a visitor and an agent side by side,
and the XSS corpus in the dashboard's transcript."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.test import Client

from chatbot.conversations import actions
from chatbot.conversations.models import Conversation, Message, Status
from chatbot.tenants.models import User
from tests.fixtures.servers import LiveServer
from tests.inbox.helpers import chat
from tests.widget.browser.conftest import host_sites, shop  # noqa: F401 (fixtures)
from tests.widget.browser.helpers import HostSite, Shop, open_widget
from tests.widget.browser.test_widget_browser import XSS_REPLY

pytestmark = pytest.mark.browser


def logged_in_page(browser: Any, user: User, server: LiveServer) -> Any:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    context = browser.new_context()
    cookie = client.cookies["sessionid"]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": server.url}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def bubbles(frame: Any) -> str:
    return str(frame.evaluate("() => document.getElementById('log').textContent"))


def test_an_agent_takes_over_while_the_visitor_watches(
    browser: Any,
    page: Any,
    shop: Shop,  # noqa: F811
    asgi_server: LiveServer,
    charlie: User,
) -> None:
    # The agent has the inbox open before anything happens.
    agent = logged_in_page(browser, charlie, asgi_server)
    agent.goto(asgi_server.url + "/conversations/")
    agent.wait_for_selector("html[data-inbox-connected]")
    assert agent.inner_text("#waiting-count").startswith("0 waiting")

    # The visitor, on Acme's site, asks for a person in words.
    frame = open_widget(page, shop.url)
    frame.fill("#input", "Can I talk to a person?")
    frame.press("#input", "Enter")

    # It shows up in the inbox without a reload, counted as waiting, with a notice.
    agent.wait_for_selector("tr.status-waiting a")
    agent.wait_for_function(
        "() => document.getElementById('waiting-count').textContent.startsWith('1')"
    )
    assert "waiting for a person" in agent.inner_text("#inbox-notice")
    agent.click("tr.status-waiting a")
    agent.wait_for_selector("html[data-inbox-connected]")
    agent.click("#takeover")
    agent.wait_for_selector("#status-line[data-status='agent']")

    # The visitor sees a named person join.
    frame.wait_for_function(
        "() => document.getElementById('log').textContent.includes('Charlie joined')",
        polling=100,
    )
    # The agent's typing reaches the visitor.
    agent.wait_for_selector("html[data-inbox-connected]")
    agent.type("#reply-text", "Hel")
    frame.wait_for_function("() => !!document.querySelector('#log .typing')", polling=100)

    agent.fill("#reply-text", "Hello, Charlie here. How can I help?")
    agent.click("#reply-form button[type=submit]")
    frame.wait_for_function(
        "() => document.getElementById('log').textContent.includes('Charlie here')", polling=100
    )
    # The agent's page has swapped in the answer to the send (the form is fresh again).
    agent.wait_for_function(
        "() => document.getElementById('transcript').textContent.includes('Charlie here')"
        " && document.getElementById('reply-text').value === ''",
        polling=100,
    )
    # An internal note stays with the team.
    agent.fill("#note-text", "Customer seems in a hurry")
    agent.click(".note-composer button[type=submit]")
    agent.wait_for_function(
        "() => document.getElementById('transcript').textContent.includes('in a hurry')",
        polling=100,
    )

    # The visitor answers: the agent's transcript shows it without a reload.
    agent.wait_for_selector("html[data-inbox-connected]")
    frame.fill("#input", "My order never arrived")
    frame.press("#input", "Enter")
    agent.wait_for_function(
        "() => document.getElementById('transcript').textContent.includes('never arrived')",
        polling=100,
    )
    assert "in a hurry" not in bubbles(frame)

    conversation = Conversation.objects.get(visitor__bot=shop.bot)
    assert conversation.status == Status.AGENT and conversation.assignee_id == charlie.pk
    roles = list(Message.objects.filter(conversation=conversation).values_list("role", flat=True))
    assert roles == ["visitor", "system", "system", "agent", "note", "visitor"]
    agent.context.close()


def test_xss_payloads_in_the_dashboard_transcript_stay_inert(
    page: Any,
    live_db: None,
    asgi_server: LiveServer,
    alice: User,
    host_sites: Callable[[], HostSite],  # noqa: F811
) -> None:
    from tests.inbox.helpers import make_bot

    tracker = host_sites()
    hostile = XSS_REPLY.replace("{pixel}", tracker.url("/pixel.png"))

    def write() -> Conversation:
        bot = make_bot(alice.memberships.get().tenant)
        conversation = chat(bot, hostile, reply=hostile)
        actions.receive_visitor_message(
            conversation.visitor, conversation, client_id="svg", text="<svg><script>x</script>"
        )
        return conversation

    # Written as the widget would, from a thread without Playwright's event loop (the
    # actions announce through async_to_sync).
    with ThreadPoolExecutor(1) as pool:
        conversation = pool.submit(write).result()
    client = Client()
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": asgi_server.url}])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    response = page.goto(f"{asgi_server.url}/conversations/{conversation.public_id}/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.wait_for_selector("#transcript .msg.assistant")
    page.wait_for_timeout(300)

    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    rendered = "#transcript .text *"
    tags = set(page.eval_on_selector_all(rendered, "(ns) => ns.map((n) => n.localName)"))
    assert tags <= {"p", "strong", "em", "code", "pre", "ul", "ol", "li", "a", "br"}, tags
    attributes = page.eval_on_selector_all(
        rendered, "(ns) => ns.flatMap((n) => [...n.attributes].map((a) => a.name))"
    )
    assert set(attributes) <= {"href", "rel"}, attributes
    hrefs = page.eval_on_selector_all("#transcript .text a", "(ns) => ns.map((a) => a.href)")
    assert hrefs and all(h.startswith(("https://", "http://127.0.0.1")) for h in hrefs), hrefs
    assert not [h for h in hrefs if "script" in h.lower() or h.startswith("data:")]
    text = page.inner_text("#transcript")
    assert "<script>window.__xss = 'script'</script>" in text  # shown as text
    assert tracker.requests == []  # the markdown image never loaded


def test_a_foreign_page_cannot_open_the_dashboard_socket_with_the_members_cookie(
    page: Any,
    live_db: None,
    asgi_server: LiveServer,
    alice: User,
    host_sites: Callable[[], HostSite],  # noqa: F811
) -> None:
    # Same site (127.0.0.1), another origin (port): the browser sends alice's cookie along.
    client = Client()
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": asgi_server.url}])
    socket_url = asgi_server.url.replace("http://", "ws://") + "/ws/dashboard/"
    probe = """(url) => new Promise((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => { ws.close(); resolve('open'); };
        ws.onerror = () => resolve('refused');
    })"""

    page.goto(asgi_server.url + "/conversations/")  # our own page: it opens
    assert page.evaluate(probe, socket_url) == "open"

    evil = host_sites()
    evil.pages["/"] = "<!doctype html><title>Not Parley</title><p>hello</p>"
    page.goto(evil.url("/"))
    assert page.evaluate(probe, socket_url) == "refused"


def test_agents_on_other_dashboard_pages_hear_that_a_visitor_waits(
    browser: Any,
    live_db: None,
    asgi_server: LiveServer,
    charlie: User,
) -> None:
    from tests.inbox.helpers import make_bot

    agent = logged_in_page(browser, charlie, asgi_server)
    agent.goto(asgi_server.url + "/dashboard/")
    agent.wait_for_selector("html[data-inbox-connected]", state="attached")

    def ask() -> None:
        conversation = chat(make_bot(charlie.memberships.get().tenant), "Hi", reply=None)
        actions.request_handoff(conversation.visitor, conversation)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(ask).result()
    agent.wait_for_function(
        "() => (document.getElementById('inbox-notice') || {}).textContent"
        " === 'A visitor is waiting for a person.'",
        polling=100,
    )
    assert agent.get_attribute("#inbox-notice", "href") == "/conversations/?status=waiting"
    agent.context.close()
