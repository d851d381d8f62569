"""Parley's real multi-process deployment, and what happens to a visitor when parts of it fail.

One deployment for the module (tests/topology/deployment.py): nginx with deploy/'s site in
front of two `serve` processes, a Celery worker and beat, all from a plain `pip install .`,
on a private PostgreSQL and a private Redis, with model endpoints from LLM_ENDPOINTS_FILE
(the tiny llama.cpp model, and a slow stand-in speaking OpenAI's wire format). A visitor in
Chromium, on a host page of another origin, talks to it through nginx while the tests kill a
web process mid-reply, restart Redis mid-stream, kill the worker mid-ingestion and restart
PostgreSQL. The tests assert outcomes; the waits are polls with generous caps, and each
phase prints how long it took.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CI
from tests.fixtures.install import ROOT, FreshInstall
from tests.llama.tiny_model import REPLY as TINY_REPLY
from tests.topology.deployment import (
    DATABASE,
    Deployment,
    build,
    missing_tools,
    phase,
    poll_pause,
    report_line,
    show_on_terminal,
)
from tests.topology.fakes import (
    QUICK_REPLY,
    SITE_PAGES,
    SLOW_REPLY,
    start_slow_model,
    start_slow_site,
)
from tests.topology.services import Processes, wait_for
from tests.widget.browser.helpers import HostSite, open_widget, start_site, wait_for_reply

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.browser,
    pytest.mark.llama,
]


@pytest.fixture(scope="module")
def host() -> Iterator[HostSite]:
    """The business's web site, on its own origin, embedding the bots' snippets."""
    site = start_site()
    yield site
    site.server.shutdown()
    site.server.server_close()


@pytest.fixture(scope="module")
def deployment(
    fresh_venv: FreshInstall,
    llama_server: Any,
    host: HostSite,
    request: pytest.FixtureRequest,
) -> Iterator[Deployment]:
    missing = missing_tools()
    if missing:
        reason = "the deployment test needs " + ", ".join(missing)
        if CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    show_on_terminal(request.config)
    # Under var/ (not pytest's rotating temp dirs), so the logs outlive a failed run.
    root = ROOT / "var" / "topology"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    # PostgreSQL runs as the postgres user, who cannot enter pytest's private temp dirs.
    postgres_dir = Path(tempfile.mkdtemp(prefix="parley-topology-pg-"))
    processes = Processes(logs=root / "logs")
    model = start_slow_model()
    try:
        with phase("deployment up"):
            running = build(
                fresh=fresh_venv,
                root=root,
                processes=processes,
                model=model,
                llama=llama_server,
                host_origin=host.origin,
                postgres_dir=postgres_dir,
            )
        for name, bot in running.bots.items():
            host.pages[f"/{name}"] = bot.page
        yield running
    finally:
        with phase("deployment down"):
            processes.stop_all()
            model.close()
            shutil.rmtree(postgres_dir, ignore_errors=True)
        report_line(f"process logs are in {root / 'logs'}")


# --- Watching the visitor's sockets -----------------------------------------------------------


class SocketWatch:
    """Every widget WebSocket the page opens: when, what it received, whether it closed."""

    def __init__(self, page: Any) -> None:
        self.sockets: list[dict[str, Any]] = []
        page.on("websocket", self._opened)

    def _opened(self, socket: Any) -> None:
        if "/ws/widget/" not in socket.url:
            return
        entry: dict[str, Any] = {"opened": time.monotonic(), "frames": [], "closed": None}
        self.sockets.append(entry)
        socket.on("framereceived", lambda payload: entry["frames"].append(json.loads(payload)))
        socket.on("close", lambda _: entry.update(closed=time.monotonic()))

    def ready_since(self, moment: float) -> bool:
        """A socket opened after `moment` has been greeted with `ready`."""
        return any(
            s["opened"] > moment and any(f.get("type") == "ready" for f in s["frames"])
            for s in self.sockets
        )

    def open_at(self, moment: float) -> list[dict[str, Any]]:
        return [s for s in self.sockets if s["opened"] <= moment and (s["closed"] or 1e12) > moment]


def send(frame: Any, text: str) -> None:
    frame.fill("#input", text)
    frame.press("#input", "Enter")


def shown_messages(frame: Any) -> list[str]:
    """The texts in the widget's log, in order (the greeting aside)."""
    return list(
        frame.eval_on_selector_all(
            "#log .msg:not(.greeting) .bubble", "(nodes) => nodes.map((n) => n.textContent)"
        )
    )


def conversation_rows(deployment: Deployment, bot: str) -> list[tuple[Any, ...]]:
    """(seq, role, text, status, error_code, client_id) of the bot's one conversation."""
    rows = deployment.query(
        "SELECT m.conversation_id, m.seq, m.role, m.text, m.status, m.error_code, m.client_id"
        " FROM conversations_message m"
        " JOIN conversations_conversation c ON c.id = m.conversation_id"
        " WHERE c.bot_id = %s AND m.role IN ('visitor', 'assistant') ORDER BY m.seq",
        deployment.bots[bot].id,
    )
    assert len({row[0] for row in rows}) <= 1, "the visitor ended up in several conversations"
    return [row[1:] for row in rows]


def assert_accepted_exactly_once(rows: list[tuple[Any, ...]], sent: list[str]) -> None:
    visitor = [(text, client_id) for _, role, text, _, _, client_id in rows if role == "visitor"]
    assert [text for text, _ in visitor] == sent, rows
    client_ids = [client_id for _, client_id in visitor]
    assert all(client_ids) and len(set(client_ids)) == len(client_ids), rows


def start_slow_reply(deployment: Deployment, frame: Any, page: Any, text: str) -> Any:
    """Send `text` (which asks the stand-in to answer slowly) and wait until the visitor sees
    the reply streaming; returns the stand-in's record of the request."""
    calls = len(deployment.model.calls)
    send(frame, text)
    call = wait_for(
        lambda: next(
            (c for c in deployment.model.calls[calls:] if c.slow and c.words_sent >= 3), None
        ),
        what="the slow reply to start streaming",
        pause=poll_pause(page),
    )
    frame.wait_for_function(
        "() => document.getElementById('log').textContent.includes('part02')", polling=100
    )
    return call


# --- The scenarios ----------------------------------------------------------------------------


def test_a_visitor_chats_through_nginx_with_the_tiny_llama(
    page: Any, deployment: Deployment, host: HostSite
) -> None:
    sockets = SocketWatch(page)
    with phase("chat through nginx (tiny llama)"):
        frame = open_widget(page, host.url("/tiny"))
        send(frame, "Hello, are you there?")
        wait_for_reply(frame, TINY_REPLY, timeout=60_000)
    streamed = "".join(
        f["text"] for s in sockets.sockets for f in s["frames"] if f.get("type") == "delta"
    )
    assert streamed == TINY_REPLY
    rows = conversation_rows(deployment, "tiny")
    assert [(role, text, status) for _, role, text, status, _, _ in rows] == [
        ("visitor", "Hello, are you there?", "complete"),
        ("assistant", TINY_REPLY, "complete"),
    ]
    assert shown_messages(frame) == ["Hello, are you there?", TINY_REPLY]


def test_killing_the_web_process_that_holds_the_visitors_socket_mid_reply(
    page: Any, deployment: Deployment, host: HostSite
) -> None:
    sockets = SocketWatch(page)
    frame = open_widget(page, host.url("/slow"))
    send(frame, "Hello there")
    wait_for_reply(frame, QUICK_REPLY)
    call = start_slow_reply(deployment, frame, page, "Please answer slowly")

    # The reply runs in the process that took the message: the one holding the socket.
    victim_pid = wait_for(
        lambda: deployment.web_pid_for_peer_port(call.peer_port),
        what=f"the web process whose model request comes from port {call.peer_port}",
        timeout=5,
        pause=poll_pause(page),
    )
    victim_port = next(p for p, w in deployment.web.items() if w.pid == victim_pid)
    try:
        interrupted_reply_is_marked_and_retried(deployment, page, frame, sockets, victim_port)
    finally:
        with phase("serve SIGKILL: the killed process restarts"):
            deployment.start_web(victim_port)


def interrupted_reply_is_marked_and_retried(
    deployment: Deployment, page: Any, frame: Any, sockets: SocketWatch, victim_port: int
) -> None:
    pause = poll_pause(page)
    survivor = next(w for p, w in deployment.web.items() if p != victim_port)
    killed_at = time.monotonic()
    assert sockets.open_at(killed_at), "the visitor has no open socket"
    deployment.web[victim_port].kill()

    with phase("serve SIGKILL: visitor reconnects through nginx"):
        wait_for(
            lambda: sockets.ready_since(killed_at),
            what="the visitor to reconnect through nginx to the other process",
            pause=pause,
        )
    assert survivor.alive()

    with phase("serve SIGKILL: interrupted reply marked"):
        # Within seconds, not at the ten-minute sweep: the cap is generous for a busy machine.
        rows = wait_for(
            lambda: (
                (r := conversation_rows(deployment, "slow"))
                and r[-1][1] == "assistant"
                and r[-1][3] in ("incomplete", "failed")
                and r
            ),
            what="the interrupted reply to be marked incomplete/failed",
            timeout=30,
            pause=pause,
        )
    interrupted = rows[-1]
    assert interrupted[4] == "interrupted", interrupted
    assert SLOW_REPLY.startswith(interrupted[2]), interrupted  # what was saved, no more

    with phase("serve SIGKILL: retry from the widget"):
        retry = frame.locator("#log .msg.assistant:not(.greeting) .meta button.link").last
        retry.wait_for(timeout=30_000)
        retry.click()
        wait_for_reply(frame, SLOW_REPLY, timeout=60_000)

    rows = conversation_rows(deployment, "slow")
    assert_accepted_exactly_once(rows, ["Hello there", "Please answer slowly"])
    assert rows[-1][1:4] == ("assistant", SLOW_REPLY, "complete"), rows
    assert shown_messages(frame)[-1] == SLOW_REPLY


def test_restarting_redis_mid_stream(page: Any, deployment: Deployment, host: HostSite) -> None:
    pause = poll_pause(page)
    sockets = SocketWatch(page)
    frame = open_widget(page, host.url("/slow"))
    # A new visitor: the slow bot's conversation of the previous test is another visitor's.
    baseline = {row[0] for row in conversation_rows_all(deployment, "slow")}
    start_slow_reply(deployment, frame, page, "Tell me slowly what Redis does")

    restarted_at = time.monotonic()
    with phase("redis restart"):
        deployment.redis.restart()

    with phase("redis restart: sockets reconnect and the reply ends"):
        # Either the socket survived, or a new one was greeted after the restart.
        wait_for(
            lambda: sockets.ready_since(restarted_at) or sockets.open_at(time.monotonic()),
            what="the visitor's socket to be open again",
            pause=pause,
        )
        rows = wait_for(
            lambda: (
                (r := new_conversation_rows(deployment, "slow", baseline))
                and r[-1][1] == "assistant"
                and r[-1][3] != "streaming"
                and r
            ),
            what="the reply to end",
            timeout=90,
            pause=pause,
        )
    # The stream resumed: the reply is whole, stored once, and the visitor sees it, with no
    # reload, exactly as stored.
    assert rows[-1][1:4] == ("assistant", SLOW_REPLY, "complete"), rows
    assert_accepted_exactly_once(rows, ["Tell me slowly what Redis does"])
    wait_for_reply(frame, SLOW_REPLY, timeout=30_000)
    assert shown_messages(frame) == [row[2] for row in rows]


def conversation_rows_all(deployment: Deployment, bot: str) -> list[tuple[Any, ...]]:
    return deployment.query(
        "SELECT c.id FROM conversations_conversation c WHERE c.bot_id = %s",
        deployment.bots[bot].id,
    )


def new_conversation_rows(
    deployment: Deployment, bot: str, known: set[int]
) -> list[tuple[Any, ...]]:
    rows = deployment.query(
        "SELECT m.conversation_id, m.seq, m.role, m.text, m.status, m.error_code, m.client_id"
        " FROM conversations_message m"
        " JOIN conversations_conversation c ON c.id = m.conversation_id"
        " WHERE c.bot_id = %s AND m.role IN ('visitor', 'assistant') ORDER BY m.seq",
        deployment.bots[bot].id,
    )
    fresh = [row for row in rows if row[0] not in known]
    assert len({row[0] for row in fresh}) <= 1, "the visitor ended up in several conversations"
    return [row[1:] for row in fresh]


ADD_SITE = """
import json
from chatbot.bots.models import Bot
from chatbot.knowledge.actions import add_site
source = add_site(Bot.objects.get(pk=BOT_ID), url=URL, max_depth=1, max_pages=20)
print("RESULT " + json.dumps(source.pk))
"""


def test_killing_the_worker_mid_ingestion(deployment: Deployment) -> None:
    site = start_slow_site(delay=1.5)
    try:
        with phase("worker SIGKILL: ingestion under way"):
            source_id = deployment.shell(
                f"BOT_ID = {deployment.bots['tiny'].id}\nURL = {site.url!r}\n" + ADD_SITE
            )

            def under_way() -> bool:
                (status,) = deployment.query(
                    "SELECT status FROM knowledge_source WHERE id = %s", source_id
                )[0]
                (documents,) = deployment.query(
                    "SELECT count(*) FROM knowledge_document WHERE source_id = %s", source_id
                )[0]
                # The home page is stored and the next page is being read.
                return status == "syncing" and documents >= 1 and "/page-1" in site.requests

            wait_for(under_way, what="the sync to store its first page", timeout=90)
        assert deployment.worker is not None
        deployment.worker.kill()
        requests_at_kill = len(site.requests)
        status_at_kill = deployment.query(
            "SELECT status FROM knowledge_source WHERE id = %s", source_id
        )[0][0]
        assert status_at_kill == "syncing", "the sync ended before the worker was killed"

        with phase("worker SIGKILL: a new worker runs the task again"):
            deployment.start_worker()
            wait_for(
                lambda: (
                    deployment.query(
                        "SELECT status FROM knowledge_source WHERE id = %s", source_id
                    )[0][0]
                    not in ("syncing", "pending")
                ),
                what="the task to run again on the new worker and finish",
                timeout=120,
            )
    finally:
        site.close()

    assert "/" in site.requests[requests_at_kill:], "the site was not read again"
    status, error = deployment.query(
        "SELECT status, error FROM knowledge_source WHERE id = %s", source_id
    )[0]
    assert (status, error) == ("ready", "")
    documents = deployment.query(
        "SELECT key FROM knowledge_document WHERE source_id = %s ORDER BY key", source_id
    )
    expected = sorted([site.url] + [f"{site.url}page-{n}" for n in range(1, SITE_PAGES + 1)])
    assert [key for (key,) in documents] == expected
    # One set of chunks: each document's positions 0..n-1, each once.
    per_document = deployment.query(
        "SELECT document_id, count(*), count(DISTINCT position), max(position)"
        " FROM knowledge_chunk WHERE source_id = %s GROUP BY document_id",
        source_id,
    )
    assert len(per_document) == len(expected)
    for _, count, distinct, highest in per_document:
        assert count == distinct == highest + 1, per_document


def readiness(url: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{url}/readyz", timeout=10)
    return response.status_code, response.json()


def test_restarting_postgresql(page: Any, deployment: Deployment, host: HostSite) -> None:
    pids = {port: web.pid for port, web in deployment.web.items() if web.alive()}
    assert len(pids) == 2
    direct = [f"http://127.0.0.1:{port}" for port in pids]

    with phase("postgres stop: /readyz says 503 naming the database"):
        deployment.postgres.stop()
        for url in [deployment.url, *direct]:

            def refused(url: str = url) -> dict[str, Any] | None:
                status, body = readiness(url)
                return body if status == 503 else None

            body = wait_for(refused, what=f"{url}/readyz to answer 503", timeout=60)
            assert body["failing"] == ["database"], body
            assert body["checks"]["database"] != "ok", body
            assert body["checks"]["redis"] == "ok", body

    with phase("postgres start: /readyz recovers without restarting Parley"):
        deployment.postgres.start()
        for url in [*direct, deployment.url]:

            def ready(url: str = url) -> bool:
                return readiness(url)[0] == 200

            wait_for(ready, what=f"{url}/readyz to answer 200 again", timeout=60)
    assert {port: web.pid for port, web in deployment.web.items() if web.alive()} == pids
    assert deployment.beat is not None and deployment.beat.alive(), "beat died with the database"

    with phase("postgres start: a visitor chats again"):
        frame = open_widget(page, host.url("/slow"))
        send(frame, "Are you back?")
        wait_for_reply(frame, QUICK_REPLY, timeout=60_000)
    assert deployment.query("SELECT current_database()")[0][0] == DATABASE


def test_nginx_passes_what_parley_needs_and_keeps_metrics_inside(deployment: Deployment) -> None:
    # /metrics is for the operator's scraper on each process's own port, never the public site.
    assert httpx.get(f"{deployment.url}/metrics", timeout=10).status_code == 403
    # Static files come from whitenoise through the proxy, compressed.
    static = httpx.get(
        f"{deployment.url}/static/widget/frame.css", headers={"Accept-Encoding": "br"}, timeout=10
    )
    assert static.status_code == 200, static.text[:200]
    assert static.headers.get("content-encoding") == "br"
    # nginx's request id replaces whatever the client sent, so both logs share one id.
    response = httpx.get(
        f"{deployment.url}/healthz", headers={"X-Request-ID": "chosen-by-the-client"}, timeout=10
    )
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), response.headers


TTFT_COUNT = re.compile(r"^parley_reply_ttft_seconds_count\{.*\} (\S+)$", re.M)


def test_metrics_are_scraped_from_each_web_process_with_the_token(deployment: Deployment) -> None:
    ttft_samples = 0.0
    for port, web in deployment.web.items():
        if not web.alive():
            continue
        url = f"http://127.0.0.1:{port}/metrics"
        response = httpx.get(
            url, headers={"Authorization": f"Bearer {deployment.metrics_token}"}, timeout=10
        )
        assert response.status_code == 200, response.text[:300]
        for name in (
            "parley_replies_in_flight",
            "parley_sockets_open",
            "parley_reply_ttft_seconds",
        ):
            assert re.search(rf"^# TYPE {name} ", response.text, re.M), (port, name)
        ttft_samples += sum(float(count) for count in TTFT_COUNT.findall(response.text))
        assert httpx.get(url, timeout=10).status_code != 200  # no token, no metrics
    # The replies of the scenarios above were timed (by whichever process ran them).
    assert ttft_samples > 0
