"""Property-based fuzzing of hostile values over every HTTP route and every socket frame type.

Values are drawn (hypothesis) from text carrying NUL, lone surrogates, quotes and brackets,
20-digit and negative numbers, malformed URLs (`http://[::1`), sent:
- in every route's path parameters, query string and form body, as Acme's owner (so the
  dashboard's forms and filters are reached), walking the URL resolver;
- in JSON bodies to the widget's public endpoints (surrogates JSON-escaped, as an attacker
  sends them);
- in every field of every widget frame type (docs/widget-protocol.md, section 5) and every
  dashboard socket frame type.
The property: no answer is a 500, and no socket drops: every frame is answered, or closed
with one of the protocol's codes, and the socket still answers `ping` afterwards.

Examples are bounded (a few passes over the routes, a few dozen frames) and there are no
wall-clock assertions; the figures are printed for the record (run with -s). The PostgreSQL
run matters most: NUL is what PostgreSQL refuses.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings
from django.urls.converters import IntConverter
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.models import Conversation
from chatbot.tenants.models import Tenant, User
from tests.asyncrun import run
from tests.routes import Route, iter_routes
from tests.widget.conftest import SHOP, connect, session_token
from tests.widget.conftest import model as model  # the scripted model fixture, used below
from widget.consumers import Close

HOSTILE_PIECES = [
    "\x00",
    "\ud800",
    "\udfff",
    "\ufffd",
    "'",
    '"',
    "<script>",
    "%",
    "%00",
    "[",
    "\\",
    "9" * 20,
    "http://[::1",
    "=HYPERLINK(1)",
    "c_",
]
# Text that always carries at least one hostile piece, between ordinary characters.
hostile_text = st.tuples(
    st.text(max_size=4), st.sampled_from(HOSTILE_PIECES), st.text(max_size=4)
).map("".join)
hostile_number = st.one_of(
    st.integers(min_value=-(10**22), max_value=10**22), st.sampled_from([0, -1, 2**63, 2**64])
)
hostile_value = st.one_of(
    hostile_text,
    hostile_text,  # twice: text is where most of the trouble was
    hostile_number,
    st.sampled_from([None, True, [], {}, 1.5, "9" * 20]),
    st.lists(hostile_text, min_size=1, max_size=2),
    st.dictionaries(hostile_text, hostile_text, min_size=1, max_size=2),
)
FUZZ = hypothesis_settings(
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
# Routes whose POST would end the fuzzing session itself (the answers are still checked by
# GET). Everything else is posted to.
NOT_POSTED = {"account_logout"}
FORM_FIELDS = ("text", "name", "q", "bot", "user", "tenant", "url", "title", "shortcut", "kind")

ANSWERS: Counter[str] = Counter()


def _json(value: Any) -> str:
    # ensure_ascii: a lone surrogate travels as "\ud800", the way a browser or a script sends it.
    return json.dumps(value, ensure_ascii=True)


def _path_value(route: Route, param: str, value: Any) -> str:
    if isinstance(route.converters.get(param), IntConverter):
        return (
            str(abs(value)) if isinstance(value, int) and not isinstance(value, bool) else "9" * 20
        )
    text = value if isinstance(value, str) else _json(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe="") or "x"


def _url(route: Route, values: dict[str, Any]) -> str | None:
    """The route's path with hostile values in its parameters (None for regex routes)."""
    path = "/" + route.route
    for param in route.params:
        if param not in route.converters:
            return None
        kinds = ("int", "str", "slug", "path", "uuid")
        placeholders = [f"<{param}>", *(f"<{kind}:{param}>" for kind in kinds)]
        replaced = False
        for placeholder in placeholders:
            if placeholder in path:
                path = path.replace(placeholder, _path_value(route, param, values.get(param)))
                replaced = True
        if not replaced:
            return None
    return path if "^" not in path and "(?P" not in path else None


def _query(values: dict[str, Any]) -> str:
    return "&".join(
        f"{name}={quote(str(value).encode('utf-8', 'surrogatepass'), safe='')}"
        for name, value in values.items()
    )


def _form(values: dict[str, Any]) -> bytes:
    return _query(values).encode()


def _answer(response: Any, where: str) -> None:
    ANSWERS[f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, (where, response.status_code, response.content[:500])


@pytest.fixture
def world(acme: Tenant, alice: User) -> Bot:
    bot = Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=[SHOP])
    visitor = actions.open_visitor(bot)
    actions.receive_visitor_message(visitor, None, client_id="c1", text="Hello")
    return bot


@pytest.fixture
def owner_client(world: Bot, alice: User, client_for: Callable[[User], Client]) -> Client:
    return client_for(alice)


@pytest.fixture
def real_ids(world: Bot) -> dict[str, Any]:
    """Path parameters that name Acme's real rows (by the routes' parameter names)."""
    conversation = Conversation.objects.get(bot=world)
    return {
        "public_id": conversation.public_id,
        "visitor_id": conversation.visitor.public_id,
        "bot_id": world.pk,
        "key": world.public_key,
    }


@pytest.fixture
def routes() -> list[Route]:
    return [r for r in iter_routes() if not r.route.startswith(("static/", "media/"))]


@pytest.fixture(autouse=True)
def _generous_limits() -> Iterator[None]:
    with override_settings(ALLOWED_HOSTS=["*"]):
        yield


# --- HTTP ------------------------------------------------------------------------------------


@pytest.mark.django_db
@hypothesis_settings(FUZZ, max_examples=3)
@given(
    values=st.lists(hostile_value, min_size=7, max_size=7),
    texts=st.lists(st.one_of(hostile_text, st.text(max_size=8)), min_size=11, max_size=11),
)
def test_no_route_answers_500_to_hostile_paths_queries_and_forms(
    values: list[Any],
    texts: list[str],
    owner_client: Client,
    routes: list[Route],
    real_ids: dict[str, Any],
) -> None:
    """One example is one pass over every route: GET with a hostile query, POST a form. The
    drawn values go round the routes (prime-length lists, so each route gets a different
    mix); drawing anew per route would overrun hypothesis's buffer on ~230 routes."""
    next_value, next_text = itertools.cycle(values).__next__, itertools.cycle(texts).__next__
    for route in routes:
        hostile_path = {param: next_value() for param in route.params}
        # The same route at a real row, so the hostile query and form reach the view's work.
        real_path = {param: real_ids.get(param, hostile_path[param]) for param in route.params}
        for path_values in [hostile_path, real_path] if route.params else [hostile_path]:
            url = _url(route, path_values)
            if url is None:
                continue
            query = _query({name: next_text() for name in ("q", "bot", "page")})
            _answer(owner_client.get(f"{url}?{query}"), f"GET {route.name} {url}?{query}")
            if route.name in NOT_POSTED:
                continue
            form = _form({name: next_text() for name in FORM_FIELDS})
            _answer(
                owner_client.post(url, form, content_type="application/x-www-form-urlencoded"),
                f"POST {route.name} {url} {form!r}",
            )


@pytest.mark.django_db
@hypothesis_settings(FUZZ, max_examples=40)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "bot": hostile_value,
            "origin": st.one_of(hostile_value, st.just(SHOP)),
            "resume": hostile_value,
            "identity": hostile_value,
            "locale": hostile_value,
        },
    ),
    frame_type=st.sampled_from(["message.send", "feedback", "conversation.open", "page", "x"]),
    field=hostile_value,
    query=hostile_text,
)
def test_the_widget_endpoints_never_answer_500(
    body: dict[str, Any],
    frame_type: str,
    field: Any,
    query: str,
    world: Bot,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("widget.views.SSE_MAX_SECONDS", 0)
    if "bot" not in body or not isinstance(body["bot"], str):
        body = {**body, "bot": world.public_key}
    answer = client.post(
        "/widget/api/session",
        _json(body),
        content_type="application/json",
        headers={"Origin": SHOP},
    )
    _answer(answer, f"session {body!r}")
    _answer(client.get(f"/widget/config/{_path_value_text(query)}"), f"config {query!r}")
    token, _ = session_token(world)
    auth = {"Authorization": f"Bearer {token}", "Origin": SHOP}
    frame = {
        "type": frame_type,
        "client_id": "f1",
        "text": field,
        "conversation": field,
        "seq": field,
        "value": field,
        "url": field,
    }
    _answer(
        client.post(
            "/widget/api/send", _json(frame), content_type="application/json", headers=auth
        ),
        f"send {frame!r}",
    )
    events = client.get(
        f"/widget/api/events?{_query({'conversation': query, 'after': query})}", headers=auth
    )
    if events.status_code == 200:  # the stream's start (SSE_MAX_SECONDS is 0 here)
        run(_drain(events.streaming_content))
    _answer(events, f"events {query!r}")


async def _drain(chunks: Any) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def _path_value_text(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="") or "x"


# --- Sockets ---------------------------------------------------------------------------------

WIDGET_FRAME_FIELDS: dict[str, tuple[str, ...]] = {
    "hello": ("token", "conversation", "resume_after_seq"),
    "message.send": ("client_id", "text", "attachment_ids"),
    "typing": (),
    "feedback": ("seq", "value"),
    "reply.retry": (),
    "conversation.new": (),
    "conversation.open": ("conversation", "resume_after_seq"),
    "conversations.list": (),
    "handoff.request": (),
    "page": ("url",),
    "action.confirm": ("id", "accept"),
    "token.refresh": ("token",),
    "reply.fetch": ("seq", "offset"),
    "ping": (),
}
# Closing is the protocol's answer to a bad token in these frames, with these codes.
CLOSING_FRAMES = {"hello", "token.refresh"}
PROTOCOL_CLOSE_CODES = {Close.BAD_TOKEN, Close.TOKEN_EXPIRED, Close.ORIGIN_NOT_ALLOWED}


def _frame(kind: str, draw: Callable[[Any], Any], valid: dict[str, Any]) -> dict[str, Any]:
    """The frame with sound values in some fields (so it gets past the first check and
    reaches the database) and hostile values in the others: at least one, perhaps an extra
    field with a hostile name."""
    frame: dict[str, Any] = {"type": kind}
    fields = WIDGET_FRAME_FIELDS[kind]
    hostile = draw(st.sampled_from(fields)) if fields else None
    for name in fields:
        sound = name != hostile and draw(st.booleans())
        frame[name] = valid[name] if sound else draw(hostile_value)
    if hostile is None or draw(st.booleans()):
        frame[draw(hostile_text)] = draw(hostile_value)
    return frame


async def _open_widget(bot: Bot) -> WebsocketCommunicator:
    token, _ = await database_sync_to_async(session_token)(bot)
    comm = connect(bot)
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "hello", "token": token})
    assert json.loads(await comm.receive_from(timeout=5))["type"] == "ready"
    return comm


async def _answered(comm: WebsocketCommunicator, kind: str, sent: str) -> bool:
    """Send a ping after the frame and read up to its pong: every frame is answered (or
    silently accepted) and the socket stays up. False when the frame closed the socket the
    way the protocol says it may."""
    await comm.send_json_to({"type": "ping"})
    while True:
        output = await comm.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            assert kind in CLOSING_FRAMES and output.get("code") in PROTOCOL_CLOSE_CODES, (
                "dropped",
                sent,
                output,
            )
            ANSWERS["socket closed with a protocol code"] += 1
            return False
        frame = json.loads(output["text"])
        if frame["type"] == "pong":
            ANSWERS["frames answered"] += 1
            return True
        if frame["type"] == "error":
            ANSWERS[f"error {frame['code']}"] += 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("model")  # replies come from the scripted model, not a real one
@hypothesis_settings(FUZZ, max_examples=6)
@given(data=st.data())
async def test_no_widget_frame_drops_the_socket(data: st.DataObject, world: Bot) -> None:
    """One example: every frame type once, each with hostile values in every field."""
    comm = await _open_widget(world)
    token, _ = await database_sync_to_async(session_token)(world)
    conversation = await Conversation.objects.filter(bot=world).afirst()
    assert conversation is not None
    valid = {
        "token": token,
        "conversation": conversation.public_id,
        "resume_after_seq": 0,
        "client_id": "fuzz-1",
        "text": "hello",
        "attachment_ids": [],
        "seq": 1,
        "offset": 0,
        "value": "up",
        "url": SHOP + "/page",
        "id": "ac_0",
        "accept": True,
    }
    for kind in WIDGET_FRAME_FIELDS:
        frame = _frame(kind, data.draw, valid)
        sent = _json(frame)
        await comm.send_to(text_data=sent)
        if not await _answered(comm, kind, sent):
            comm = await _open_widget(world)
    await comm.disconnect()
    await actions.wait_for_replies()


DASHBOARD_FRAME_FIELDS: dict[str, tuple[str, ...]] = {
    "subscribe.inbox": (),
    "subscribe.conversation": ("conversation",),
    "typing": (),
    "ping": (),
}


@pytest.mark.django_db(transaction=True)
@hypothesis_settings(FUZZ, max_examples=6)
@given(data=st.data())
async def test_no_dashboard_frame_drops_the_socket(
    data: st.DataObject, world: Bot, alice: User
) -> None:
    from tests.inbox.test_live import open_agent

    comm = await open_agent(alice)
    conversation = await Conversation.objects.afirst()
    assert conversation is not None
    for kind, fields in DASHBOARD_FRAME_FIELDS.items():
        frame: dict[str, Any] = {
            "type": kind,
            **{name: data.draw(hostile_value) for name in fields},
        }
        if data.draw(st.booleans()):
            frame[data.draw(hostile_text)] = data.draw(hostile_value)
        sent = _json(frame)
        await comm.send_to(text_data=sent)
        assert await _answered(comm, kind, sent)
    await comm.disconnect()


def test_zz_fuzz_figures() -> None:
    """Prints what the fuzzing above answered (make test keeps the line; run with -s)."""
    print("parley: input fuzz answers " + ", ".join(f"{k}={v}" for k, v in sorted(ANSWERS.items())))
