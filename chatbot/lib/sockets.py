"""The base of Parley's WebSocket consumers: events come from `fanout`, not a layer channel.

channels gives every consumer a channel of its own on the channel layer and, before every
message it dispatches, closes stale database connections in the database thread. Parley's
sockets receive their group events from this process's fan-out queue instead (no Redis round
trip, no per-socket Redis channel), and their database calls manage connections themselves
(`chatbot.lib.db.db_async`), so a delta reaches a socket without leaving the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.utils import await_many_dispatch

from chatbot.core import metrics

from . import fanout

_ids = itertools.count(1)


class FanoutWebsocketConsumer(AsyncWebsocketConsumer):
    """Subclasses `follow` groups; events published there arrive as `{"type": ...}` messages
    dispatched to their handler methods, in order, between the client's frames."""

    socket_kind: metrics.SocketKind
    events: asyncio.Queue[dict[str, Any]]
    followed: set[str]
    counted = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        self.channel_layer = None
        # Unique in the cluster: `sender` fields name the socket that caused an event.
        self.channel_name = f"sock.{fanout.PROCESS_ID}.{next(_ids)}"
        self.events = asyncio.Queue()
        self.followed = set()
        self.base_send = send
        try:
            await await_many_dispatch([receive, self.events.get], self.dispatch)
        except StopConsumer:
            pass
        finally:
            for group in self.followed:
                fanout.unsubscribe(group, self.events)
            self.followed = set()
            if self.counted:
                metrics.socket_closed(self.socket_kind)

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        if not self.counted:
            self.counted = True
            metrics.socket_opened(self.socket_kind)

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def follow(self, group: str) -> None:
        """Receive the group's events from now on (returns once other processes know)."""
        if group not in self.followed:
            self.followed.add(group)
            await fanout.subscribe(group, self.events)

    def unfollow(self, group: str) -> None:
        if group in self.followed:
            self.followed.discard(group)
            fanout.unsubscribe(group, self.events)

    def unfollow_all(self) -> None:
        """Stop every group's events (a socket whose rights were revoked, before it closes)."""
        for group in list(self.followed):
            self.unfollow(group)
