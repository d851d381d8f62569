"""Events → deliveries → HTTP POSTs.

`has_endpoints` is the listener's `wants` test (chatbot.lib.events): a workspace with no
enabled endpoint costs a look-up in this process's memory per event. Otherwise `on_event`
(after commit) stores a
Delivery per subscribed endpoint and queues `tasks.deliver`. `send` makes one attempt through
the SSRF-guarded outbound client, signed (signing.py), and on failure schedules the next one
with exponential backoff (30 s doubling to an hour) until a day has passed. Deliveries that
share an order key (a conversation) go one at a time, in order: a later one waits until the
earlier ones are delivered or given up. An endpoint failing for a day is disabled and the
workspace's owners are emailed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
from django import db
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from chatbot.lib import crypto, outbound

from . import signing
from .models import Delivery, DeliveryStatus, Endpoint, new_event_id

log = logging.getLogger(__name__)

RETRY_FOR = timedelta(hours=24)
FIRST_BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 3600
RESPONSE_EXCERPT = 500
# How long an attempt holds its delivery before another worker may try it.
LEASE = timedelta(minutes=2)


def _flag_key(bot_id: int) -> str:
    return f"webhooks:bot:{int(bot_id)}"


# The flag is shared through the cache (Redis when configured) and remembered in this process
# for LOCAL_FLAG_SECONDS, so a busy reply path reads the shared cache once per bot every few
# seconds, not once per event. The price: another process notices a workspace's *first*
# endpoint (or its last one going) up to that long after the change.
LOCAL_FLAG_SECONDS = 10.0
_local_flags: dict[int, tuple[bool, float]] = {}


def has_endpoints(bot_id: int) -> bool:
    """Whether the bot's workspace has an enabled endpoint (cached; no query when known)."""
    now = time.monotonic()
    local = _local_flags.get(bot_id)
    if local is not None and local[1] > now:
        return local[0]
    cached = cache.get(_flag_key(bot_id))
    if cached is None:
        cached = Endpoint.objects.filter(tenant__bots=bot_id, enabled=True).exists()
        cache.set(_flag_key(bot_id), cached, timeout=None)
    _local_flags[bot_id] = (bool(cached), now + LOCAL_FLAG_SECONDS)
    return bool(cached)


def forget_local_flags() -> None:
    """Drop what this process remembers (tests: each starts with an empty cache)."""
    _local_flags.clear()


def forget_flags(tenant_id: int) -> None:
    """Call after an endpoint of the tenant is added, changed or removed."""
    from chatbot.bots.models import Bot

    bot_ids = list(Bot.objects.filter(tenant_id=tenant_id).values_list("pk", flat=True))
    cache.delete_many([_flag_key(pk) for pk in bot_ids])
    for pk in bot_ids:
        _local_flags.pop(pk, None)


def on_event(bot_id: int, event_type: str, build: Any, order_key: str) -> None:
    endpoints = [
        endpoint
        for endpoint in Endpoint.objects.filter(tenant__bots=bot_id, enabled=True)
        if event_type in endpoint.events
    ]
    if not endpoints:
        return
    payload = {
        "id": new_event_id(),
        "type": event_type,
        "created_at": timezone.now().isoformat(),
        "data": build(),
    }
    now = timezone.now()
    created = Delivery.objects.bulk_create(
        Delivery(
            endpoint=endpoint,
            event_id=payload["id"],
            event_type=event_type,
            order_key=order_key[:40],
            payload=payload,
            next_attempt_at=now,
        )
        for endpoint in endpoints
    )
    for delivery in created:
        dispatch(delivery.pk)


def _run_in_thread(delivery_id: int) -> None:
    from .tasks import deliver

    try:
        deliver.apply(args=[delivery_id])
    finally:
        db.connections.close_all()


def dispatch(delivery_id: int) -> None:
    """Queue an attempt: to a Celery worker, or (embedded, no broker) a thread of this
    process, so that the request or reply that raised the event never waits for it."""
    from .tasks import deliver

    in_thread = getattr(settings, "WEBHOOKS_SEND_IN_THREAD", not settings.TESTING)
    if deliver.app.conf.task_always_eager and in_thread:
        threading.Thread(
            target=_run_in_thread, args=(delivery_id,), name=f"webhook-{delivery_id}"
        ).start()
    else:
        deliver.delay(delivery_id)


def backoff(attempts: int) -> timedelta:
    return timedelta(
        seconds=min(FIRST_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    )


def _signing_secrets(endpoint: Endpoint) -> list[str]:
    found = [crypto.decrypt_str(endpoint.secret)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > timezone.now():
        found.append(crypto.decrypt_str(endpoint.previous_secret))
    return found


def _earlier_pending(delivery: Delivery) -> bool:
    if not delivery.order_key:
        return False
    return Delivery.objects.filter(
        endpoint_id=delivery.endpoint_id,
        order_key=delivery.order_key,
        status=DeliveryStatus.PENDING,
        pk__lt=delivery.pk,
    ).exists()


def send(delivery_id: int) -> str:
    """One attempt, if the delivery is due, not held by another attempt, and first in line."""
    now = timezone.now()
    claimed = Delivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + LEASE)
    if not claimed:
        return "not-due"
    delivery = Delivery.objects.select_related("endpoint__tenant").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=now)
        return "endpoint-disabled"
    if _earlier_pending(delivery):
        # Sent when the earlier one settles (see _next_in_line).
        Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=now)
        return "waiting"
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "Parley-Event-Id": delivery.event_id,
        "Parley-Event-Type": delivery.event_type,
        "Parley-Signature": signing.header(_signing_secrets(endpoint), int(time.time()), body),
    }
    started = time.monotonic()
    status_code: int | None = None
    excerpt = error = ""
    try:
        with (
            outbound.client(timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)) as client,
            client.stream("POST", endpoint.url, content=body, headers=headers) as response,
        ):
            status_code = response.status_code
            excerpt = _excerpt(response)
    except outbound.BlockedURL as exc:
        error = f"refused: {exc}"
    except httpx.TimeoutException:
        error = f"timed out after {settings.WEBHOOK_TIMEOUT_SECONDS:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    latency = int((time.monotonic() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    _record(delivery, ok=ok, status_code=status_code, latency=latency, excerpt=excerpt, error=error)
    return "delivered" if ok else "failed"


def _excerpt(response: httpx.Response) -> str:
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= RESPONSE_EXCERPT:
            break
    return data[:RESPONSE_EXCERPT].decode("utf-8", "replace").replace("\x00", "")


def _record(
    delivery: Delivery, *, ok: bool, status_code: int | None, latency: int, excerpt: str, error: str
) -> None:
    now = timezone.now()
    attempts = delivery.attempts + 1
    fields: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": status_code,
        "last_latency_ms": latency,
        "last_response": excerpt,
        "last_error": error[:300] if not ok else "",
    }
    endpoint = delivery.endpoint
    if ok:
        fields |= {"status": DeliveryStatus.SUCCEEDED, "delivered_at": now}
        Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
    elif now - delivery.created_at >= RETRY_FOR:
        fields |= {"status": DeliveryStatus.FAILED}
    else:
        fields |= {"next_attempt_at": now + backoff(attempts)}
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    if not ok:
        _note_failure(endpoint, now)
    if fields.get("status") in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED):
        _next_in_line(delivery)


def _next_in_line(delivery: Delivery) -> None:
    if not delivery.order_key:
        return
    following = (
        Delivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            order_key=delivery.order_key,
            status=DeliveryStatus.PENDING,
            pk__gt=delivery.pk,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        transaction.on_commit(lambda: dispatch(following))


def _note_failure(endpoint: Endpoint, now: Any) -> None:
    Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    since = endpoint.failing_since or now
    if endpoint.enabled and now - since >= RETRY_FOR:
        disable_failing(endpoint)


def disable_failing(endpoint: Endpoint) -> None:
    """A day of failures: stop sending and tell the owners."""
    from chatbot.tenants.models import Membership, Role

    updated = Endpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_reason="Every delivery failed for 24 hours."
    )
    if not updated:
        return
    forget_flags(endpoint.tenant_id)
    owners = list(
        Membership.objects.filter(tenant_id=endpoint.tenant_id, role=Role.OWNER).values_list(
            "user__email", flat=True
        )
    )
    if owners:
        send_mail(
            "A Parley webhook endpoint was disabled",
            f"Every delivery to {endpoint.url} failed for 24 hours, so Parley stopped sending "
            "to it. Fix the receiver, then enable the endpoint again in Dashboard → Webhooks "
            "(and use 'Send again' for the deliveries you need).\n",
            None,
            owners,
        )
    log.warning("webhooks: endpoint %s disabled after a day of failures", endpoint.public_id)


def send_due(limit: int = 500) -> int:
    """Attempt every pending delivery whose time has come (run periodically)."""
    due = list(
        Delivery.objects.filter(
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=timezone.now(),
            endpoint__enabled=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in due:
        send(delivery_id)
    return len(due)
