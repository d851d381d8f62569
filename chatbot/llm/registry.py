"""The operator's endpoints as database rows (so bots can route to them and the admin can edit).

Declared endpoints (LLM_ENDPOINTS_FILE / LLM_ENDPOINTS) are upserted once per process, the
first time anything needs an endpoint; the environment is their source of truth, so a row
dropped from the file is disabled (not deleted: bots' routes keep pointing at it). When
nothing is declared and LLM_AUTODETECT is on, a local Ollama or llama-server found by
`detect` is added the same way (source "autodetect").
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save

from . import detect
from .models import BotRoute, ModelEndpoint, Source
from .spec import EndpointSpec, declared_specs

log = logging.getLogger(__name__)

_synced = False
_sync_lock = threading.Lock()

_SPEC_TO_ROW = (
    "kind",
    "base_url",
    "model",
    "auth",
    "auth_header",
    "aws_access_key_id",
    "region",
    "connect_timeout",
    "first_token_timeout",
    "idle_timeout",
    "queue_timeout",
    "max_concurrency",
    "context_window",
    "chars_per_token",
    "images",
    "embeddings",
    "embedding_model",
    "breaker_failures",
    "breaker_cooldown",
)


def upsert_operator_endpoint(spec: EndpointSpec, source: str, position: int) -> ModelEndpoint:
    row = ModelEndpoint.objects.filter(tenant__isnull=True, name=spec.name).first()
    if row is None:
        row = ModelEndpoint(tenant=None, name=spec.name)
    changed = row.pk is None or row.source != source or row.position != position
    for attr in _SPEC_TO_ROW:
        value = getattr(spec, attr)
        if getattr(row, attr) != value:
            setattr(row, attr, value)
            changed = True
    if row.secret != spec.api_key:
        row.set_secret(spec.api_key)
        changed = True
    if not row.enabled and source == Source.CONFIG:
        row.enabled = True
        changed = True
    row.source = source
    row.position = position
    if changed:
        row.save()
    return row


def sync_declared() -> list[ModelEndpoint]:
    specs = declared_specs()
    with transaction.atomic():
        rows = [
            upsert_operator_endpoint(spec, Source.CONFIG, position)
            for position, spec in enumerate(specs)
        ]
        ModelEndpoint.objects.filter(tenant__isnull=True, source=Source.CONFIG).exclude(
            pk__in=[r.pk for r in rows]
        ).update(enabled=False)
    forget_routes()
    return rows


def _adopt_detected() -> None:
    if not settings.LLM_AUTODETECT:
        return
    if (
        ModelEndpoint.objects.filter(tenant__isnull=True, enabled=True)
        .exclude(source=Source.AUTODETECT)
        .exists()
    ):
        return
    found = detect.detected()
    base = 1000  # after anything the operator adds later
    for offset, spec in enumerate(found.specs):
        try:
            with transaction.atomic():
                upsert_operator_endpoint(spec, Source.AUTODETECT, base + offset)
        except IntegrityError:
            pass  # another process adopted it at the same moment


def ensure_ready() -> None:
    """Sync declared endpoints once per process, and adopt detected ones when there are none.

    Cheap after the first call (detection results are cached; see `detect`).
    """
    global _synced
    with _sync_lock:
        if not _synced:
            try:
                sync_declared()
            except IntegrityError:
                # Several processes starting together insert the same names; the loser's
                # second pass finds the rows and updates them.
                sync_declared()
            _synced = True
    _adopt_detected()


def reset() -> None:
    """Forget that the sync ran (tests change the declared endpoints)."""
    global _synced
    _synced = False
    forget_routes()


# Bots' routes as replies use them (`service.resolve_route`), kept a few seconds per bot. A
# change made in this process clears them at once (the signals below, and the bulk writes
# here and in `service.set_bot_route` call `forget_routes`); other processes see a change
# within `service.ROUTE_CACHE_SECONDS`.
route_cache: dict[int, tuple[float, Any]] = {}


def forget_routes(**_: object) -> None:
    route_cache.clear()


for _model in (ModelEndpoint, BotRoute):
    post_save.connect(forget_routes, sender=_model, dispatch_uid=f"routes.save.{_model.__name__}")
    post_delete.connect(
        forget_routes, sender=_model, dispatch_uid=f"routes.delete.{_model.__name__}"
    )


def operator_endpoints() -> list[ModelEndpoint]:
    ensure_ready()
    return list(ModelEndpoint.objects.filter(tenant__isnull=True, enabled=True))
