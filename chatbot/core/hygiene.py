"""One check at the edge for text no view should ever see: NUL, invalid Unicode, huge numbers.

PostgreSQL refuses NUL (U+0000) in text; a JSON-escaped lone surrogate (`"\\ud800"`) decodes
to a Python string that cannot be encoded back to UTF-8; a 20-digit id overflows SQLite's
integer binding. Each of those used to surface as a 500 (or a dropped socket) wherever a value
happened to reach the database or an encoder first. Instead of guarding every field, one
middleware looks at every path, query string, form and JSON body before any view, and the
widget and dashboard sockets run the same checks on every decoded frame
(`widget.session.parse_frame`, `conversations.consumers`). What fails answers 400 naming the
field: `{"error": {"code": "bad_request", "message": ...}}` under /widget/ and /api/ (the
shape both already use), a short text elsewhere. The REST API's JSON bodies are left to its
schemas, which refuse the same characters as a 422 naming the field in the API's own terms.
A path segment of digits too large for any row id answers 404, like any missing id.

Ids that arrive as text (filters, form fields) are parsed with `chatbot.lib.ids.parse_id`,
which has the same bound.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from chatbot.lib.ids import MAX_DB_ID

API_PREFIX = "/api/"
JSON_PREFIXES = ("/widget/", API_PREFIX)
MIN_JSON_INT = -(2**63)
MAX_JSON_INT = 2**63 - 1


class BadInput(Exception):
    """A value refused at the edge: where it was (`field`) and what is wrong with it."""

    def __init__(self, where: str, field: str, problem: str) -> None:
        super().__init__(where, field, problem)
        self.where = where  # "field", "query parameter", "form field", "address"
        self.field = field
        self.problem = problem

    @property
    def message(self) -> str:
        return f"The {self.where} `{shown(self.field)}` {self.problem}."


def shown(name: str) -> str:
    """A field's name fit to repeat in an answer: the bad characters themselves replaced."""
    safe = name[:60].encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")
    return "".join(char if char.isprintable() else "?" for char in safe)


def text_problem(value: str) -> str | None:
    """What is wrong with a decoded string, if anything (both checks run at C speed)."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def bytes_problem(raw: bytes) -> str | None:
    try:
        return text_problem(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "is not valid UTF-8"


def _field_name(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _value_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not MIN_JSON_INT <= value <= MAX_JSON_INT:
        return "is a number out of range"
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    return None


def json_problem(document: Any) -> tuple[str, str] | None:
    """The first (field, problem) in a decoded JSON document, walked without recursion
    (deep nesting is what hostile JSON tries). Keys are checked as well as values."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                name = _field_name(path, key)
                key_problem = text_problem(key)
                if key_problem:
                    return name or "body", f"has a name that {key_problem}"
                stack.append((name, child))
        elif isinstance(value, list):
            stack.extend((_field_name(path, n), child) for n, child in enumerate(value))
        else:
            problem = _value_problem(value)
            if problem:
                return path or "body", problem
    return None


def check_json_document(document: Any) -> None:
    found = json_problem(document)
    if found:
        raise BadInput("field", *found)


def check_pairs(raw: bytes, where: str) -> None:
    """`a=1&b=2` as sent (a query string, an urlencoded form), checked before Django decodes
    it with replacement characters that would hide invalid UTF-8."""
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(name.replace(b"+", b" "))
        name_problem = bytes_problem(name_bytes)
        shown = name_bytes.decode("utf-8", errors="replace")
        if name_problem:
            raise BadInput(where, shown, f"has a name that {name_problem}")
        problem = bytes_problem(unquote_to_bytes(value.replace(b"+", b" ")))
        if problem:
            raise BadInput(where, shown, problem)


def _check_path(request: HttpRequest) -> None:
    problem = text_problem(request.path_info)
    raw = getattr(request, "scope", {}).get("raw_path")
    if problem is None and isinstance(raw, bytes):
        problem = bytes_problem(unquote_to_bytes(raw))
    if problem:
        raise BadInput("address", "path", problem)
    for segment in request.path_info.split("/"):
        if (
            segment.isascii()
            and segment.isdigit()
            and (len(segment) > 19 or int(segment) > MAX_DB_ID)
        ):
            raise Http404("No such row.")  # no row has this id, whatever the route


def _content_type(request: HttpRequest) -> str:
    return (request.content_type or "").lower()


def _looks_like_json(request: HttpRequest, body: bytes) -> bool:
    if "json" in _content_type(request):
        return True
    return body.lstrip()[:1] in (b"{", b"[")


def _body_is_small(request: HttpRequest) -> bool:
    """Bodies above Django's in-memory limit are refused by Django itself when read (and
    the views that take bigger bodies, uploads, take them as multipart)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = request.META.get("CONTENT_LENGTH") or "0"
    return not length.isdigit() or limit is None or int(length) <= limit


def _check_body(request: HttpRequest) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    kind = _content_type(request)
    if kind == "multipart/form-data":
        # Files stream to disk as Django parses; only the text fields are held and checked,
        # whatever the size of the upload beside them.
        for name, values in request.POST.lists():
            for value in [name, *values]:
                problem = text_problem(value)
                if problem:
                    raise BadInput("form field", name, problem)
        return
    if not _body_is_small(request) or request.path_info.startswith(API_PREFIX):
        # The REST API validates its JSON bodies against its schemas, whose text type refuses
        # NUL and lone surrogates as a 422 naming the field (`body.payload.name`, docs/api.md).
        return
    body = request.body
    if kind == "application/x-www-form-urlencoded":
        check_pairs(body, "form field")
    elif body and _looks_like_json(request, body):
        try:
            document = json.loads(body)
        except UnicodeDecodeError:
            raise BadInput("field", "body", "is not valid UTF-8") from None
        except (ValueError, RecursionError):
            return  # not JSON: the view answers that in its own words
        check_json_document(document)


def _raw_query(request: HttpRequest) -> bytes:
    """The query string's bytes: WSGI hands them over as latin-1 text, ASGI as UTF-8."""
    query = str(request.META.get("QUERY_STRING", ""))
    try:
        return query.encode("latin-1")
    except UnicodeEncodeError:
        return query.encode("utf-8", "surrogatepass")


def check_request(request: HttpRequest) -> None:
    """Raise BadInput (or Http404 for an impossible id) for what no view should see."""
    _check_path(request)
    check_pairs(_raw_query(request), "query parameter")
    _check_body(request)


def refusal(request: HttpRequest, error: BadInput) -> HttpResponse:
    if request.path_info.startswith(JSON_PREFIXES):
        return JsonResponse(
            {"error": {"code": "bad_request", "message": error.message}}, status=400
        )
    return HttpResponse(error.message, status=400, content_type="text/plain; charset=utf-8")


class HygieneMiddleware:
    """Refuses NUL, invalid Unicode and out-of-range ids before any view (see the module)."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        try:
            check_request(request)
        except BadInput as error:
            return refusal(request, error)
        response: HttpResponse = self.get_response(request)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        try:
            check_request(request)
        except BadInput as error:
            return refusal(request, error)
        response: HttpResponse = await self.get_response(request)
        return response
