"""The seam through which domains announce business events (conversation.created,
message.created, source.synced...) to whoever listens (the webhooks app), without importing it.

    events.emit(bot_id, "conversation.closed", lambda: {...}, order_key=conversation.public_id)

`emit` only registers an after-commit callback: nothing is announced for a rolled-back write.
The callback asks each listener; the webhooks listener first looks up one cached per-bot flag
("does this workspace have an endpoint?") and returns at once when it has none, so the reply
path pays one cache read per event and no query. `build` runs only when someone listens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)

Build = Callable[[], dict[str, Any]]
Listener = Callable[[int, str, Build, str], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def emit(bot_id: int, event_type: str, build: Build, *, order_key: str = "") -> None:
    """Announce `event_type` for the bot's workspace after the current transaction commits."""
    if not _listeners:
        return

    def announce() -> None:
        for listener in _listeners:
            try:
                listener(bot_id, event_type, build, order_key)
            except Exception:  # a listener's failure must never undo or break the write
                log.exception("events: listener failed for %s", event_type)

    transaction.on_commit(announce)
