"""Encryption of secrets at rest (tenants' model API keys, webhook secrets).

The Fernet key is derived from FIELD_ENCRYPTION_KEY, or from SECRET_KEY when that is unset, so
a fresh install needs no extra variable. Rotating the source key makes stored secrets
unreadable: `decrypt_str` then raises `UndecryptableSecret` with a message saying so.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class UndecryptableSecret(Exception):
    """A stored secret cannot be decrypted (the encryption key changed)."""


@functools.cache
def _fernet_for(source: str) -> Fernet:
    # HKDF turns an arbitrary-length secret into the 32 bytes Fernet wants; the info string
    # keeps this key distinct from any other key derived from the same SECRET_KEY.
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"parley field encryption v1"
    ).derive(source.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


def _fernet() -> Fernet:
    return _fernet_for(settings.FIELD_ENCRYPTION_KEY or settings.SECRET_KEY)


def encrypt_str(value: str) -> str:
    """Encrypt a secret for storage; the empty string stays empty (no secret)."""
    if not value:
        return ""
    return _fernet().encrypt(value.encode()).decode()


def decrypt_str(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(
            "a stored secret cannot be decrypted: FIELD_ENCRYPTION_KEY (or SECRET_KEY) changed "
            "since it was saved; enter the secret again"
        ) from None
