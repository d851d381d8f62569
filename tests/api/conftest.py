"""API clients for the personas: `api_for(alice)` is a read-write key created by Alice."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from chatbot.tenants import actions
from chatbot.tenants.models import Membership, User

ApiFor = Callable[..., Client]


def key_client(user: User, scope: str = "read_write") -> Client:
    membership = Membership.objects.select_related("tenant").get(user=user)
    _key, secret = actions.create_api_key(membership, f"{user.email} {scope}", scope)
    return Client(headers={"authorization": f"Bearer {secret}"})


@pytest.fixture
def api_for() -> ApiFor:
    return key_client
