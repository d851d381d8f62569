"""The seam through which domains announce business events (conversation.created,
message.created, source.synced...) to whoever listens (the webhooks app), without importing it.

    events.emit(bot_id, "conversation.closed", lambda: {...}, order_key=conversation.public_id)

A listener may come with `wants(bot_id)`, a cheap test that `emit` asks first: the webhooks
app's is a per-bot flag ("does this workspace have an enabled endpoint?") remembered in the
process and shared through the cache, so for a workspace without webhooks an event costs a
dictionary look-up and nothing else: no callback, no query. Otherwise `emit` registers one
after-commit callback (nothing is announced for a rolled-back write) that calls the listener;
`build` runs only then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)

Build = Callable[[], dict[str, Any]]
Listener = Callable[[int, str, Build, str], None]
Wants = Callable[[int], bool]
_listeners: list[tuple[Listener, Wants | None]] = []


def listen(listener: Listener, wants: Wants | None = None) -> None:
    if all(known is not listener for known, _ in _listeners):
        _listeners.append((listener, wants))


def emit(bot_id: int, event_type: str, build: Build, *, order_key: str = "") -> None:
    """Announce `event_type` for the bot's workspace after the current transaction commits."""
    interested = [listener for listener, wants in _listeners if wants is None or wants(bot_id)]
    if not interested:
        return

    def announce() -> None:
        for listener in interested:
            try:
                listener(bot_id, event_type, build, order_key)
            except Exception:  # a listener's failure must never undo or break the write
                log.exception("events: listener failed for %s", event_type)

    transaction.on_commit(announce)
