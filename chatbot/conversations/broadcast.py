"""Announce conversation events to everyone watching `conv.<id>` (visitor tabs, agents).

Callers in a transaction wrap `broadcast` in `transaction.on_commit`: an event must never
describe a row that a rollback took back. Delivery goes through `chatbot.lib.fanout`: at once
to this process's sockets, once through Redis to other processes; `broadcast` never waits for
the event loop, so a database thread that commits is free at once.
"""

from __future__ import annotations

from typing import Any

from chatbot.lib import fanout

EVENT_TYPE = "conv.event"


def group_for(conversation_id: int) -> str:
    return f"conv.{int(conversation_id)}"


def broadcast(conversation_id: int, event: dict[str, Any]) -> None:
    """From any thread (after commit): scheduled, not waited for."""
    fanout.publish_soon(group_for(conversation_id), {"type": EVENT_TYPE, "event": event})


async def abroadcast(conversation_id: int, event: dict[str, Any]) -> None:
    """From the event loop (the reply task's deltas)."""
    fanout.publish(group_for(conversation_id), {"type": EVENT_TYPE, "event": event})
