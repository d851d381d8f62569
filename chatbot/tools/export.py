"""The Contacts list filtered, and its export (CSV or JSON), shared by the dashboard and the API.

CSV cells that people chose (a name, an address, a message) are written so a spreadsheet
does not run them as formulas (`_csv_safe`, as for conversation exports).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q, QuerySet

from chatbot.conversations.export import _csv_safe
from chatbot.tenants import audit
from chatbot.tenants.models import Tenant

from .models import Contact

CSV_COLUMNS = ["created_at", "name", "email", "phone", "message", "bot", "visitor"]
MAX_QUERY = 200


def contacts_for(tenant: Tenant, query: str = "", bot_id: int | None = None) -> QuerySet[Contact]:
    """The tenant's contacts, those whose name or email contains `query` (any case)."""
    rows = Contact.objects.for_tenant(tenant)
    query = query.strip()[:MAX_QUERY]
    if query:
        rows = rows.filter(Q(name__icontains=query) | Q(email__icontains=query))
    if bot_id is not None:
        rows = rows.filter(bot_id=bot_id)
    return rows


def _ordered(rows: QuerySet[Contact]) -> Iterator[Contact]:
    return (
        rows.select_related("bot", "visitor", "conversation")
        .order_by("-created_at", "-pk")
        .iterator(chunk_size=500)
    )


def csv_chunks(rows: QuerySet[Contact]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for contact in _ordered(rows):
        writer.writerow(
            [
                contact.created_at.isoformat(),
                *(
                    _csv_safe(value)
                    for value in (contact.name, contact.email, contact.phone, contact.message)
                ),
                _csv_safe(contact.bot.name) if contact.bot else "",
                contact.visitor.public_id if contact.visitor else "",
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def json_chunks(rows: QuerySet[Contact]) -> Iterator[str]:
    """`{"contacts": [...]}` written contact by contact (the API's contact shape)."""
    from .actions import contact_payload

    def items() -> Iterable[dict[str, Any]]:
        for contact in _ordered(rows):
            item = contact_payload(contact)
            item["created_at"] = contact.created_at.isoformat()
            yield item

    yield '{"contacts": ['
    for index, item in enumerate(items()):
        yield ("," if index else "") + "\n" + json.dumps(item)
    yield "\n]}\n"


def record_export(tenant: Tenant, actor: Any, *, fmt: str, **filters: Any) -> None:
    audit.record(tenant, actor, "contacts.exported", format=fmt, **filters)
