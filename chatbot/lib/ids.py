"""Opaque public ids for rows whose primary key is a counter (bots, sources, members).

`bot_3k9x…` is the row's integer key run through a keyed 64-bit permutation (a four-round
Feistel network with HMAC-SHA256 rounds), so ids look random, reveal neither how many rows
exist nor their order, and need no stored column. The key derives from SECRET_KEY: an
operator who replaces SECRET_KEY outright (rather than through SECRET_KEY_FALLBACKS' rotation
of signatures) changes these ids too. Anything that does not decode is treated as missing.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings

_MASK32 = 0xFFFFFFFF
_ROUNDS = 4
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_PK = 2**53
# The largest id any table can hold (a signed 64-bit integer): a longer number reaching a
# query overflows SQLite's binding (OverflowError) instead of finding nothing.
MAX_DB_ID = 2**63 - 1


def parse_id(value: object) -> int | None:
    """A database id from client text (a filter, a form field), or None when it cannot be
    one: not a whole positive number, or beyond any table's range."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
    else:
        return None
    return number if 0 < number <= MAX_DB_ID else None


@functools.cache
def _key(secret: str) -> bytes:
    return hashlib.sha256(b"parley api ids v1:" + secret.encode()).digest()


def _round(kind: str, number: int, half: int) -> int:
    message = f"{kind}:{number}:{half}".encode()
    digest = hmac.new(_key(settings.SECRET_KEY), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")


def _permute(kind: str, value: int, *, inverse: bool = False) -> int:
    left, right = value >> 32, value & _MASK32
    rounds = range(_ROUNDS - 1, -1, -1) if inverse else range(_ROUNDS)
    for number in rounds:
        if inverse:
            left, right = right ^ _round(kind, number, left), left
        else:
            left, right = right, left ^ _round(kind, number, right)
    return (left << 32) | right


def _base36(value: int) -> str:
    digits = ""
    while True:
        value, rest = divmod(value, 36)
        digits = _ALPHABET[rest] + digits
        if not value:
            return digits


def encode(kind: str, pk: int) -> str:
    """`kind` is the visible prefix ("bot", "src", "usr")."""
    return f"{kind}_{_base36(_permute(kind, int(pk)))}"


def decode(kind: str, public_id: object) -> int | None:
    """The primary key behind `public_id`, or None when it is not one of ours."""
    if not isinstance(public_id, str) or not public_id.startswith(kind + "_"):
        return None
    digits = public_id[len(kind) + 1 :]
    if not 1 <= len(digits) <= 13 or any(c not in _ALPHABET for c in digits):
        return None
    value = int(digits, 36)
    if value >= 2**64:
        return None
    pk = _permute(kind, value, inverse=True)
    return pk if 0 < pk < MAX_PK else None
