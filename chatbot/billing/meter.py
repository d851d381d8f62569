"""Live usage of the current month and the quota check on the reply path.

Budget (the reply path is tuned for CPU per reply): one Redis round trip per reply and no
database query. The plan and the suspension come with the bot the reply already loads
(`select_related("tenant__billing__plan")`). At the start of a reply `areserve` runs one Lua
script that, atomically for every process, refuses when the month's replies or tokens have
reached the plan's limit and otherwise counts the reply, keyed by its message id (a second
call for the same message counts nothing). At the end, the reply's tokens ride in the
pipeline that already forgets the streaming text (`TokenRecord`, keyed by the message id too),
so they cost no round trip of their own.

Without REDIS_URL (the embedded mode: one process) the counters live in the local-memory
cache under a lock. Months are calendar months in UTC.

The durable record is the messages themselves: `reconcile` raises a counter that Redis lost
(a restart without persistence, or a fresh embedded process) to what the database holds,
once per tenant and month; the periodic task `billing.tasks.check_usage` calls it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from redis.exceptions import RedisError

from chatbot.lib import redis_clients

if TYPE_CHECKING:
    from chatbot.bots.models import Bot

    from .models import Plan

log = logging.getLogger(__name__)

# Counters outlive their month long enough for the month's last roll-up and the meter page.
TTL_SECONDS = 40 * 24 * 3600
# Error codes of replies refused here: such a reply made no model call and is not counted.
QUOTA_EXCEEDED = "quota_exceeded"
SUSPENDED = "workspace_suspended"
REFUSAL_CODES = (QUOTA_EXCEEDED, SUSPENDED)

VISITOR_MESSAGES = {
    QUOTA_EXCEEDED: "The assistant cannot answer right now. You can ask for a person, "
    "or try again later.",
    SUSPENDED: "This assistant is unavailable.",
}


@dataclass(frozen=True, slots=True)
class Limits:
    tenant_id: int
    messages: int | None
    tokens: int | None
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    visitor_message: str
    owner_reason: str


def month_of(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m")


def _keys(tenant_id: int, month: str) -> tuple[str, str]:
    # One hash tag per tenant: every key a script touches lives in the same cluster slot.
    base = redis_clients.key("usage", f"{{{tenant_id}}}", month)
    return f"{base}:replies", f"{base}:tokens"


def _marker(tenant_id: int, kind: str, message_id: int) -> str:
    return redis_clients.key("usage", f"{{{tenant_id}}}", kind, message_id)


def limits_for_plan(tenant_id: int, plan: Plan | None, *, suspended: bool = False) -> Limits:
    if plan is None:
        return Limits(tenant_id, None, None, suspended)
    return Limits(tenant_id, plan.monthly_messages, plan.monthly_tokens, suspended)


def limits_for_bot(bot: Bot) -> Limits:
    """The bot's tenant's limits, read from rows the caller loaded with
    `select_related("tenant__billing__plan")` (no query then)."""
    account = getattr(bot.tenant, "billing", None)  # None: no account row (unlimited)
    if account is None:
        return Limits(bot.tenant_id, None, None)
    return limits_for_plan(bot.tenant_id, account.plan, suspended=account.suspended)


def tenant_suspended(bot: Bot) -> bool:
    """Whether the bot's workspace is suspended, from rows loaded with
    `select_related("tenant__billing")` (no query then)."""
    account = getattr(bot.tenant, "billing", None)
    return account is not None and account.suspended


RESERVE = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local limit = tonumber(ARGV[1])
if limit >= 0 and tonumber(redis.call('get', KEYS[2]) or '0') >= limit then return 1 end
local token_limit = tonumber(ARGV[2])
if token_limit >= 0 and tonumber(redis.call('get', KEYS[3]) or '0') >= token_limit then
  return 2
end
redis.call('set', KEYS[1], 1, 'EX', ARGV[3])
redis.call('incr', KEYS[2])
redis.call('expire', KEYS[2], ARGV[3])
return 0
"""

ADD_TOKENS = """
if redis.call('set', KEYS[1], 1, 'NX', 'EX', ARGV[2]) then
  redis.call('incrby', KEYS[2], ARGV[1])
  redis.call('expire', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

RAISE_TO = """
if redis.call('set', KEYS[3], 1, 'NX', 'EX', ARGV[3]) then
  for i = 1, 2 do
    local current = tonumber(redis.call('get', KEYS[i]) or '0')
    if tonumber(ARGV[i]) > current then redis.call('set', KEYS[i], ARGV[i], 'EX', ARGV[3]) end
  end
  return 1
end
return 0
"""

_local_lock = threading.Lock()


def _refusal(outcome: int, limits: Limits) -> Refusal | None:
    if outcome == 1:
        return Refusal(
            QUOTA_EXCEEDED,
            VISITOR_MESSAGES[QUOTA_EXCEEDED],
            f"The plan's {limits.messages:,} bot replies this month are used up; the bot "
            "does not answer until next month or a larger plan.",
        )
    if outcome == 2:
        return Refusal(
            QUOTA_EXCEEDED,
            VISITOR_MESSAGES[QUOTA_EXCEEDED],
            f"The plan's {limits.tokens:,} model tokens this month are used up; the bot "
            "does not answer until next month or a larger plan.",
        )
    return None


def _reserve_locally(limits: Limits, message_id: int, month: str) -> int:
    replies_key, tokens_key = _keys(limits.tenant_id, month)
    marker = _marker(limits.tenant_id, "msg", message_id)
    with _local_lock:
        if cache.get(marker) is not None:
            return 0
        if limits.messages is not None and int(cache.get(replies_key, 0)) >= limits.messages:
            return 1
        if limits.tokens is not None and int(cache.get(tokens_key, 0)) >= limits.tokens:
            return 2
        cache.set(marker, 1, TTL_SECONDS)
        cache.set(replies_key, int(cache.get(replies_key, 0)) + 1, TTL_SECONDS)
    return 0


async def areserve(limits: Limits, message_id: int) -> Refusal | None:
    """Count the reply `message_id` against its tenant's month, or refuse it (one round trip).

    While Redis is unreachable replies go through uncounted here (logged); the roll-up
    still counts them from their rows.
    """
    if limits.suspended:
        return Refusal(
            SUSPENDED,
            VISITOR_MESSAGES[SUSPENDED],
            "The workspace is suspended by the platform's operator.",
        )
    month = month_of()
    client = redis_clients.async_client()
    if client is None:
        return _refusal(_reserve_locally(limits, message_id, month), limits)
    replies_key, tokens_key = _keys(limits.tenant_id, month)
    marker = _marker(limits.tenant_id, "msg", message_id)
    try:
        outcome = await client.eval(
            RESERVE,
            3,
            marker,
            replies_key,
            tokens_key,
            -1 if limits.messages is None else limits.messages,
            -1 if limits.tokens is None else limits.tokens,
            TTL_SECONDS,
        )
    except RedisError as exc:
        log.warning("usage not counted for message %s (Redis: %s)", message_id, exc)
        return None
    return _refusal(int(outcome), limits)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A reply's tokens, added to its tenant's month once (keyed by the message id).

    `queue` adds the command to a pipeline the caller executes anyway; `apply_locally` is
    the embedded mode's equivalent.
    """

    tenant_id: int
    message_id: int
    tokens: int

    def _keys(self) -> tuple[str, str]:
        return _marker(self.tenant_id, "tok", self.message_id), _keys(self.tenant_id, month_of())[1]

    def queue(self, pipe: Any) -> None:
        marker, tokens_key = self._keys()
        pipe.eval(ADD_TOKENS, 2, marker, tokens_key, self.tokens, TTL_SECONDS)

    def apply_locally(self) -> None:
        marker, tokens_key = self._keys()
        with _local_lock:
            if cache.add(marker, 1, TTL_SECONDS):
                cache.set(tokens_key, int(cache.get(tokens_key, 0)) + self.tokens, TTL_SECONDS)


def usage_now(tenant_id: int, month: str | None = None) -> tuple[int, int]:
    """(replies, tokens) counted this month so far (sync: dashboard pages, tasks)."""
    replies_key, tokens_key = _keys(tenant_id, month or month_of())
    client = redis_clients.sync_client()
    if client is None:
        return int(cache.get(replies_key, 0)), int(cache.get(tokens_key, 0))
    try:
        replies, tokens = client.mget([replies_key, tokens_key])
    except RedisError as exc:
        log.warning("usage not readable (Redis: %s)", exc)
        return 0, 0
    return int(replies or 0), int(tokens or 0)


def reconcile(tenant_id: int, month: str, replies: int, tokens: int) -> bool:
    """Raise the month's counters to what the database holds, once per tenant and month
    (again after Redis lost the keys). True when this call did it."""
    replies_key, tokens_key = _keys(tenant_id, month)
    seeded = redis_clients.key("usage", f"{{{tenant_id}}}", month, "seeded")
    client = redis_clients.sync_client()
    if client is None:
        with _local_lock:
            if not cache.add(seeded, 1, TTL_SECONDS):
                return False
            for counter, value in ((replies_key, replies), (tokens_key, tokens)):
                if value > int(cache.get(counter, 0)):
                    cache.set(counter, value, TTL_SECONDS)
        return True
    try:
        done = client.eval(
            RAISE_TO, 3, replies_key, tokens_key, seeded, replies, tokens, TTL_SECONDS
        )
    except RedisError as exc:
        log.warning("usage not reconciled (Redis: %s)", exc)
        return False
    return bool(done)
