"""How the inbox names what happened: failed replies, the owner's own preview chats."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.models import MessageStatus, Visitor
from chatbot.tenants.models import User
from tests.inbox.helpers import chat

pytestmark = pytest.mark.django_db


def failed_chat(bot: Bot, text: str, code: str = "connect") -> Any:
    """A visitor writes; the model cannot be reached and the reply fails."""
    conversation = chat(bot, text, reply=None)
    message = actions.create_reply_message(conversation.pk)
    assert message is not None
    actions.finish_reply(
        message.pk,
        text="",
        status=MessageStatus.FAILED,
        error_code=code,
        error_message="refused to connect to 127.0.0.1:9",
    )
    return conversation


def row_of(page: str, conversation: Any) -> str:
    """The inbox list's row of one conversation."""
    row = page[page.index(f'data-conversation-id="{conversation.public_id}"') :]
    return row[: row.index("</tr>")]


def test_a_conversation_whose_reply_failed_is_not_answered_by_the_bot(
    client_for: Any, charlie: User, bot: Bot
) -> None:
    failed = failed_chat(bot, "Where is my order?")
    answered = chat(bot, "Are you open today?")
    client = client_for(charlie)
    body = client.get("/conversations/").content.decode()
    row = row_of(body, failed)
    assert "The bot could not answer" in row and "Answered by the bot" not in row
    assert "Answered by the bot" in row_of(body, answered)
    page = client.get(f"/conversations/{failed.public_id}/").content.decode()
    status_line = page[
        page.index('id="status-line"') : page.index("</p>", page.index("status-line"))
    ]
    assert "The bot could not answer" in status_line


def test_the_owners_preview_chats_are_labelled_as_preview_in_the_inbox_and_exports(
    client_for: Any, alice: User, bot: Bot
) -> None:
    preview = chat(bot, "Testing my bot", visitor=actions.open_visitor(bot, preview=True))
    customer = chat(bot, "A real question")
    client = client_for(alice)
    body = client.get("/conversations/").content.decode()
    row = row_of(body, preview)
    assert "Preview (your team)" in row and "Anonymous visitor" not in row
    assert "Anonymous visitor" in row_of(body, customer)
    assert (
        "Preview (your team)" in client.get(f"/conversations/{preview.public_id}/").content.decode()
    )

    data = json.loads(b"".join(client.get("/conversations/export/").streaming_content))
    flags = {c["id"]: c["visitor"]["preview"] for c in data["conversations"]}
    assert flags == {preview.public_id: True, customer.public_id: False}
    response = client.get("/conversations/export/?format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {(r["conversation"], r["preview"]) for r in rows} == {
        (preview.public_id, "yes"),
        (customer.public_id, ""),
    }


def test_a_preview_visitor_is_never_resumed_as_a_customer(bot: Bot) -> None:
    preview = actions.open_visitor(bot, preview=True)
    again = actions.open_visitor(bot, resume_visitor_id=preview.public_id)
    assert again.pk != preview.pk and not again.preview
    assert Visitor.objects.get(pk=preview.pk).preview
