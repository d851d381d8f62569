"""The widget's public HTTP endpoints (docs/widget-protocol.md, sections 2, 3, 6 and 9)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.core import signing
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from chatbot.billing.meter import tenant_suspended
from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.broadcast import EVENT_TYPE, group_for
from chatbot.conversations.images import ImageRejected, clean_image
from chatbot.conversations.models import Attachment
from chatbot.conversations.payloads import ATTACHMENT_SALT, attachment_payload
from chatbot.conversations.replies import bot_model_status, route_accepts_images
from chatbot.installs.actions import page_without_query, record_sighting
from chatbot.lib import fanout, heavy, revocation
from chatbot.lib.db import db_async
from chatbot.lib.ids import parse_id

from . import ratelimit
from .session import FrameError, WidgetSession, authenticate, parse_frame, revoked_reason
from .tokens import (
    TokenError,
    issue_resume_secret,
    issue_session_token,
    read_resume_secret,
    site_origin,
    verify_identity_token,
)

log = logging.getLogger(__name__)

# The terser build (committed by the front end); loader.js with its comments is over budget.
LOADER_CANDIDATES = ("widget/loader.min.js",)
LOADER_MAX_AGE = 300
SSE_KEEPALIVE_SECONDS = 15.0
SSE_MAX_SECONDS = 300.0
MAX_SESSION_BODY = 8 * 1024
ERROR_STATUS = {
    "bad_request": 400,
    "unknown_type": 400,
    "not_ready": 400,
    "bad_token": 401,
    "token_expired": 401,
    "bad_identity": 401,
    "origin_not_allowed": 403,
    "bot_disabled": 403,
    "not_found": 404,
    "conversation_closed": 409,
    "too_large": 413,
    "unsupported_media": 415,
    "images_not_supported": 415,
    "rate_limited": 429,
}


def error_response(code: str, message: str, retry_after: int | None = None) -> JsonResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if retry_after is not None:
        body["retry_after"] = retry_after
    response = JsonResponse({"error": body}, status=ERROR_STATUS.get(code, 400))
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


def _ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


# --- The loader -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Loader:
    mtime: float
    body: bytes
    gzipped: bytes
    etag: str


_loader_cache: dict[str, _Loader] = {}


def _loader() -> _Loader | None:
    for candidate in LOADER_CANDIDATES:
        found = finders.find(candidate)
        if not found:
            continue
        path = Path(str(found))
        mtime = path.stat().st_mtime
        cached = _loader_cache.get(candidate)
        if cached is None or cached.mtime != mtime:
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:20]
            cached = _Loader(mtime, body, gzip.compress(body, 9, mtime=0), digest)
            _loader_cache[candidate] = cached
        return cached
    return None


@require_GET
def loader_js(request: HttpRequest) -> HttpResponse:
    """`/widget.js`: a stable URL with a short cache and an ETag (the frame's assets are
    versioned and long-cached, so only this small file is ever re-checked)."""
    loader = _loader()
    if loader is None:
        raise Http404("The widget loader is not built.")
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    etag = f'"{loader.etag}-gz"' if use_gzip else f'"{loader.etag}"'
    if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(
            loader.gzipped if use_gzip else loader.body,
            content_type="text/javascript; charset=utf-8",
        )
        if use_gzip:
            response["Content-Encoding"] = "gzip"
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={LOADER_MAX_AGE}"
    response["Vary"] = "Accept-Encoding"
    # Host pages may run with Cross-Origin-Embedder-Policy.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


# --- Config and frame -------------------------------------------------------------------------


def _bot_or_none(key: str) -> Bot | None:
    return Bot.objects.filter(public_key=key).select_related("tenant__billing").first()


def _public_config(bot: Bot) -> dict[str, Any]:
    return bot.widget_config(accepts_images=route_accepts_images(bot), status=bot_model_status(bot))


@require_GET
def bot_config(request: HttpRequest, key: str) -> HttpResponse:
    """The launcher's look, for the loader; only for pages on an allowed origin."""
    bot = _bot_or_none(key)
    if bot is None:
        return error_response("not_found", "No bot has this key.")
    origin = request.headers.get("Origin")
    if not bot.allows_origin(origin):
        return error_response("origin_not_allowed", "This site is not allowed to use this bot.")
    if not bot.enabled or tenant_suspended(bot):
        return error_response("bot_disabled", "This assistant is not available.")
    # The loader sends its page's path: "seen on <site>, last on <page>" for the bot's owner.
    path = request.GET.get("page") or ""
    page = page_without_query(str(origin) + path, str(origin)) if path.startswith("/") else ""
    record_sighting(bot, str(origin), page)
    response = JsonResponse(_public_config(bot))
    response["Access-Control-Allow-Origin"] = str(origin)
    response["Vary"] = "Origin"
    response["Cache-Control"] = "public, max-age=60"
    return response


def _is_manager_of(request: HttpRequest, bot: Bot) -> bool:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    from chatbot.tenants.models import Membership, Role

    return Membership.objects.filter(
        user=user, tenant_id=bot.tenant_id, role__in=[Role.OWNER, Role.ADMIN]
    ).exists()


def frame_csp(bot: Bot, *, preview: bool) -> str:
    ancestors = "'self'" if preview else (" ".join(bot.allowed_origins) or "'none'")
    site = site_origin()
    ws = site.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    images = "'self' data: blob:"
    if bot.avatar_url.startswith("https://"):
        from urllib.parse import urlsplit

        parts = urlsplit(bot.avatar_url)
        images += f" https://{parts.netloc}"
    # Action cards may show images from the bot's own sites (chatbot/tools/cards.py).
    images += "".join(f" {o}" for o in bot.allowed_origins or () if o.startswith("https://"))
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            f"connect-src 'self' {ws}",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {ancestors}",
        ]
    )


def _csrf_passes(request: HttpRequest) -> bool:
    """Django's CSRF check, for the one cookie-trusting case of a CSRF-exempt view."""

    def checked_view(_request: HttpRequest) -> HttpResponse:  # not marked csrf_exempt
        return HttpResponse()

    check = CsrfViewMiddleware(checked_view)
    return check.process_view(request, checked_view, (), {}) is None


def frame_context(bot: Bot, *, preview: bool, csrf: str = "") -> dict[str, Any]:
    site = site_origin()
    ws = site.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return {
        "bot": _public_config(bot),
        "site": site,
        "preview": preview,
        # The preview's session request trusts the member's cookie, so it carries the token.
        "csrf": csrf,
        "urls": {
            "session": reverse("widget:session"),
            "send": reverse("widget:send"),
            "events": reverse("widget:events"),
            "upload": reverse("widget:upload"),
            "ws": f"{ws}/ws/widget/{bot.public_key}",
        },
    }


@require_GET
@xframe_options_exempt  # frame-ancestors (below) decides who may embed it
@never_cache
def frame(request: HttpRequest, key: str) -> HttpResponse:
    bot = _bot_or_none(key)
    preview = request.GET.get("preview") == "1"
    if bot is None or (preview and not _is_manager_of(request, bot)):
        raise Http404("No bot has this key.")
    if (not bot.enabled or tenant_suspended(bot)) and not preview:
        response = HttpResponse(
            "This assistant is not available.", status=404, content_type="text/plain"
        )
        response["Content-Security-Policy"] = "default-src 'none'; frame-ancestors *"
        return response
    config = frame_context(bot, preview=preview, csrf=get_token(request) if preview else "")
    response = render(request, "widget/frame.html", {"config": config})
    response["Content-Security-Policy"] = frame_csp(bot, preview=preview)
    response["Referrer-Policy"] = "no-referrer"
    return response


# --- Session ----------------------------------------------------------------------------------


def _json_body(request: HttpRequest, limit: int) -> dict[str, Any]:
    if len(request.body) > limit:
        raise FrameError("too_large", "The request body is too large.")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        raise FrameError("bad_request", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise FrameError("bad_request", "The body must be a JSON object.")
    return body


@csrf_exempt  # no cookies are trusted here (except for preview, checked by role + origin)
@require_POST
def session(request: HttpRequest) -> HttpResponse:
    try:
        ratelimit.hit("session:ip", _ip(request))
        body = _json_body(request, MAX_SESSION_BODY)
    except ratelimit.RateLimited as exc:
        return error_response("rate_limited", "Too many sessions; wait a moment.", exc.retry_after)
    except FrameError as exc:
        return error_response(exc.code, exc.message)
    key, page_origin = body.get("bot"), body.get("origin")
    if not isinstance(key, str) or not isinstance(page_origin, str):
        return error_response("bad_request", "bot and origin are required strings.")
    bot = _bot_or_none(key)
    if bot is None:
        return error_response("not_found", "No bot has this key.")
    # The request comes from our frame (platform origin) or from the page itself.
    request_origin = request.headers.get("Origin")
    if request_origin not in (site_origin(), page_origin):
        return error_response("origin_not_allowed", "Request from a site that is not allowed.")
    # The endpoint is CSRF-exempt because sites embedding the widget send no cookies; a
    # preview is the one session that trusts the member's cookie, so it must also pass the
    # CSRF check every dashboard POST passes (the preview frame sends the token).
    preview = (
        page_origin == site_origin() and _is_manager_of(request, bot) and _csrf_passes(request)
    )
    if not preview:
        if not bot.allows_origin(page_origin):
            return error_response("origin_not_allowed", "This site is not allowed to use this bot.")
        if not bot.enabled or tenant_suspended(bot):
            return error_response("bot_disabled", "This assistant is not available.")
    identity = None
    if body.get("identity"):
        try:
            identity = verify_identity_token(body["identity"], bot)
        except TokenError as exc:
            return error_response(exc.code, exc.message)
    locale = body.get("locale") if isinstance(body.get("locale"), str) else ""
    visitor = actions.open_visitor(
        bot,
        resume_visitor_id=read_resume_secret(body.get("resume"), bot),
        identity=identity,
        locale=locale or "",
        preview=preview,
        page_url=page_origin,
        user_agent=request.headers.get("User-Agent", ""),
    )
    token, ttl = issue_session_token(bot, visitor.public_id, page_origin, preview=preview)
    response = JsonResponse(
        {
            "token": token,
            "expires_in": ttl,
            "resume": issue_resume_secret(bot, visitor.public_id),
            "visitor": {
                "id": visitor.public_id,
                "name": visitor.name,
                "verified": visitor.verified,
            },
        }
    )
    response["Cache-Control"] = "no-store"
    return response


# --- HTTP fallback ----------------------------------------------------------------------------


def _bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _fallback_session(request: HttpRequest, *, require_origin: bool) -> WidgetSession:
    bot, visitor, claims = await db_async(authenticate)(_bearer(request))
    origin = request.headers.get("Origin")
    if (origin is not None or require_origin) and origin not in (site_origin(), claims.origin):
        raise TokenError("origin_not_allowed", "Request from a site that is not allowed.")
    return WidgetSession(bot, visitor, claims, _ip(request))


FALLBACK_REFUSED = frozenset({"hello", "token.refresh"})


@csrf_exempt  # bearer-token authenticated; cookies play no part
@require_POST
async def send(request: HttpRequest) -> HttpResponse:
    try:
        session = await _fallback_session(request, require_origin=True)
        frame = parse_frame(request.body.decode("utf-8", errors="strict"))
        if frame["type"] in FALLBACK_REFUSED:
            raise FrameError("unknown_type", "Not a fallback frame; see the protocol.")
        if "conversation" in frame or frame["type"] == "message.send":
            session.conversation = await db_async(session.sync_select)(frame.get("conversation"))
        events, reply_conversation = await session.handle(frame)
    except UnicodeDecodeError:
        return error_response("bad_request", "The body is not valid UTF-8.")
    except TokenError as exc:
        return error_response(exc.code, exc.message)
    except FrameError as exc:
        return error_response(exc.code, exc.message, exc.retry_after)
    if reply_conversation is not None:
        actions.start_reply(reply_conversation, session.take_prepared_reply(reply_conversation))
    response = JsonResponse({"events": events})
    response["Cache-Control"] = "no-store"
    return response


def _sse(event: dict[str, Any]) -> str:
    lines = [f"event: {event['type']}"]
    if event["type"] == "message":
        lines.append(f"id: {event['message']['seq']}")
    lines.append("data: " + json.dumps(event, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


@require_GET
async def events(request: HttpRequest) -> HttpResponseBase:
    try:
        session = await _fallback_session(request, require_origin=False)
        session.conversation = await db_async(session.sync_select)(
            request.GET.get("conversation") or None
        )
        raw_after = request.GET.get("after") or request.headers.get("Last-Event-ID") or "0"
        after = 0 if raw_after == "0" else parse_id(raw_after)
        if after is None:
            raise FrameError("bad_request", "after must be a whole number.")
    except TokenError as exc:
        return error_response(exc.code, exc.message)
    except FrameError as exc:
        return error_response(exc.code, exc.message)

    async def stream() -> AsyncIterator[str]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        groups = [
            revocation.bot_group(session.bot.pk),
            revocation.tenant_group(session.bot.tenant_id),
        ]
        if session.conversation:
            groups.append(group_for(session.conversation.pk))
        # Subscribe first, then read: nothing said in between is lost.
        for group in groups:
            await fanout.subscribe(group, queue)
        try:
            for event in await db_async(session.sync_ready)(after):
                yield _sse(event)
            deadline = time.monotonic() + min(
                SSE_MAX_SECONDS, max(1.0, session.claims.expires_at - time.time())
            )
            while time.monotonic() < deadline:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=SSE_KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if message.get("type") == revocation.EVENT_TYPE:
                    revoked = await db_async(revoked_reason)(session.bot.pk, session.claims)
                    if revoked is not None:
                        yield _sse(FrameError(revoked.code, revoked.message).as_event())
                        return
                    continue
                if message.get("type") != EVENT_TYPE:
                    continue
                visible = session.filter_event(message["event"])
                if visible is not None:
                    yield _sse(visible)
        finally:
            for group in groups:
                fanout.unsubscribe(group, queue)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


# --- Attachments ------------------------------------------------------------------------------


@csrf_exempt  # bearer-token authenticated
@require_POST
async def upload(request: HttpRequest) -> HttpResponse:
    try:
        session = await _fallback_session(request, require_origin=True)
        await ratelimit.ahit("upload:visitor", session.visitor.pk)
    except TokenError as exc:
        return error_response(exc.code, exc.message)
    except ratelimit.RateLimited as exc:
        return error_response("rate_limited", "Too many uploads; wait a moment.", exc.retry_after)
    if not await db_async(route_accepts_images)(session.bot):
        return error_response("images_not_supported", "This assistant does not take images.")
    upload_file = request.FILES.get("file")
    if upload_file is None:
        return error_response("bad_request", "Send the image in the multipart field `file`.")
    if upload_file.size is not None and upload_file.size > 10 * 1024 * 1024:
        return error_response("too_large", "Images are at most 10 MB.")
    data = upload_file.read()
    try:
        # Decoding and re-encoding off the event loop and off the database thread.
        image = await heavy.run(clean_image, data)
    except ImageRejected as exc:
        return error_response(exc.code, exc.message)
    attachment = await db_async(actions.store_clean_image)(session.visitor, image)
    return JsonResponse(attachment_payload(attachment), status=201)


ATTACHMENT_URL_MAX_AGE = 30 * 24 * 3600


@require_GET
def attachment(request: HttpRequest, signed: str) -> HttpResponseBase:
    try:
        public_id = signing.loads(signed, salt=ATTACHMENT_SALT, max_age=ATTACHMENT_URL_MAX_AGE)
    except signing.BadSignature:
        raise Http404("No such file.") from None
    row = Attachment.objects.filter(public_id=public_id).first()
    if row is None:
        raise Http404("No such file.")
    try:
        handle = default_storage.open(row.stored_name, "rb")
    except OSError:
        raise Http404("No such file.") from None
    extension = "png" if row.content_type == "image/png" else "jpg"
    response = FileResponse(
        handle,
        content_type=row.content_type,
        as_attachment=True,
        filename=f"{row.public_id}.{extension}",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=86400"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
