"""Inbox fixtures: Acme's bot, and the widget's scripted model for held replies."""

from __future__ import annotations

import pytest

from chatbot.bots.models import Bot
from chatbot.tenants.models import Tenant
from tests.inbox.helpers import make_bot
from tests.widget.conftest import acme_bot, model  # noqa: F401 (fixtures, re-exported)


@pytest.fixture
def bot(acme: Tenant) -> Bot:
    return make_bot(acme, "Acme helper")


@pytest.fixture
def bravo_bot(bravo: Tenant) -> Bot:
    return make_bot(bravo, "Bravo helper")
