"""schemathesis against the served OpenAPI schema: every operation, with generated valid and
malformed bodies, parameters and ids, answers 4xx and never 5xx, with the documented
content type and a body that matches the schema.

Runs in-process through Django's WSGI handler (no server, no port), as Acme's owner with a
read-write key over a small world (a bot, a conversation, a source, an action, a contact) so
that some generated requests reach real rows. Examples are bounded to keep make test fast.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from chatbot.bots.models import Bot
from chatbot.conversations import actions as conversation_actions
from chatbot.conversations.models import Visitor
from chatbot.knowledge.models import Source, SourceKind
from chatbot.tenants import actions
from chatbot.tenants.models import Membership, Tenant, User
from chatbot.tools import actions as tool_actions
from chatbot.tools.models import Action, ActionKind

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
EXAMPLES = 10
_started = time.monotonic()


@pytest.fixture
def _keep_the_test_connection() -> Any:
    # Django's WSGI handler closes the database connection when a request ends; the test's
    # transaction lives on it (Django's test Client disconnects the same signal).
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def key(_keep_the_test_connection: None, acme: Tenant, alice: User) -> str:
    bot = Bot.objects.create(tenant=acme, name="Helper")
    visitor = Visitor.objects.create(bot=bot)
    received = conversation_actions.receive_visitor_message(
        visitor, None, client_id="c1", text="Hello"
    )
    Source.objects.create(bot=bot, kind=SourceKind.TEXT, title="Returns", body="30 days")
    # Lists of actions, calls and contacts answer real rows (a built-in: a test calls nothing).
    action = Action.objects.create(
        tenant=acme, kind=ActionKind.SHOW_CARD, name="show_card", title="Card", description="d"
    )
    action.bots.add(bot)
    tool_actions.capture_lead(received.conversation.pk, {"name": "Ann", "email": "a@example.com"})
    _key, secret = actions.create_api_key(Membership.objects.get(user=alice), "fuzz", "read_write")
    return secret


@pytest.mark.django_db
@override_settings(WIDGET_RATE_LIMITS={"api:key": (100_000, 60)}, ALLOWED_HOSTS=["*"])
@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx_and_answers_match_the_schema(case: Any, key: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {key}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


def test_zz_schema_fuzz_time() -> None:
    # The suite's time matters: say what this part cost (see scripts/run_tests.py).
    print(f"parley: schemathesis API fuzz took {time.monotonic() - _started:.1f} s")
