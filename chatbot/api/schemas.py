"""Pieces the API's routers share: safe text, cursor pages, id lookups."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from django.db.models import Model, Q, QuerySet
from ninja import Schema
from pydantic import AfterValidator, Field

from chatbot.lib import ids

from .errors import ApiError, not_found

PUBLIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
DEFAULT_LIMIT = 25
MAX_LIMIT = 100


def _clean_text(value: str) -> str:
    # PostgreSQL refuses NUL in text and UTF-8 cannot carry lone surrogates: say which
    # field instead of failing in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("must not contain lone surrogates")
    return value


Text = Annotated[str, AfterValidator(_clean_text)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]


class ErrorDetail(Schema):
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorDetail


# What any operation may answer besides success (the error shape of errors.py).
ERROR_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 413, 415, 422, 429})


def with_errors(schema: Any, status: int = 200) -> dict[int | frozenset[int], Any]:
    """The `response=` of an operation: its success schema, and the error shape for 4xx."""
    return {status: schema, ERROR_STATUSES: ErrorOut}


def check_public_id(value: str, what: str) -> str:
    if not PUBLIC_ID.match(value):
        raise not_found(what)
    return value


def decode_or_404(kind: str, value: str, what: str) -> int:
    pk = ids.decode(kind, value)
    if pk is None:
        raise not_found(what)
    return pk


# --- Cursor pagination ------------------------------------------------------------------------
# Cursors are opaque: the position (a time and an obfuscated id) of the last row returned.


def _bad_cursor() -> ApiError:
    return ApiError(400, "The cursor is not valid; start again without it.", "bad_cursor")


def page_by_pk(
    queryset: QuerySet[Any], cursor: str | None, limit: int, kind: str
) -> tuple[list[Any], str | None]:
    """Newest first by primary key."""
    queryset = queryset.order_by("-pk")
    if cursor:
        pk = ids.decode("cur" + kind, cursor)
        if pk is None:
            raise _bad_cursor()
        queryset = queryset.filter(pk__lt=pk)
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ids.encode("cur" + kind, rows[-1].pk) if more else None


def page_by_time(
    queryset: QuerySet[Any], cursor: str | None, limit: int, field: str
) -> tuple[list[Any], str | None]:
    """Newest first by `field` (a datetime), ties broken by primary key."""
    queryset = queryset.order_by(f"-{field}", "-pk")
    if cursor:
        micros, _, rest = cursor.partition(".")
        pk = ids.decode("cur", rest)
        if not micros.isdigit() or len(micros) > 18 or pk is None:
            raise _bad_cursor()
        at = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
        queryset = queryset.filter(Q(**{f"{field}__lt": at}) | Q(**{field: at, "pk__lt": pk}))
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if not more:
        return rows, None
    last: Model = rows[-1]
    stamp = getattr(last, field)
    micros_out = int(stamp.timestamp()) * 1_000_000 + stamp.microsecond
    return rows, f"{micros_out}.{ids.encode('cur', last.pk)}"
