"""The bot behind a widget key is kept in the process until something about it changes.

Handshakes after the first read no bot row; an owner's change that affects who may connect
(disabling the bot, a new public key, a removed origin, a suspended workspace) reaches the
kept bot through the same revocation notice that closes open sockets, so the very next
handshake is refused; a bot that is refused is never kept, so enabling it again (which sends
no notice here, the test writes the row directly) applies at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async

from chatbot.billing import actions as billing_actions
from chatbot.bots import actions as bot_actions
from chatbot.bots.models import Bot
from widget import botcache

from .conftest import SHOP, connect
from .test_revocation import owner_does

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The keys whose bot row was read."""
    seen: list[str] = []
    read = botcache.read_bot

    def counting(key: str) -> Bot | None:
        seen.append(key)
        return read(key)

    monkeypatch.setattr(botcache, "read_bot", counting)
    botcache.clear()
    yield seen
    botcache.clear()


async def handshake(bot: Bot, origin: str = SHOP, key: str | None = None) -> bool:
    comm = connect(bot, origin)
    if key is not None:
        comm.scope["path"] = comm.scope["path"].replace(bot.public_key, key)
    connected, _ = await comm.connect()
    if connected:
        await comm.disconnect()
    return connected


async def test_handshakes_after_the_first_read_no_bot_row(acme_bot: Bot, reads: list[str]) -> None:
    for _ in range(5):
        assert await handshake(acme_bot)
    # The first look-up reads the row twice: before and after following the bot's notices.
    assert reads == [acme_bot.public_key] * 2


async def test_disabling_the_bot_refuses_the_next_handshake(
    acme_bot: Bot, reads: list[str]
) -> None:
    assert await handshake(acme_bot)
    await owner_does(bot_actions.update_bot, acme_bot, None, enabled=False)
    assert not await handshake(acme_bot)


async def test_a_removed_origin_is_refused_at_once(acme_bot: Bot, reads: list[str]) -> None:
    assert await handshake(acme_bot)
    await owner_does(bot_actions.update_bot, acme_bot, None, allowed_origins=["https://x.test"])
    assert not await handshake(acme_bot)
    assert await handshake(acme_bot, origin="https://x.test")


async def test_an_added_origin_is_allowed_at_once(acme_bot: Bot, reads: list[str]) -> None:
    assert not await handshake(acme_bot, origin="https://new.test")
    assert await handshake(acme_bot)  # the bot is kept now
    await owner_does(
        bot_actions.update_bot, acme_bot, None, allowed_origins=[SHOP, "https://new.test"]
    )
    assert await handshake(acme_bot, origin="https://new.test")


async def test_a_rotated_key_stops_the_old_one_at_once(acme_bot: Bot, reads: list[str]) -> None:
    old_key = acme_bot.public_key
    assert await handshake(acme_bot)
    await owner_does(bot_actions.rotate_public_key, acme_bot, None)
    assert not await handshake(acme_bot, key=old_key)
    fresh = await database_sync_to_async(Bot.objects.get)(pk=acme_bot.pk)
    assert await handshake(fresh)


async def test_a_suspended_workspace_is_refused_at_once(acme_bot: Bot, reads: list[str]) -> None:
    assert await handshake(acme_bot)
    tenant = await database_sync_to_async(lambda: acme_bot.tenant)()
    await database_sync_to_async(billing_actions.suspend)(tenant, None, "unpaid")
    assert not await handshake(acme_bot)
    await database_sync_to_async(billing_actions.resume)(tenant, None)
    assert await handshake(acme_bot)  # a refused bot was not kept: no notice needed


async def test_a_bot_enabled_again_without_a_notice_is_served_at_once(
    acme_bot: Bot, reads: list[str]
) -> None:
    await database_sync_to_async(Bot.objects.filter(pk=acme_bot.pk).update)(enabled=False)
    assert not await handshake(acme_bot)
    await database_sync_to_async(Bot.objects.filter(pk=acme_bot.pk).update)(enabled=True)
    assert await handshake(acme_bot)


async def test_an_unknown_key_is_refused_and_not_kept(acme_bot: Bot, reads: list[str]) -> None:
    assert not await handshake(acme_bot, key="nope" * 6)
    assert not await handshake(acme_bot, key="nope" * 6)
    assert reads == ["nope" * 6] * 2
