"""A bot's knowledge sources in the REST API: add (text, Q&A, website, sitemap, file), read
with its sync status, sync again, delete. Writes go through chatbot.knowledge.actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status

from chatbot.api.auth import require_manager, require_write
from chatbot.api.errors import ApiError
from chatbot.api.schemas import Limit, Text, decode_or_404, page_by_pk, with_errors
from chatbot.bots.api import get_bot
from chatbot.lib import ids

from . import actions
from .actions import KnowledgeError
from .models import Source

router = Router(tags=["knowledge"])


class SourceOut(Schema):
    id: str
    bot: str
    kind: str
    title: str
    url: str
    file_name: str
    status: str
    error: str
    progress: dict[str, Any]
    sync_interval: int
    last_synced: datetime | None
    created_at: datetime


class SourcePage(Schema):
    data: list[SourceOut]
    next_cursor: str | None


class SourceIn(Schema):
    """`text`: title + text; `qa`: question + answer; `url` / `sitemap`: url (+ limits)."""

    kind: Literal["text", "qa", "url", "sitemap"]
    title: Text = ""
    text: Text = ""
    question: Text = ""
    answer: Text = ""
    url: Text = ""
    max_depth: int = 2
    max_pages: int = 50
    sync_interval: Literal[0, 24, 168] = 168  # SyncInterval.WEEKLY


def source_out(source: Source) -> dict[str, Any]:
    return {
        "id": ids.encode("src", source.pk),
        "bot": ids.encode("bot", source.bot_id),
        "kind": source.kind,
        "title": source.title,
        "url": source.url,
        "file_name": source.file_name,
        "status": source.status,
        "error": source.error,
        "progress": source.progress or {},
        "sync_interval": source.sync_interval,
        "last_synced": source.last_synced,
        "created_at": source.created_at,
    }


def get_source(request: HttpRequest, source_id: str) -> Source:
    pk = decode_or_404("src", source_id, "source")
    source = (
        Source.objects.for_tenant(request.tenant)  # type: ignore[attr-defined]
        .filter(pk=pk)
        .first()
    )
    if source is None:
        raise ApiError(404, "No such source.")
    return source


def _refused(exc: KnowledgeError) -> ApiError:
    return ApiError(422, str(exc), "invalid")


@router.get(
    "/bots/{bot_id}/sources",
    response=with_errors(SourcePage),
    url_name="bot_sources",
    summary="List a bot's knowledge sources with their sync status",
)
def list_sources(
    request: HttpRequest, bot_id: str, cursor: Text | None = None, limit: Limit = 25
) -> Any:
    bot = get_bot(request, bot_id)
    rows, next_cursor = page_by_pk(Source.objects.filter(bot=bot), cursor, limit, "src")
    return {"data": [source_out(s) for s in rows], "next_cursor": next_cursor}


@router.post(
    "/bots/{bot_id}/sources",
    response=with_errors(SourceOut, 201),
    url_name="bot_sources",
    summary="Add a text, Q&A, website or sitemap source; it syncs in the background",
)
def add_source(request: HttpRequest, bot_id: str, payload: SourceIn) -> Any:
    bot = get_bot(request, bot_id)
    require_write(request)
    require_manager(request)
    if not (0 <= payload.max_depth <= 100 and 0 <= payload.max_pages <= 100_000):
        raise ApiError(422, "max_depth or max_pages is out of range.", "invalid")
    try:
        if payload.kind == "text":
            source = actions.add_text(bot, title=payload.title, text=payload.text)
        elif payload.kind == "qa":
            source = actions.add_qa(bot, question=payload.question, answer=payload.answer)
        else:
            source = actions.add_site(
                bot,
                url=payload.url,
                kind=payload.kind,
                title=payload.title,
                max_depth=payload.max_depth,
                max_pages=payload.max_pages,
                sync_interval=payload.sync_interval,
            )
    except KnowledgeError as exc:
        raise _refused(exc) from None
    source.refresh_from_db()
    return Status(201, source_out(source))


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 300},
                    },
                }
            }
        },
    }
}


@router.post(
    "/bots/{bot_id}/sources/upload",
    response=with_errors(SourceOut, 201),
    url_name="bot_sources_upload",
    summary="Upload a file (txt, md, html, pdf, docx) as a source",
    openapi_extra=UPLOAD_BODY,
)
def upload_source(request: HttpRequest, bot_id: str) -> Any:
    # The form is read here, not declared as parameters, so another workspace's bot id is
    # a 404 whatever the body holds.
    bot = get_bot(request, bot_id)
    require_write(request)
    require_manager(request)
    upload = request.FILES.get("file")
    if upload is None:
        raise ApiError(422, "file: attach the file as multipart form data.", "invalid")
    title = request.POST.get("title", "")
    if "\x00" in title:
        raise ApiError(422, "title: must not contain NUL characters.", "invalid")
    try:
        source = actions.add_file(bot, upload=upload, title=title)
    except KnowledgeError as exc:
        raise _refused(exc) from None
    source.refresh_from_db()
    return Status(201, source_out(source))


@router.get(
    "/sources/{source_id}",
    response=with_errors(SourceOut),
    url_name="source",
    summary="Read a source and its sync status",
)
def read_source(request: HttpRequest, source_id: str) -> Any:
    return source_out(get_source(request, source_id))


@router.post(
    "/sources/{source_id}/sync",
    response=with_errors(SourceOut, 202),
    url_name="source_sync",
    summary="Sync the source again now",
)
def sync_source(request: HttpRequest, source_id: str) -> Any:
    source = get_source(request, source_id)
    require_write(request)
    require_manager(request)
    actions.request_sync(source)
    source.refresh_from_db()
    return Status(202, source_out(source))


@router.delete(
    "/sources/{source_id}",
    response=with_errors(None, 204),
    url_name="source",
    summary="Delete the source with its documents and passages",
)
def delete_source(request: HttpRequest, source_id: str) -> Any:
    source = get_source(request, source_id)
    require_write(request)
    require_manager(request)
    actions.delete_source(source)
    return Status(204, None)
