"""Visitor session tokens, resume secrets, and identity tokens signed by host sites.

- Session token: HS256 JWT signed with a key derived from SECRET_KEY, 15 minutes, bound to
  the bot (public key + session generation), the visitor and the host page's origin (`aud`).
- Resume secret: a long-lived signed value that brings the same anonymous visitor back.
- Identity token: HS256 JWT the host's server signs with the bot's identity secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.core import signing

from chatbot.bots.models import Bot
from chatbot.bots.snippets import site_origin

SESSION_TTL_SECONDS = 15 * 60
RESUME_MAX_AGE_SECONDS = 180 * 24 * 3600
IDENTITY_MAX_LIFETIME_SECONDS = 24 * 3600
_RESUME_SALT = "parley.widget.resume"
_LEEWAY_SECONDS = 30


class TokenError(Exception):
    """A token that cannot be used; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _session_key() -> bytes:
    # A derived key: a leaked session token never helps forge anything else signed with
    # SECRET_KEY (sessions, password resets), and vice versa.
    return hmac.new(
        settings.SECRET_KEY.encode(), b"parley.widget.session.v1", hashlib.sha256
    ).digest()


@dataclass(frozen=True, slots=True)
class VisitorClaims:
    bot_key: str
    visitor_id: str
    origin: str
    generation: int
    preview: bool
    expires_at: int

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


def issue_session_token(
    bot: Bot, visitor_id: str, origin: str, *, preview: bool = False
) -> tuple[str, int]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "typ": "visitor",
        "bot": bot.public_key,
        "vid": visitor_id,
        "aud": origin,
        "gen": bot.session_generation,
        "iat": now,
        "exp": now + SESSION_TTL_SECONDS,
    }
    if preview:
        claims["pv"] = True
    return jwt.encode(claims, _session_key(), algorithm="HS256"), SESSION_TTL_SECONDS


def read_session_token(token: object) -> VisitorClaims:
    """Verify the signature and expiry; the caller checks bot, generation and origin."""
    if not isinstance(token, str) or not token or len(token) > 2000:
        raise TokenError("bad_token", "No session token, or not a string.")
    try:
        claims = jwt.decode(
            token,
            _session_key(),
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "aud"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "The session token has expired.") from None
    except jwt.PyJWTError:
        raise TokenError("bad_token", "The session token is not valid.") from None
    if claims.get("typ") != "visitor":
        raise TokenError("bad_token", "This is not a visitor session token.")
    try:
        return VisitorClaims(
            bot_key=str(claims["bot"]),
            visitor_id=str(claims["vid"]),
            origin=str(claims["aud"]),
            generation=int(claims["gen"]),
            preview=bool(claims.get("pv", False)),
            expires_at=int(claims["exp"]),
        )
    except (KeyError, TypeError, ValueError):
        raise TokenError("bad_token", "The session token is missing claims.") from None


def check_claims_for_bot(claims: VisitorClaims, bot: Bot) -> None:
    """The token must be for this bot, not revoked by a rotation, for an allowed origin."""
    if not hmac.compare_digest(claims.bot_key, bot.public_key):
        raise TokenError("bad_token", "The session token is for another bot.")
    if claims.generation != bot.session_generation:
        raise TokenError("bad_token", "The session token was revoked (keys rotated).")
    if claims.preview:
        if claims.origin != site_origin():
            raise TokenError("bad_token", "A preview token is only valid on the platform.")
    elif not bot.allows_origin(claims.origin):
        raise TokenError("origin_not_allowed", "This site is not allowed to use this bot.")


# --- Resume secrets ---------------------------------------------------------------------------


def issue_resume_secret(bot: Bot, visitor_id: str) -> str:
    return signing.dumps({"b": bot.pk, "v": visitor_id}, salt=_RESUME_SALT, compress=False)


def read_resume_secret(secret: object, bot: Bot) -> str | None:
    """The visitor id inside a valid resume secret for this bot, else None (never an error)."""
    if not isinstance(secret, str) or not secret or len(secret) > 500:
        return None
    try:
        value = signing.loads(secret, salt=_RESUME_SALT, max_age=RESUME_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(value, dict) or value.get("b") != bot.pk:
        return None
    visitor_id = value.get("v")
    return visitor_id if isinstance(visitor_id, str) else None


# --- Identity tokens from host sites ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostIdentity:
    external_id: str
    name: str
    email: str


def verify_identity_token(token: object, bot: Bot) -> HostIdentity:
    """Check a host-signed JWT (HS256 only; PyJWT compares signatures in constant time)."""
    if not isinstance(token, str) or not token or len(token) > 4000:
        raise TokenError("bad_identity", "The identity token is empty or too long.")
    if not bot.identity_secret:
        raise TokenError("bad_identity", "This bot has no identity secret.")
    try:
        claims = jwt.decode(
            token,
            bot.identity_secret,
            algorithms=["HS256"],
            options={"require": ["exp", "sub"], "verify_aud": False},
            leeway=_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("bad_identity", "The identity token has expired.") from None
    except jwt.PyJWTError:
        raise TokenError("bad_identity", "The identity token is not valid.") from None
    if int(claims["exp"]) > time.time() + IDENTITY_MAX_LIFETIME_SECONDS + _LEEWAY_SECONDS:
        raise TokenError("bad_identity", "The identity token lives longer than 24 hours.")
    sub = claims["sub"]
    if not isinstance(sub, str | int) or not str(sub).strip() or len(str(sub)) > 200:
        raise TokenError("bad_identity", "The identity token's `sub` must be a user id.")
    name = claims.get("name")
    email = claims.get("email")
    return HostIdentity(
        external_id=str(sub).strip(),
        name=name[:200] if isinstance(name, str) else "",
        email=email[:254] if isinstance(email, str) and "@" in email else "",
    )
