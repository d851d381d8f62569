"""Announce conversation events to everyone watching `conv.<id>` (visitor tabs, agents).

Callers in a transaction wrap these in `transaction.on_commit`: an event must never describe
a row that a rollback took back.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

EVENT_TYPE = "conv.event"


def group_for(conversation_id: int) -> str:
    return f"conv.{int(conversation_id)}"


async def abroadcast(conversation_id: int, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group_for(conversation_id), {"type": EVENT_TYPE, "event": event})
    except Exception:  # a full channel or a Redis blip must not break the writer
        log.exception("broadcast to conversation %s failed", conversation_id)


def broadcast(conversation_id: int, event: dict[str, Any]) -> None:
    async_to_sync(abroadcast)(conversation_id, event)
