"""The bot behind a widget key, kept in this process until something about it changes.

Every widget socket's handshake looks its bot up by public key, with its workspace's billing
row for the suspension check: one query that was a quarter of the server CPU of opening a
socket (bench/relay_e2e). Here a bot that may take visitors is kept per event loop, and its
entry is dropped:

- when a revocation notice (`chatbot.lib.revocation`) names the bot or its workspace: the
  notices that close the bot's open sockets, sent for every change to who may connect
  (enabled, allowed origins, identity secret, public key, deletion, suspension). The entry
  follows those groups *before* the row it keeps is read, so a change committed after that
  read always reaches it;
- after KEEP_SECONDS in any case (a change made without a notice, e.g. in Django's admin).

A bot that may not take visitors (disabled, workspace suspended) or a key that names none is
not kept: such handshakes read the rows every time, so a bot enabled again, or a suspension
lifted (which sends no notice), applies at once. Each entry is a dictionary look-up; the
cache holds at most MAX_ENTRIES bots, dropping the oldest first.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from chatbot.billing.meter import tenant_suspended
from chatbot.bots.models import Bot
from chatbot.lib import fanout, revocation
from chatbot.lib.db import db_async

KEEP_SECONDS = 30.0
MAX_ENTRIES = 4096


def read_bot(key: str) -> Bot | None:
    """The bot with this public key and its workspace's billing row (sync)."""
    return Bot.objects.filter(public_key=key).select_related("tenant__billing").first()


def _takes_visitors(bot: Bot) -> bool:
    return bot.enabled and not tenant_suspended(bot)


class _Dropper:
    """Follows the bot's revocation groups for its entry: any notice drops the entry."""

    def __init__(self, key: str) -> None:
        self.key = key

    def put_nowait(self, item: dict[str, Any], /) -> None:
        if item.get("type") == revocation.EVENT_TYPE:
            forget(self.key)


@dataclass
class _Entry:
    bot: Bot
    loop: asyncio.AbstractEventLoop
    until: float
    dropper: _Dropper
    groups: tuple[str, ...]


_entries: dict[str, _Entry] = {}
_loading: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[Bot | None]] = {}


async def bot_for_key(key: str) -> Bot | None:
    """The bot behind `key` (None: no such bot). The instance is shared: read it, never
    change it."""
    loop = asyncio.get_running_loop()
    entry = _entries.get(key)
    if entry is not None:
        if entry.loop is loop and entry.until > time.monotonic():
            return entry.bot
        forget(key)
    # Sockets opening at once for one bot share one look-up.
    pending = _loading.get((loop, key))
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[Bot | None] = loop.create_future()
    _loading[(loop, key)] = future
    try:
        bot = await _load(key, loop)
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: concurrent waiters re-raise it, nobody else must
        raise
    else:
        future.set_result(bot)
        return bot
    finally:
        del _loading[(loop, key)]


async def _load(key: str, loop: asyncio.AbstractEventLoop) -> Bot | None:
    bot = await db_async(read_bot)(key)
    if bot is None or not _takes_visitors(bot):
        return bot
    dropper = _Dropper(key)
    followed = (bot.pk, bot.tenant_id)
    groups = (revocation.bot_group(bot.pk), revocation.tenant_group(bot.tenant_id))
    await asyncio.gather(*(fanout.subscribe(group, dropper) for group in groups))
    # Read again now that notices reach the entry: a change committed before this read is
    # in the row, one committed after it sends a notice.
    bot = await db_async(read_bot)(key)
    if bot is None or not _takes_visitors(bot) or (bot.pk, bot.tenant_id) != followed:
        _unfollow(dropper, groups)
        return bot
    if len(_entries) >= MAX_ENTRIES:
        forget(next(iter(_entries)))
    forget(key)  # a concurrent load on another loop may have kept one
    _entries[key] = _Entry(bot, loop, time.monotonic() + KEEP_SECONDS, dropper, groups)
    return bot


def _unfollow(dropper: _Dropper, groups: tuple[str, ...]) -> None:
    for group in groups:
        fanout.unsubscribe(group, dropper)


def forget(key: str) -> None:
    """Drop the entry for `key` (call on its loop)."""
    entry = _entries.pop(key, None)
    if entry is None:
        return
    if entry.loop.is_closed():
        return  # its hub went with its loop
    if entry.loop is _running_loop():
        _unfollow(entry.dropper, entry.groups)
    else:
        entry.loop.call_soon_threadsafe(_unfollow, entry.dropper, entry.groups)


def clear() -> None:
    """Drop every entry (tests)."""
    for key in list(_entries):
        forget(key)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
