"""Bots in the REST API: create, read, update, delete, model route, rotate the identity secret.

Writes go through the dashboard's own validation (BotForm) and chatbot.bots.actions, so the
API and the dashboard accept exactly the same values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status

from chatbot.api.auth import actor, require_manager, require_write
from chatbot.api.errors import ApiError
from chatbot.api.schemas import Limit, Text, decode_or_404, page_by_pk, with_errors
from chatbot.lib import ids

from . import actions
from .forms import BotForm
from .models import Bot

router = Router(tags=["bots"])


class BotOut(Schema):
    id: str
    name: str
    title: str
    system_prompt: str
    greeting: str
    suggested_questions: list[str]
    accent_color: str
    position: str
    theme: str
    launcher_icon: str
    avatar_url: str
    default_locale: str
    allowed_origins: list[str]
    enabled: bool
    public_key: str
    created_at: datetime
    updated_at: datetime


class BotPage(Schema):
    data: list[BotOut]
    next_cursor: str | None


class BotIn(Schema):
    """Every field optional on update; `name` is required to create."""

    name: Text | None = None
    title: Text | None = None
    system_prompt: Text | None = None
    greeting: Text | None = None
    suggested_questions: list[Text] | None = None
    accent_color: Text | None = None
    position: Text | None = None
    theme: Text | None = None
    launcher_icon: Text | None = None
    avatar_url: Text | None = None
    default_locale: Text | None = None
    allowed_origins: list[Text] | None = None
    enabled: bool | None = None


class SecretOut(Schema):
    id: str
    identity_secret: str


class RouteIn(Schema):
    endpoints: list[Text]


class EndpointOut(Schema):
    id: str
    name: str


class RouteOut(Schema):
    endpoints: list[EndpointOut]
    uses_default: bool


def bot_out(bot: Bot) -> dict[str, Any]:
    return {
        "id": ids.encode("bot", bot.pk),
        **{
            name: getattr(bot, name)
            for name in (
                "name",
                "title",
                "system_prompt",
                "greeting",
                "accent_color",
                "position",
                "theme",
                "launcher_icon",
                "avatar_url",
                "default_locale",
                "enabled",
                "public_key",
                "created_at",
                "updated_at",
            )
        },
        "suggested_questions": list(bot.suggested_questions or []),
        "allowed_origins": list(bot.allowed_origins or []),
    }


def get_bot(request: HttpRequest, bot_id: str) -> Bot:
    """The key's workspace's bot, or the same 404 as a missing one."""
    pk = decode_or_404("bot", bot_id, "bot")
    bot = Bot.objects.for_tenant(request.tenant).filter(pk=pk).first()  # type: ignore[attr-defined]
    if bot is None:
        raise ApiError(404, "No such bot.")
    return bot


def _validated(bot: Bot | None, payload: BotIn) -> dict[str, Any]:
    given = payload.dict(exclude_unset=True)
    for field in ("suggested_questions", "allowed_origins"):
        if any("\n" in item or "\r" in item for item in given.get(field) or []):
            raise ApiError(422, f"{field}: an item cannot contain a line break.", "invalid")
    current = BotForm(instance=bot).initial if bot is not None else {}
    data: dict[str, Any] = {**current}
    data.update({k: v for k, v in given.items() if v is not None})
    if bot is None:
        data.setdefault("accent_color", "#4f46e5")
        data.setdefault("position", "right")
        data.setdefault("theme", "auto")
        data.setdefault("launcher_icon", "chat")
        data.setdefault("default_locale", "en")
        data.setdefault("enabled", True)
    data["suggested_questions_text"] = "\n".join(
        given.get("suggested_questions") or (bot.suggested_questions if bot else []) or []
    )
    origins = given.get("allowed_origins")
    data["allowed_origins_text"] = "\n".join(
        origins if origins is not None else (bot.allowed_origins if bot else []) or []
    )
    if given.get("suggested_questions") == []:
        data["suggested_questions_text"] = ""
    if data.get("enabled") is False:
        data.pop("enabled")  # an unchecked box is an absent one
    form = BotForm(data=data, instance=bot)
    if not form.is_valid():
        fields = [
            {"field": name.removesuffix("_text"), "message": " ".join(str(m) for m in messages)}
            for name, messages in form.errors.items()
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
        raise ApiError(422, f"The bot is not valid ({summary}).", "invalid")
    return form.bot_fields()


@router.get("/bots", response=with_errors(BotPage), url_name="bots", summary="List bots")
def list_bots(request: HttpRequest, cursor: str | None = None, limit: Limit = 25) -> Any:
    rows, next_cursor = page_by_pk(
        Bot.objects.for_tenant(request.tenant),  # type: ignore[attr-defined]
        cursor,
        limit,
        "bot",
    )
    return {"data": [bot_out(bot) for bot in rows], "next_cursor": next_cursor}


@router.post("/bots", response=with_errors(BotOut, 201), url_name="bots", summary="Create a bot")
def create_bot(request: HttpRequest, payload: BotIn) -> Any:
    require_write(request)
    require_manager(request)
    if not payload.name:
        raise ApiError(422, "name: a bot needs a name.", "invalid")
    fields = _validated(None, payload)
    bot = actions.create_bot(request.tenant, actor(request), **fields)  # type: ignore[attr-defined]
    return Status(201, bot_out(bot))


@router.get("/bots/{bot_id}", response=with_errors(BotOut), url_name="bot", summary="Read a bot")
def read_bot(request: HttpRequest, bot_id: str) -> Any:
    return bot_out(get_bot(request, bot_id))


@router.patch(
    "/bots/{bot_id}",
    response=with_errors(BotOut),
    url_name="bot",
    summary="Update a bot (name, persona, appearance, allowed origins, enabled...)",
)
def update_bot(request: HttpRequest, bot_id: str, payload: BotIn) -> Any:
    bot = get_bot(request, bot_id)
    require_write(request)
    require_manager(request)
    fields = _validated(bot, payload)
    given = payload.dict(exclude_unset=True)
    if given.get("enabled") is False:
        fields["enabled"] = False
    bot = actions.update_bot(bot, actor(request), **fields)
    return bot_out(bot)


@router.delete(
    "/bots/{bot_id}",
    response=with_errors(None, 204),
    url_name="bot",
    summary="Delete a bot with its conversations and knowledge",
)
def delete_bot(request: HttpRequest, bot_id: str) -> Any:
    bot = get_bot(request, bot_id)
    require_write(request)
    require_manager(request)
    actions.delete_bot(bot, actor(request))
    return Status(204, None)


@router.post(
    "/bots/{bot_id}/rotate-identity-secret",
    response=with_errors(SecretOut),
    url_name="bot_rotate_identity_secret",
    summary="A new identity secret; visitor sessions signed before stop working",
)
def rotate_identity_secret(request: HttpRequest, bot_id: str) -> Any:
    bot = get_bot(request, bot_id)
    require_write(request)
    require_manager(request)
    bot = actions.rotate_identity_secret(bot, actor(request))
    return {"id": ids.encode("bot", bot.pk), "identity_secret": bot.identity_secret}


def _route_out(bot: Bot) -> dict[str, Any]:
    from chatbot.llm.models import BotRoute

    steps = BotRoute.objects.filter(bot=bot).select_related("endpoint").order_by("position")
    endpoints = [{"id": ids.encode("mep", s.endpoint_id), "name": s.endpoint.name} for s in steps]
    return {"endpoints": endpoints, "uses_default": not endpoints}


@router.get(
    "/bots/{bot_id}/route",
    response=with_errors(RouteOut),
    url_name="bot_route",
    summary="The model endpoints the bot's replies try, primary first",
)
def read_route(request: HttpRequest, bot_id: str) -> Any:
    return _route_out(get_bot(request, bot_id))


@router.put(
    "/bots/{bot_id}/route",
    response=with_errors(RouteOut),
    url_name="bot_route",
    summary="Set the route (an empty list means the platform's default)",
)
def set_route(request: HttpRequest, bot_id: str, payload: RouteIn) -> Any:
    from chatbot.llm import service

    bot = get_bot(request, bot_id)
    require_write(request)
    require_manager(request)
    if len(payload.endpoints) > 5:
        raise ApiError(422, "endpoints: at most 5 endpoints in a route.", "invalid")
    endpoint_ids = [ids.decode("mep", value) for value in payload.endpoints]
    if any(pk is None for pk in endpoint_ids):
        raise ApiError(422, "endpoints: an endpoint id is unknown.", "invalid")
    try:
        service.set_bot_route(bot, [pk for pk in endpoint_ids if pk is not None])
    except ValueError:
        raise ApiError(
            422, "endpoints: an endpoint id is unknown or listed twice.", "invalid"
        ) from None
    return _route_out(bot)
